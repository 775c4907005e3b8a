// The start-up deadline: a thread armed before MPI_Init_thread that ends the process (naming the
// ranks that never arrived, read from PMIx) when MPI start-up or the rendezvous overruns it.
#pragma once

#include <lmt/dist/rank_env.h>
#include <lmt/dist/runtime.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lmt::dist {

// One per process, owned by Runtime. Construction runs the LMT_TEST_STALL_STARTUP_* test hook,
// announces this rank to the launcher's PMIx server (key "lmt.arrived") and starts the thread.
class StartupGuard {
 public:
  StartupGuard(const RankEnv& launched, const RuntimeOptions& options);
  ~StartupGuard();
  StartupGuard(const StartupGuard&) = delete;
  StartupGuard& operator=(const StartupGuard&) = delete;

  // What the main thread is blocked in, for the deadline message ("MPI_Init_thread", ...).
  void phase(const char* name);
  void mpi_initialized() { mpi_ready_ = true; }
  // Stops the thread: start-up is over (also on every error path, by the destructor).
  void disarm();

  std::chrono::steady_clock::time_point deadline() const { return deadline_; }
  // "rank 1 of 2 (host h)" for each rank in `ranks`; the host comes from PMIx when it knows it.
  std::string describe_ranks(const std::vector<int>& ranks, int world_size) const;
  // "start-up: rank 1 of 2 (host h) did not arrive within 60 s (--collective-timeout) ..."
  std::string missing_line(const std::vector<int>& ranks, int world_size,
                           const std::string& waiting_in) const;
  // Prints "lmt: rank R: line" and ends the process: MPI_Abort once MPI is up, else _exit.
  [[noreturn]] void fail(const std::string& line, int code) const;

 private:
  void run();
  std::vector<int> ranks_not_announced() const;

  RankEnv env_;
  RuntimeOptions options_;
  std::chrono::steady_clock::time_point deadline_;
  bool have_pmix_ = false;
  std::string nspace_;
  std::atomic<bool> mpi_ready_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  const char* phase_ = "start-up";
  bool stop_ = false;
  std::thread thread_;
};

// The LMT_TEST_STALL_STARTUP_RANK hook for a later point of start-up ("after-init").
void startup_test_hook(const RankEnv& env, const char* phase);

}  // namespace lmt::dist
