// The MPI lifetime of one process: initialization (thread level, singleton start), the
// launch sanity check (srun without PMI) and finalization.
#pragma once

#include <lmt/dist/error.h>
#include <lmt/dist/rank_env.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <torch/arg.h>

namespace lmt::dist {

class StartupGuard;

// The start-up deadline and stop requests during start-up.
struct RuntimeOptions {
  // Covers MPI_Init_thread and the start-up rendezvous of all ranks; the trainer passes its
  // --collective-timeout (the later start-up collectives run under the same collective timeout).
  TORCH_ARG(std::chrono::seconds, startup_timeout) = std::chrono::seconds(300);
  // The flag named in the deadline message ("--collective-timeout").
  TORCH_ARG(std::string, timeout_flag) = "--collective-timeout";
  // Polled during start-up (async-signal-safe flag of a stop handler installed before the
  // Runtime); when any rank has seen it, every rank throws StoppedDuringStartup.
  TORCH_ARG(std::function<bool()>, stop_requested);
};

// Thrown by every rank's Runtime constructor (after MPI_Finalize) when a stop was requested
// before start-up finished: nothing has been written yet.
class StoppedDuringStartup : public DistError {
 public:
  using DistError::DistError;
};

// RAII owner of MPI. Construct it first in main(); destroy it (after every communicator)
// last. A plain start with no launcher is an Open MPI singleton: a world of one.
class Runtime {
 public:
  // Calls MPI_Init_thread asking for MPI_THREAD_MULTIPLE and records what was provided, then
  // waits (nonblocking, polled) until every rank has arrived. Start-up is under a deadline
  // (options.startup_timeout()): past it one line names the rank(s) that did not arrive
  //   lmt: rank 0: start-up: rank 1 of 2 (host h) did not arrive within 60 s (--collective-timeout)
  //   ...
  // and the job ends (MPI_Abort, or _exit(1) while MPI_Init_thread itself is still blocked).
  // Throws DistError (after finalizing MPI) when Slurm says SLURM_NTASKS > 1 but MPI sees a
  // world of one: a launch without PMI would silently train N independent copies.
  // MPI_COMM_WORLD gets MPI_ERRORS_RETURN: every MPI call in lmt::dist is checked and throws.
  Runtime(int& argc, char**& argv, RuntimeOptions options = RuntimeOptions());
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const RankEnv& env() const { return env_; }
  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  // MPI_THREAD_SINGLE..MPI_THREAD_MULTIPLE as provided by the library.
  int thread_level() const { return thread_level_; }
  bool thread_multiple() const;

  // Ends every rank of the job with exit code `code` (MPI_Abort on MPI_COMM_WORLD).
  [[noreturn]] static void abort(int code);

  // For main()'s catch block: prints "lmt: rank R: what" once; in a world of more than one it
  // then aborts the job (peers blocked in a collective end at once instead of at their
  // timeout, and MPI_Finalize cannot hang); in a world of one it returns 1 for main to return.
  //   catch (const std::exception& e) { return runtime.exit_after_error(e.what()); }
  int exit_after_error(const std::string& what) const;

 private:
  void rendezvous();

  RankEnv env_;
  RuntimeOptions options_;
  std::unique_ptr<StartupGuard> guard_;
  int thread_level_ = 0;
  bool owns_mpi_ = false;
};

}  // namespace lmt::dist
