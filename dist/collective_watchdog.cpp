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
  if (armed_.empty()) idle_since_ = std::chrono::steady_clock::now();
}

void CollectiveWatchdog::set_peer_hooks(std::function<void()> tick,
                                        std::function<std::string()> explain) {
  std::lock_guard<std::mutex> lock(mu_);
  tick_ = std::move(tick);
  explain_ = std::move(explain);
}

std::string CollectiveWatchdog::activity() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  auto seconds = [&](std::chrono::steady_clock::time_point since) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - since).count());
  };
  if (armed_.empty()) return "outside collectives for " + seconds(idle_since_) + " s";
  const Armed& oldest = armed_.begin()->second;
  return std::string("waiting in ") + oldest.name + " for " + seconds(oldest.deadline - timeout_) +
         " s";
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
  auto last_tick = std::chrono::steady_clock::now();
  while (!stop_) {
    cv_.wait_for(lock, kTick);
    if (stop_) continue;
    // A gap of seconds between ticks: this rank itself was frozen (SIGSTOP, then SIGCONT); the
    // time it slept does not count against its peers.
    const auto woke = std::chrono::steady_clock::now();
    if (woke - last_tick > std::chrono::seconds(2))
      for (auto& entry : armed_) entry.second.deadline += woke - last_tick;
    last_tick = woke;
    if (tick_) {
      auto tick = tick_;
      lock.unlock();
      tick();
      lock.lock();
      if (stop_) continue;
    }
    if (armed_.empty()) continue;
    const auto now = std::chrono::steady_clock::now();
    // Every waiting rank times out at about the same moment; ranks other than 0 hold back 2 s
    // so that usually one line (rank 0's) is printed before MPI_Abort ends the job.
    const auto grace = std::chrono::seconds(rank_ == 0 ? 0 : 2);
    for (const auto& [id, a] : armed_) {
      if (now >= a.deadline + grace) {
        std::string line = std::string("collective ") + a.name + " did not complete within " +
                           std::to_string(timeout_.count()) + " s: ";
        auto explain = explain_;
        lock.unlock();
        const std::string why = explain ? explain() : "";
        fail(line + (why.empty() ? "a peer rank failed or is hung" : why));
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
