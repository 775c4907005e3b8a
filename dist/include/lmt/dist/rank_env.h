// Where this process sits in the job: rank, world size and local rank, and which launcher
// (mpirun, srun or a plain start) said so.
#pragma once

#include <string>

namespace lmt::dist {

struct RankEnv {
  int rank = 0, world_size = 1, local_rank = 0, local_size = 1;
  std::string launcher = "plain";  // "mpirun", "srun" or "plain"

  // Reads OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE} (mpirun), else
  // SLURM_{PROCID,NTASKS,LOCALID} (srun; local size from SLURM_NTASKS_PER_NODE or
  // SLURM_TASKS_PER_NODE when present), else a world of one. Throws DistError on a malformed
  // value. Runtime overrides rank and size with what MPI itself reports.
  static RankEnv from_environment();
};

}  // namespace lmt::dist
