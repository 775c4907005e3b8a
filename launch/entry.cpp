// lmt: one executable, many subcommands. Sets up MPI for the commands that run on ranks and turns
// errors into one message and an exit code (2: usage, 1: failure; a failing rank ends the job;
// 3: train stopped on request, see train/README.md).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <mpi.h>
#include <torch/version.h>

#include <lmt/dist/communicator.h>
#include <lmt/dist/runtime.h>
#include <lmt/train/options.h>
#include <lmt/train/stop.h>

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
      {"convert", "to HDF5: fashion-mnist, cifar10, cifar100, tiny-imagenet, imagenet", false,
       lmt::launch::run_convert},
      {"train", "train a model (data-parallel under mpirun/srun)", true, lmt::launch::run_train},
      {"eval", "accuracy of a model file on a dataset file", true, lmt::launch::run_eval},
      {"attack", "robust accuracy under APGD-CE/-T, Square, PGD (L2/Linf)", true,
       lmt::launch::run_attack},
      {"export", "model weights to safetensors or a PyTorch state_dict", false,
       lmt::launch::run_export},
      {"certify", "certified l2 robustness from a sound Lipschitz bound", true,
       lmt::launch::run_certify},
      {"plot", "training curves of runs (metrics.jsonl) as a PNG", false, lmt::launch::run_plot},
  };
  return table;
}

void print_usage() {
  std::cout << "usage: lmt <command> [options]   (lmt <command> --help for its options)\n"
               "       lmt --version\n\n"
               "commands:\n";
  for (const auto& c : command_table()) std::printf("  %-10s %s\n", c.name, c.summary);
}

// lmt --version: the CMake project version and what this binary can use. MPI_Get_library_version
// may be called before MPI_Init (MPI 3.0), so this starts no MPI.
void print_version() {
  std::printf("lmt %s\n", LMT_VERSION);
#ifdef LMT_TORCH_HAS_CUDA
  const char* torch_cuda = "with CUDA";
#else
  const char* torch_cuda = "without CUDA";
#endif
  std::printf("LibTorch %s (%s)\n", TORCH_VERSION, torch_cuda);
#ifdef LMT_HAVE_NCCL
  std::printf("CUDA: %s\n", lmt::dist::cuda_runtime_summary().c_str());
  std::printf("NCCL communicator: built, %s\n", lmt::dist::nccl_version_summary().c_str());
#else
  std::printf("NCCL communicator: not built\n");
#endif
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(mpi, &length);
  std::string first_line(mpi, static_cast<size_t>(length));
  first_line = first_line.substr(0, first_line.find_first_of("\r\n,"));
  std::printf("MPI: %s\n", first_line.c_str());
}

// `lmt COMMAND --help` (or -h before a bare `--`) only prints the command's usage: it runs
// without MPI, which takes about a second to start.
bool asks_for_help(int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--")) return false;
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) return true;
  }
  return false;
}

// The start-up deadline is --collective-timeout (flag, else `collective-timeout = N` in the
// --config INI file), read here because MPI starts before the command parses its options; a
// malformed value falls back to the default and the command reports it after start-up.
std::chrono::seconds startup_timeout(int argc, char** argv) {
  const int kDefault = lmt::train::TrainOptions().collective_timeout_s();
  const std::string flag = "--collective-timeout";
  std::string value, config;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == flag && i + 1 < argc) value = argv[i + 1];
    if (a.rfind(flag + "=", 0) == 0) value = a.substr(flag.size() + 1);
    if (a == "--config" && i + 1 < argc) config = argv[i + 1];
    if (a.rfind("--config=", 0) == 0) config = a.substr(9);
  }
  if (value.empty() && !config.empty()) {
    std::ifstream in(config);
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = line.substr(0, eq);
      key.erase(0, key.find_first_not_of(" \t"));
      key.erase(key.find_last_not_of(" \t") + 1);
      if (key == "collective-timeout") value = line.substr(eq + 1);
    }
  }
  // Read as the schema reads the flag (its type and range); a bad value keeps the default here
  // and the command reports it after start-up.
  value.erase(0, value.find_first_not_of(" \t"));
  value.erase(value.find_last_not_of(" \t\r") + 1);
  lmt::train::TrainOptions parsed;
  try {
    lmt::train::train_option_schema().set(parsed, "collective-timeout", {value});
  } catch (const lmt::options::OptionError&) {
    return std::chrono::seconds(kDefault);
  }
  return std::chrono::seconds(parsed.collective_timeout_s());
}

}  // namespace

int lmt::launch::run_main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    print_version();
    return 0;
  }
  const std::string name = argv[1];
  const CommandEntry* command = nullptr;
  for (const auto& c : command_table())
    if (name == c.name) command = &c;
  if (!command) {
    std::fprintf(stderr, "lmt: unknown command '%s' (see lmt --help)\n", name.c_str());
    return 2;
  }

  // train: SIGUSR1/SIGTERM only record a stop request from the very first instruction on, so a
  // signal during start-up is never a silent exit 143. Start-up polls it: every rank ends with
  // exit 3 and one line (nothing written); after start-up the trainer checkpoints and exits 3.
  const bool help = asks_for_help(argc, argv);
  const bool stoppable = name == "train" && !help;
  if (stoppable) lmt::train::install_stop_signal_handlers();

  // Declared before the session: the session's communicators (and their watchdog threads, which
  // call MPI) go before the Runtime finalizes MPI.
  std::unique_ptr<lmt::dist::Runtime> runtime;
  lmt::launch::Session session;
  try {
    if (command->needs_mpi && !help) {
      lmt::dist::RuntimeOptions options;
      options.startup_timeout(startup_timeout(argc, argv));
      if (stoppable) options.stop_requested([] { return lmt::train::stop_signal_received(); });
      runtime = std::make_unique<lmt::dist::Runtime>(argc, argv, options);
      session.runtime = runtime.get();
    }
    return command->run(argc - 1, argv + 1, session);
  } catch (const lmt::dist::StoppedDuringStartup& e) {
    const lmt::dist::RankEnv env = lmt::dist::RankEnv::from_environment();
    if (env.rank == 0) std::fprintf(stderr, "lmt: rank 0: %s\n", e.what());
    return lmt::train::kExitCheckpointedStop;
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
