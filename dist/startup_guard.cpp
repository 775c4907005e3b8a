// The start-up deadline thread. Before MPI_Init_thread every rank puts "lmt.arrived" into the
// launcher's PMIx key-value store; when the deadline passes, the ranks whose key is missing are
// the ones that never arrived (stopped, crashed or never started), so the line can name them
// even while MPI_Init_thread is still blocked in its fence.
#include "startup_guard.h"

#include <mpi.h>
#if defined(LMT_HAVE_PMIX) && LMT_HAVE_PMIX
#include <pmix.h>
#endif

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lmt::dist {
namespace {

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

// LMT_TEST_STALL_STARTUP_RANK=R [LMT_TEST_STALL_STARTUP_PHASE=before-init|after-init]: rank R
// stops itself (SIGSTOP) at that point of start-up, as a rank frozen by the OS or a debugger
// would. The only test hook of lmt::dist; tests/dist/startup_stall.sh uses it.
void test_stall_hook(const RankEnv& env, const char* phase) {
  const char* rank = std::getenv("LMT_TEST_STALL_STARTUP_RANK");
  if (rank == nullptr || std::atoi(rank) != env.rank || env.launcher == "plain") return;
  const char* want = std::getenv("LMT_TEST_STALL_STARTUP_PHASE");
  if (std::strcmp(want ? want : "before-init", phase) != 0) return;
  std::fprintf(stderr, "lmt: rank %d: LMT_TEST_STALL_STARTUP_RANK: stopping (SIGSTOP) %s, pid %d\n",
               env.rank, phase, int(getpid()));
  std::fflush(stderr);
  raise(SIGSTOP);
}

}  // namespace

void startup_test_hook(const RankEnv& env, const char* phase) { test_stall_hook(env, phase); }

StartupGuard::StartupGuard(const RankEnv& launched, const RuntimeOptions& options)
    : env_(launched),
      options_(options),
      deadline_(std::chrono::steady_clock::now() + options.startup_timeout()) {
  test_stall_hook(env_, "before-init");
#if defined(LMT_HAVE_PMIX) && LMT_HAVE_PMIX
  if (env_.launcher != "plain" && env_.world_size > 1) {
    pmix_proc_t me;
    if (PMIx_Init(&me, nullptr, 0) == PMIX_SUCCESS) {
      nspace_ = me.nspace;
      const std::string who = "host " + host_name() + ", pid " + std::to_string(getpid());
      pmix_value_t value;
      PMIX_VALUE_LOAD(&value, who.c_str(), PMIX_STRING);
      have_pmix_ = PMIx_Put(PMIX_GLOBAL, "lmt.arrived", &value) == PMIX_SUCCESS &&
                   PMIx_Commit() == PMIX_SUCCESS;
      PMIX_VALUE_DESTRUCT(&value);
    }
  }
#endif
  thread_ = std::thread([this] { run(); });
}

StartupGuard::~StartupGuard() {
  disarm();
#if defined(LMT_HAVE_PMIX) && LMT_HAVE_PMIX
  // MPI holds its own reference to the PMIx client; this drops ours.
  if (!nspace_.empty()) PMIx_Finalize(nullptr, 0);
#endif
}

void StartupGuard::phase(const char* name) {
  std::lock_guard<std::mutex> lock(mu_);
  phase_ = name;
}

void StartupGuard::disarm() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<int> StartupGuard::ranks_not_announced() const {
  std::vector<int> missing;
#if defined(LMT_HAVE_PMIX) && LMT_HAVE_PMIX
  if (!have_pmix_) return missing;
  // A present rank answers at once; each absent one costs the 1 s PMIx timeout, so at most 8
  // are asked about (a larger list is cut, and the line says so).
  for (int r = 0; r < env_.world_size && missing.size() < 8; ++r) {
    if (r == env_.rank) continue;
    pmix_proc_t proc;
    PMIX_LOAD_PROCID(&proc, nspace_.c_str(), uint32_t(r));
    int seconds = 1;
    pmix_info_t info;
    PMIX_INFO_LOAD(&info, PMIX_TIMEOUT, &seconds, PMIX_INT);
    pmix_value_t* value = nullptr;
    pmix_status_t status = PMIx_Get(&proc, "lmt.arrived", &info, 1, &value);
    PMIX_INFO_DESTRUCT(&info);
    if (status == PMIX_SUCCESS) {
      PMIX_VALUE_RELEASE(value);
    } else {
      missing.push_back(r);
    }
  }
#endif
  return missing;
}

std::string StartupGuard::describe_ranks(const std::vector<int>& ranks, int world_size) const {
  std::string out;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (i) out += i + 1 == ranks.size() ? " and " : ", ";
    out += "rank " + std::to_string(ranks[i]) + " of " + std::to_string(world_size);
#if defined(LMT_HAVE_PMIX) && LMT_HAVE_PMIX
    if (have_pmix_) {
      pmix_proc_t proc;
      PMIX_LOAD_PROCID(&proc, nspace_.c_str(), uint32_t(ranks[i]));
      pmix_value_t* value = nullptr;
      if (PMIx_Get(&proc, PMIX_HOSTNAME, nullptr, 0, &value) == PMIX_SUCCESS) {
        if (value->type == PMIX_STRING) out += std::string(" (host ") + value->data.string + ")";
        PMIX_VALUE_RELEASE(value);
      }
    }
#endif
  }
  return out;
}

