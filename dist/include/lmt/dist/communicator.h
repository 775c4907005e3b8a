// The collective-communication interface every rank uses (MPI for CPU tensors, NCCL for CUDA
// tensors), its options, and small helpers for control messages (strings, doubles).
#pragma once

#include <ATen/ATen.h>
#include <torch/arg.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace lmt::dist {

enum class ReduceOp { kSum, kAvg, kMax, kMin };

// A pending asynchronous collective. wait() makes the result visible to what the caller does
// next and throws DistError on failure: for MPI it blocks until the result is in the tensor; for
// NCCL it orders the caller's current CUDA stream after the collective and returns without
// waiting on the host (the communicator's watchdog still aborts the job if it never completes).
class Work {
 public:
  virtual ~Work();
  virtual void wait() = 0;
};

// Collectives over all ranks of the job, issued by every rank in the same order. Tensors are
// reduced in place; they must live on the communicator's device (CPU for MPI).
// Every collective is watched: one that does not finish within the timeout prints
// "lmt: rank R: collective NAME did not complete within T s: rank P of N (host h, pid p) does
// not answer ..." (the stalled peer, found by pinging the others' watchdogs; dist/README.md)
// and aborts the whole job (MPI_Abort), so no rank ever hangs.
class Communicator {
 public:
  virtual ~Communicator();
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void all_reduce(at::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  virtual std::shared_ptr<Work> all_reduce_async(at::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  virtual void broadcast(at::Tensor& t, int root = 0) = 0;
  // Returns [size, ...t.shape], row r holding rank r's tensor.
  virtual at::Tensor all_gather(const at::Tensor& t) = 0;
  virtual void barrier() = 0;
  virtual std::string backend() const = 0;  // "mpi" or "nccl"
};

// How asynchronous MPI collectives make progress while the caller computes.
enum class MpiProgress {
  kThread,      // a dedicated communication thread runs each collective (needs THREAD_MULTIPLE)
  kNonblocking  // MPI_Iallreduce from the caller; progress only inside MPI calls (wait/test)
};

struct CommOptions {
  TORCH_ARG(std::chrono::seconds, timeout) = std::chrono::seconds(300);
  TORCH_ARG(MpiProgress, progress) = MpiProgress::kThread;
};

// An MPI communicator over a duplicate of MPI_COMM_WORLD (collective: every rank calls it).
// Falls back to MpiProgress::kNonblocking when MPI was not given MPI_THREAD_MULTIPLE.
std::shared_ptr<Communicator> make_mpi_communicator(CommOptions options = CommOptions());

// True when this build has the NCCL communicator and a CUDA device is visible.
bool nccl_available();

// True when this build has the NCCL communicator (whether or not a GPU is visible).
bool nccl_built();

// Collective: every rank calls it with the same arguments. The communicator for tensors on
// `device` (gradient buckets, power-iteration vectors); `control` (MPI) stays the one for
// control messages. For a CPU device: `control` itself (`nccl` must be false). For a CUDA
// device: NCCL when `nccl` (throws DistError when this build has none), else `control` staged
// through host memory (make_staging_communicator: slower, but several ranks may share a GPU).
std::shared_ptr<Communicator> make_device_communicator(std::shared_ptr<Communicator> control,
                                                       at::Device device, bool nccl,
                                                       CommOptions options = CommOptions());

// Wraps `control` (which reduces CPU tensors) for tensors on any device: each collective copies
// the tensor to host memory, runs on `control`, and copies the result back (an asynchronous
// all-reduce copies it back in Work::wait()). CPU tensors go straight through unless
// `stage_host_tensors` (tests: the staging path without a GPU).
std::shared_ptr<Communicator> make_staging_communicator(std::shared_ptr<Communicator> control,
                                                        bool stage_host_tensors = false);

// For `lmt --version`: the NCCL library loaded and the one compiled against ("NCCL 2.28.9
// (built with 2.28.9)"), and the CUDA runtime, driver and visible devices ("runtime 13.0,
// driver 13.0, 1 device(s)"); "" when this build has no NCCL communicator (no CUDA runtime).
std::string nccl_version_summary();
std::string cuda_runtime_summary();

// Control messages: every rank calls these with its own value.
std::vector<std::string> all_gather_strings(Communicator& comm, const std::string& s);
std::string broadcast_string(Communicator& comm, std::string s, int root = 0);
std::vector<double> all_reduce_doubles(Communicator& comm, std::vector<double> values,
                                       ReduceOp op = ReduceOp::kSum);

}  // namespace lmt::dist

#if defined(LMT_HAVE_NCCL) && LMT_HAVE_NCCL
namespace lmt::dist {
// An NCCL communicator for CUDA tensors on device local_rank % device_count. The ncclUniqueId
// is broadcast over `control` (MPI), which also carries every CPU-tensor collective. NCCL runs
// on its own stream, ordered after the caller's current stream by an event; a watchdog polls
// ncclCommGetAsyncError and calls ncclCommAbort (then MPI_Abort) on error or timeout.
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> control,
                                                     int local_rank,
                                                     CommOptions options = CommOptions());
}  // namespace lmt::dist
#endif
