// A single watchdog thread per communicator; it sleeps in short ticks and aborts the job
// (MPI_Abort on MPI_COMM_WORLD, which mpirun propagates to every rank) on a missed deadline.
#include "collective_watchdog.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

namespace lmt::dist {

CollectiveWatchdog::CollectiveWatchdog(int rank, std::chrono::seconds timeout,
                                       std::function<std::string()> poll,
                                       std::function<void()> before_abort)
    : rank_(rank),
      timeout_(timeout),
      poll_(std::move(poll)),
      before_abort_(std::move(before_abort)) {
  thread_ = std::thread([this] { run(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t CollectiveWatchdog::arm(const char* collective) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t id = next_id_++;
  armed_[id] = Armed{collective, std::chrono::steady_clock::now() + timeout_};
  return id;
}

void CollectiveWatchdog::disarm(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  armed_.erase(id);
}

void CollectiveWatchdog::fail(const std::string& line) {
  std::fprintf(stderr, "lmt: rank %d: %s\n", rank_, line.c_str());
  std::fflush(stderr);
  if (before_abort_) before_abort_();
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

void CollectiveWatchdog::run() {
  constexpr auto kTick = std::chrono::milliseconds(100);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, kTick);
    if (stop_ || armed_.empty()) continue;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [id, a] : armed_) {
      if (now >= a.deadline) {
        fail(std::string("collective ") + a.name + " did not complete within " +
             std::to_string(timeout_.count()) + " s; a peer rank failed or is hung");
      }
    }
    if (poll_) {
      lock.unlock();
      std::string error = poll_();
      lock.lock();
      if (!error.empty()) fail(error);
    }
  }
}

}  // namespace lmt::dist
