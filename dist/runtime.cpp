// MPI initialization and finalization, and the srun-without-PMI check.
#include <lmt/dist/error.h>
#include <lmt/dist/runtime.h>

#include <mpi.h>

#include <cstdlib>
#include <string>

namespace lmt::dist {

Runtime::Runtime(int& argc, char**& argv) {
  RankEnv launched = RankEnv::from_environment();
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    MPI_Query_thread(&thread_level_);
  } else {
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &thread_level_) != MPI_SUCCESS) {
      throw DistError("MPI_Init_thread failed");
    }
    owns_mpi_ = true;
  }
  env_ = launched;
  MPI_Comm_rank(MPI_COMM_WORLD, &env_.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &env_.world_size);
  // Local rank and size from MPI itself: right under any launcher.
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, env_.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &env_.local_rank);
  MPI_Comm_size(node, &env_.local_size);
  MPI_Comm_free(&node);

  const char* ntasks = std::getenv("SLURM_NTASKS");
  // mpirun -np 1 inside a Slurm allocation is deliberate; only a direct start is checked.
  if (launched.launcher != "mpirun" && ntasks != nullptr && std::atoi(ntasks) > 1 &&
      env_.world_size == 1) {
    if (owns_mpi_) MPI_Finalize();
    owns_mpi_ = false;
    throw DistError(std::string("SLURM_NTASKS=") + ntasks +
                    " but MPI sees a world of one: launched by srun without PMI (every task "
                    "would train its own copy); use srun --mpi=pmix ... or mpirun");
  }
}

Runtime::~Runtime() {
  if (!owns_mpi_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

bool Runtime::thread_multiple() const { return thread_level_ >= MPI_THREAD_MULTIPLE; }

int Runtime::exit_after_error(const std::string& what) const {
  report_error(env_, what);
  if (env_.world_size > 1) abort(1);
  return 1;
}

void Runtime::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // MPI_Abort does not return; this satisfies [[noreturn]]
}

}  // namespace lmt::dist
