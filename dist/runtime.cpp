// MPI initialization and finalization under the start-up deadline, the start-up rendezvous, and
// the srun-without-PMI check.
#include <lmt/dist/error.h>
#include <lmt/dist/runtime.h>

#include <mpi.h>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mpi_check.h"
#include "startup_guard.h"

namespace lmt::dist {
namespace {

constexpr int kArrivedTag = 7301;  // rank r -> 0: {stop requested on r}
constexpr int kGoTag = 7302;       // 0 -> rank r: {1: stop, 0: go}

// A deadline that does not count time this process spent frozen (a gap of seconds between two
// polls 2 ms apart: SIGSTOP, then SIGCONT).
class PolledDeadline {
 public:
  explicit PolledDeadline(std::chrono::steady_clock::time_point at) : at_(at) {}
  bool expired() {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ > std::chrono::seconds(2)) at_ += now - last_;
    last_ = now;
    return now >= at_;
  }

 private:
  std::chrono::steady_clock::time_point at_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

bool all_done(std::vector<MPI_Request>& requests, int rank) {
  int flag = 0;
  mpi_check(MPI_Testall(int(requests.size()), requests.data(), &flag, MPI_STATUSES_IGNORE),
            "MPI_Testall (start-up rendezvous)", rank);
  return flag != 0;
}

}  // namespace

Runtime::Runtime(int& argc, char**& argv, RuntimeOptions options) : options_(std::move(options)) {
  RankEnv launched = RankEnv::from_environment();
  env_ = launched;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    MPI_Query_thread(&thread_level_);
  } else {
    guard_ = std::make_unique<StartupGuard>(launched, options_);
    guard_->phase("MPI_Init_thread");
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &thread_level_) != MPI_SUCCESS) {
      throw DistError("MPI_Init_thread failed on rank " + std::to_string(launched.rank));
    }
    owns_mpi_ = true;
    guard_->mpi_initialized();
  }
  mpi_check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler",
            launched.rank);
  mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &env_.rank), "MPI_Comm_rank", launched.rank);
  mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &env_.world_size), "MPI_Comm_size", env_.rank);
  if (guard_) {
    startup_test_hook(env_, "after-init");
    guard_->phase("the start-up rendezvous");
    rendezvous();
    guard_->phase("MPI_Comm_split_type");
  }
  // Local rank and size from MPI itself: right under any launcher.
  MPI_Comm node;
  mpi_check(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, env_.rank, MPI_INFO_NULL, &node),
      "MPI_Comm_split_type", env_.rank);
  mpi_check(MPI_Comm_rank(node, &env_.local_rank), "MPI_Comm_rank", env_.rank);
  mpi_check(MPI_Comm_size(node, &env_.local_size), "MPI_Comm_size", env_.rank);
  mpi_check(MPI_Comm_free(&node), "MPI_Comm_free", env_.rank);
  if (guard_) guard_->disarm();

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

// Every rank tells rank 0 it is here (and whether it saw a stop request); rank 0 answers go or
// stop. Nonblocking and polled against the start-up deadline, so rank 0 can name exactly the
// ranks that did not arrive.
void Runtime::rendezvous() {
  const int rank = env_.rank, size = env_.world_size;
  const auto& stop_requested = options_.stop_requested();
  auto stop_here = [&] { return stop_requested && stop_requested() ? 1 : 0; };
  const auto poll = std::chrono::milliseconds(2);
  int stop = 0;
  if (size > 1 && rank == 0) {
    std::vector<int> flags(size, 0);
    std::vector<MPI_Request> arrived(size - 1, MPI_REQUEST_NULL);
    for (int r = 1; r < size; ++r)
      mpi_check(MPI_Irecv(&flags[r], 1, MPI_INT, r, kArrivedTag, MPI_COMM_WORLD, &arrived[r - 1]),
                "MPI_Irecv (start-up rendezvous)", rank);
    PolledDeadline deadline(guard_->deadline());
    while (!all_done(arrived, rank)) {
      if (deadline.expired()) {
        std::vector<int> missing;
        for (int r = 1; r < size; ++r) {
          int flag = 0;
          mpi_check(MPI_Test(&arrived[r - 1], &flag, MPI_STATUS_IGNORE), "MPI_Test", rank);
          if (!flag) missing.push_back(r);
        }
        guard_->fail(guard_->missing_line(missing, size, "the start-up rendezvous"), 1);
      }
      std::this_thread::sleep_for(poll);
    }
    stop = stop_here();
    for (int r = 1; r < size; ++r) stop |= flags[r];
    std::vector<MPI_Request> go(size - 1, MPI_REQUEST_NULL);
    for (int r = 1; r < size; ++r)
      mpi_check(MPI_Isend(&stop, 1, MPI_INT, r, kGoTag, MPI_COMM_WORLD, &go[r - 1]),
                "MPI_Isend (start-up rendezvous)", rank);
    while (!all_done(go, rank)) std::this_thread::sleep_for(poll);
  } else if (size > 1) {
    int mine = stop_here();
    std::vector<MPI_Request> requests(2, MPI_REQUEST_NULL);
    mpi_check(MPI_Isend(&mine, 1, MPI_INT, 0, kArrivedTag, MPI_COMM_WORLD, &requests[0]),
              "MPI_Isend (start-up rendezvous)", rank);
    mpi_check(MPI_Irecv(&stop, 1, MPI_INT, 0, kGoTag, MPI_COMM_WORLD, &requests[1]),
              "MPI_Irecv (start-up rendezvous)", rank);
    // Rank 0 reports missing peers at the deadline; this rank speaks 2 s later, if still here.
    PolledDeadline deadline(guard_->deadline() + std::chrono::seconds(2));
    while (!all_done(requests, rank)) {
      if (deadline.expired())
        guard_->fail(guard_->missing_line({0}, size,
                                          "the start-up rendezvous (rank 0 is the one "
                                          "that answers)"),
                     1);
      std::this_thread::sleep_for(poll);
    }
  } else {
    stop = stop_here();
  }
  if (stop) {
    guard_->disarm();
    MPI_Finalize();
    owns_mpi_ = false;
    throw StoppedDuringStartup(
        "stopped by a signal during start-up: training had not started and nothing was "
        "written; run the same command to start again");
  }
}

Runtime::~Runtime() {
  guard_.reset();
  if (!owns_mpi_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  // MPI_Finalize waits for every rank (Open MPI fences): a peer frozen after its last collective
  // would hang this rank forever. The same deadline as start-up bounds it.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watch([&] {
    std::unique_lock<std::mutex> lock(mu);
    PolledDeadline deadline(std::chrono::steady_clock::now() + options_.startup_timeout());
    while (!done) {
      cv.wait_for(lock, std::chrono::milliseconds(100));
      if (done || !deadline.expired()) continue;
      std::fprintf(stderr,
                   "lmt: rank %d: MPI_Finalize did not complete within %lld s (%s): a peer rank "
                   "is stopped or hung; exiting without it\n",
                   env_.rank, (long long)options_.startup_timeout().count(),
                   options_.timeout_flag().c_str());
      std::fflush(stderr);
      _exit(1);
    }
  });
  MPI_Finalize();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watch.join();
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
