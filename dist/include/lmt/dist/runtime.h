// The MPI lifetime of one process: initialization (thread level, singleton start), the
// launch sanity check (srun without PMI) and finalization.
#pragma once

#include <lmt/dist/rank_env.h>

#include <string>

namespace lmt::dist {

// RAII owner of MPI. Construct it first in main(); destroy it (after every communicator)
// last. A plain start with no launcher is an Open MPI singleton: a world of one.
class Runtime {
 public:
  // Calls MPI_Init_thread asking for MPI_THREAD_MULTIPLE and records what was provided.
  // Throws DistError (after finalizing MPI) when Slurm says SLURM_NTASKS > 1 but MPI sees a
  // world of one: a launch without PMI would silently train N independent copies.
  Runtime(int& argc, char**& argv);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const RankEnv& env() const { return env_; }
  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  // MPI_THREAD_SINGLE..MPI_THREAD_MULTIPLE as provided by the library.
  int thread_level() const { return thread_level_; }
  bool thread_multiple() const;

  // Ends every rank of the job with exit code `code` (MPI_Abort on MPI_COMM_WORLD).
  [[noreturn]] static void abort(int code);

  // For main()'s catch block: prints "lmt: rank R: what" once; in a world of more than one it
  // then aborts the job (peers blocked in a collective end at once instead of at their
  // timeout, and MPI_Finalize cannot hang); in a world of one it returns 1 for main to return.
  //   catch (const std::exception& e) { return runtime.exit_after_error(e.what()); }
  int exit_after_error(const std::string& what) const;

 private:
  RankEnv env_;
  int thread_level_ = 0;
  bool owns_mpi_ = false;
};

}  // namespace lmt::dist
