// lmt: one executable, many subcommands. Sets up MPI for the commands that run on ranks and turns
// errors into one message and an exit code (2: usage, 1: failure; a failing rank ends the job).
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <lmt/dist/runtime.h>

#include "cli.h"
#include "commands.h"

namespace {

struct CommandEntry {
  const char* name;
  const char* summary;
  bool needs_mpi;
  int (*run)(int, char**, lmt::launch::Session&);
};

const std::vector<CommandEntry>& command_table() {
  static const std::vector<CommandEntry> table = {
      {"convert", "convert a dataset (fashion-mnist, cifar10, cifar100) to HDF5", false,
       lmt::launch::run_convert},
      {"train", "train a model (data-parallel under mpirun/srun)", true, lmt::launch::run_train},
      {"eval", "accuracy of a model file on a dataset file", true, lmt::launch::run_eval},
      {"attack", "robust accuracy under APGD-CE/-T, Square, PGD (L2/Linf)", true,
       lmt::launch::run_attack},
      {"export", "model weights to safetensors or a PyTorch state_dict", false,
       lmt::launch::run_export},
      {"certify", "certified l2 robustness from a sound Lipschitz bound", true,
       lmt::launch::run_certify},
  };
  return table;
}

void print_usage() {
  std::cout << "usage: lmt <command> [options]   (lmt <command> --help for its options)\n\n"
               "commands:\n";
  for (const auto& c : command_table()) std::printf("  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  const CommandEntry* command = nullptr;
  for (const auto& c : command_table())
    if (name == c.name) command = &c;
  if (!command) {
    std::fprintf(stderr, "lmt: unknown command '%s' (see lmt --help)\n", name.c_str());
    return 2;
  }

  lmt::launch::Session session;
  std::unique_ptr<lmt::dist::Runtime> runtime;
  try {
    if (command->needs_mpi) {
      runtime = std::make_unique<lmt::dist::Runtime>(argc, argv);
      session.runtime = runtime.get();
    }
    return command->run(argc - 1, argv + 1, session);
  } catch (const lmt::launch::UsageError& e) {
    if (!runtime || runtime->env().rank == 0)
      std::fprintf(stderr, "lmt %s: %s\n", name.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    // Printed once with the rank; in a world of more than one the job is aborted so no peer
    // waits in a collective.
    if (runtime) return runtime->exit_after_error("lmt " + name + ": " + e.what());
    std::fprintf(stderr, "lmt %s: %s\n", name.c_str(), e.what());
    return 1;
  }
}
