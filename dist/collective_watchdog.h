// The timer that watches every collective: past its deadline it prints one line naming the
// rank, the collective and (through a PeerProbe) the peer that stalled, and aborts the whole
// job, so a failed or hung peer never hangs us.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace lmt::dist {

class CollectiveWatchdog {
 public:
  // `poll` (optional) runs every tick while a collective is armed and returns a non-empty
  // error text to abort at once (NCCL's async error); `before_abort` runs before MPI_Abort
  // (ncclCommAbort).
  CollectiveWatchdog(int rank, std::chrono::seconds timeout, std::function<std::string()> poll = {},
                     std::function<void()> before_abort = {});
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // Optional, set once right after construction: `tick` runs every tick (PeerProbe::answer),
  // `explain` at a missed deadline (PeerProbe::explain) and its text replaces "a peer rank
  // failed or is hung".
  void set_peer_hooks(std::function<void()> tick, std::function<std::string()> explain);
  // "waiting in all_reduce for 12 s" or "outside collectives for 12 s" (the ping answer).
  std::string activity();
  uint64_t arm(const char* collective);
  void disarm(uint64_t id);
  std::chrono::seconds timeout() const { return timeout_; }

 private:
  struct Armed {
    const char* name;
    std::chrono::steady_clock::time_point deadline;
  };
  [[noreturn]] void fail(const std::string& line);
  void run();

  int rank_;
  std::chrono::seconds timeout_;
  std::function<std::string()> poll_;
  std::function<void()> before_abort_;
  std::function<void()> tick_;
  std::function<std::string()> explain_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Armed> armed_;
  uint64_t next_id_ = 1;
  std::chrono::steady_clock::time_point idle_since_ = std::chrono::steady_clock::now();
  bool stop_ = false;
  std::thread thread_;
};

// Disarms on scope exit.
class WatchScope {
 public:
  WatchScope(CollectiveWatchdog& dog, const char* name) : dog_(dog), id_(dog.arm(name)) {}
  ~WatchScope() { dog_.disarm(id_); }
  WatchScope(const WatchScope&) = delete;
  WatchScope& operator=(const WatchScope&) = delete;

 private:
  CollectiveWatchdog& dog_;
  uint64_t id_;
};

}  // namespace lmt::dist
