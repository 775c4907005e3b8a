// The lmt subcommands. Each parses its own options (argv[0] is the subcommand name) and returns
// the process exit code; errors are thrown (UsageError -> exit 2, anything else -> exit 1).
#pragma once

#include <memory>

#include <lmt/dist/communicator.h>
#include <lmt/dist/runtime.h>

namespace lmt::launch {

// What main() sets up for commands that run on MPI ranks.
struct Session {
  dist::Runtime* runtime = nullptr;  // null for commands that need no MPI (convert)
  std::shared_ptr<dist::Communicator> comm;
  int rank() const { return comm ? comm->rank() : 0; }
};

int run_convert(int argc, char** argv, Session& session);
int run_train(int argc, char** argv, Session& session);
int run_eval(int argc, char** argv, Session& session);
int run_attack(int argc, char** argv, Session& session);
int run_export(int argc, char** argv, Session& session);
int run_certify(int argc, char** argv, Session& session);

// Intra-op threads when --threads is not given: the machine's cores shared by the ranks of
// this node.
int default_threads(const Session& session);

}  // namespace lmt::launch
