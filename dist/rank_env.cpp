// RankEnv from launcher variables (Open MPI's mpirun, Slurm's srun) and the one-time error
// report.
#include <lmt/dist/error.h>
#include <lmt/dist/rank_env.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace lmt::dist {
namespace {

// Returns the variable as an int, `fallback` when unset; throws on anything but a number >= 0.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  // SLURM_TASKS_PER_NODE looks like "2(x3)" or "4,2": take the leading count.
  if (end == v || x < 0 || x > (1 << 24)) {
    throw DistError(std::string("environment variable ") + name + "='" + v +
                    "' is not a non-negative integer");
  }
  return static_cast<int>(x);
}

}  // namespace

RankEnv RankEnv::from_environment() {
  RankEnv env;
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    env.launcher = "mpirun";
    env.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    env.world_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    env.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    env.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  } else if (std::getenv("SLURM_PROCID") != nullptr && std::getenv("SLURM_STEP_ID") != nullptr) {
    // SLURM_STEP_ID is set only inside an srun step; a batch script has SLURM_PROCID=0 too.
    env.launcher = "srun";
    env.rank = env_int("SLURM_PROCID", 0);
    env.world_size = env_int("SLURM_NTASKS", 1);
    env.local_rank = env_int("SLURM_LOCALID", 0);
    env.local_size = env_int("SLURM_NTASKS_PER_NODE", env_int("SLURM_TASKS_PER_NODE", 1));
  }
  if (env.world_size < 1 || env.rank >= env.world_size || env.local_rank >= env.local_size) {
    throw DistError("launcher '" + env.launcher + "' reports rank " + std::to_string(env.rank) +
                    " of " + std::to_string(env.world_size) + " (local " +
                    std::to_string(env.local_rank) + " of " + std::to_string(env.local_size) +
                    "): expected 0 <= rank < size");
  }
  return env;
}

void report_error(const RankEnv& env, const std::string& what) {
  static std::atomic<bool> reported{false};
  if (reported.exchange(true)) return;
  std::fprintf(stderr, "lmt: rank %d: %s\n", env.rank, what.c_str());
  std::fflush(stderr);
}

}  // namespace lmt::dist
