// MPI return codes: lmt's communicators and MPI_COMM_WORLD use MPI_ERRORS_RETURN, and every
// MPI call goes through mpi_check, which throws DistError naming the call and the rank.
#pragma once

#include <lmt/dist/error.h>

#include <mpi.h>

#include <string>

namespace lmt::dist {

inline void mpi_check(int rc, const char* call, int rank) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = 0;
  throw DistError(std::string(call) + " failed on rank " + std::to_string(rank) + ": " +
                  (length > 0 ? std::string(text, length) : "MPI error " + std::to_string(rc)));
}

}  // namespace lmt::dist