std::string StartupGuard::missing_line(const std::vector<int>& ranks, int world_size,
                                       const std::string& waiting_in) const {
  const std::string within = " within " + std::to_string(options_.startup_timeout().count()) +
                             " s (" + options_.timeout_flag() + ")";
  if (ranks.empty())
    return "start-up: not every rank of " + std::to_string(world_size) + " arrived" + within +
           " (the launcher cannot say which); rank " + std::to_string(env_.rank) + " (host " +
           host_name() + ", pid " + std::to_string(getpid()) + ") waited in " + waiting_in;
  return "start-up: " + describe_ranks(ranks, world_size) + " did not arrive" + within +
         ": stopped, crashed or never started (waited in " + waiting_in + ")";
}

void StartupGuard::fail(const std::string& line, int code) const {
  // The main thread (rendezvous) and this guard's thread can reach a deadline together: the
  // first one reports and ends the process, the other waits for that (one line, one abort).
  static std::atomic<bool> reported{false};
  if (reported.exchange(true))
    for (;;) ::pause();
  std::fprintf(stderr, "lmt: rank %d: %s\n", env_.rank, line.c_str());
  std::fflush(stderr);
  if (mpi_ready_) MPI_Abort(MPI_COMM_WORLD, code);
  // MPI_Init_thread is still blocked: MPI cannot abort the job, but a rank that exits makes
  // the launcher end the others.
  _exit(code);
}

void StartupGuard::run() {
  constexpr auto kTick = std::chrono::milliseconds(100);
  // The rendezvous reports from the main thread first (rank 0 names the missing ranks); this
  // thread is the backstop for a blocking MPI call, and ranks other than 0 wait a little longer
  // so that rank 0's line is the one that is printed.
  // (Rank 0 by 1 s, so that its rendezvous, which names exactly the ranks missing after MPI
  // init, reports before this thread does.)
  auto backstop = deadline_ + std::chrono::seconds(env_.rank == 0 ? 1 : 3);
  std::chrono::steady_clock::time_point stop_seen{};
  auto last_tick = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, kTick);
    if (stop_) break;
    const auto now = std::chrono::steady_clock::now();
    // A gap of seconds between ticks: this rank itself was frozen (SIGSTOP, then the launcher's
    // SIGCONT before it ends the job). The time it slept does not count against the others.
    if (now - last_tick > std::chrono::seconds(2)) backstop += now - last_tick;
    last_tick = now;
    const auto& stop_requested = options_.stop_requested();
    // A stop request while MPI start-up blocks (a peer that never arrives): the rendezvous
    // cannot agree on it, so after a grace of 5 s this rank ends on its own.
    if (!mpi_ready_ && stop_requested && stop_requested()) {
      if (stop_seen == std::chrono::steady_clock::time_point{}) stop_seen = now;
      if (now - stop_seen > std::chrono::seconds(5))
        fail("stopped by a signal during start-up (" + std::string(phase_) +
                 " had not completed): training had not started and nothing was written; "
                 "run the same command to start again",
             3);
    }
    if (now < backstop) continue;
    const std::string waiting_in = phase_;
    lock.unlock();
    fail(missing_line(ranks_not_announced(), env_.world_size, waiting_in), 1);
  }
}

}  // namespace lmt::dist
