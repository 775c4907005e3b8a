// The timer that watches every collective: past its deadline it prints one line naming the
// rank and the collective and aborts the whole job, so a failed or hung peer never hangs us.
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
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Armed> armed_;
  uint64_t next_id_ = 1;
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
