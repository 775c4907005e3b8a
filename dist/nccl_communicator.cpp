// The NCCL communicator (compiled only when LMT_HAVE_NCCL): CUDA tensors on this rank's GPU,
// a private stream ordered after the caller's current stream by events, the ncclUniqueId
// bootstrapped over MPI, and a watchdog that polls ncclCommGetAsyncError and aborts the
// NCCL communicator and the job on error or timeout. CPU tensors go to the MPI control comm.
#include <lmt/dist/communicator.h>
#include <lmt/dist/error.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "collective_watchdog.h"

#if defined(LMT_TORCH_HAS_CUDA) && LMT_TORCH_HAS_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

#define LMT_CUDA_CHECK(call)                                                   \
  do {                                                                         \
    cudaError_t e_ = (call);                                                   \
    if (e_ != cudaSuccess) {                                                   \
      throw DistError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                      ": " #call " failed: " + cudaGetErrorString(e_));        \
    }                                                                          \
  } while (0)

#define LMT_NCCL_CHECK(call)                                                   \
  do {                                                                         \
    ncclResult_t r_ = (call);                                                  \
    if (r_ != ncclSuccess) {                                                   \
      throw DistError(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                      ": " #call " failed: " + ncclGetErrorString(r_));        \
    }                                                                          \
  } while (0)

namespace lmt::dist {
namespace {

ncclDataType_t nccl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
    case at::kBFloat16:
      return ncclBfloat16;
#endif
    case at::kInt:
      return ncclInt32;
    case at::kLong:
      return ncclInt64;
    case at::kChar:
      return ncclInt8;
    case at::kByte:
      return ncclUint8;
    default:
      throw DistError(std::string("NCCL: dtype ") + c10::toString(t) + " is not supported");
  }
}

// The stream the caller's kernels run on: torch's current stream in a CUDA LibTorch; in a
// CPU-only LibTorch no CUDA tensor can exist, so the legacy default stream stands in.
cudaStream_t compute_stream(int device) {
#if defined(LMT_TORCH_HAS_CUDA) && LMT_TORCH_HAS_CUDA
  return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
#else
  (void)device;
  return cudaStreamLegacy;
#endif
}

// Collectives whose completion nobody waits for on the host: each one armed on the watchdog
// until its event has completed (checked on every watchdog tick), so a collective that never
// completes still aborts the job after the timeout.
class PendingEvents {
 public:
  explicit PendingEvents(CollectiveWatchdog* dog = nullptr) : dog_(dog) {}
  void set_watchdog(CollectiveWatchdog* dog) { dog_ = dog; }
  // Takes ownership of `done`.
  void add(cudaEvent_t done, const char* name) {
    const uint64_t id = dog_->arm(name);
    std::lock_guard<std::mutex> lock(mu_);
    events_.emplace_back(done, id);
  }
  // Disarms and destroys the completed ones; a CUDA error other than "not ready" is returned.
  std::string reap() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = events_.begin(); it != events_.end();) {
      const cudaError_t e = cudaEventQuery(it->first);
      if (e == cudaErrorNotReady) {
        ++it;
        continue;
      }
      dog_->disarm(it->second);
      cudaEventDestroy(it->first);
      it = events_.erase(it);
      if (e != cudaSuccess) return std::string("NCCL collective failed: ") + cudaGetErrorString(e);
    }
    return "";
  }
  ~PendingEvents() {
    for (auto& [event, id] : events_) cudaEventDestroy(event);
  }

 private:
  CollectiveWatchdog* dog_;
  std::mutex mu_;
  std::vector<std::pair<cudaEvent_t, uint64_t>> events_;
};

class NcclWork : public Work {
 public:
  NcclWork(at::Tensor keep_alive, cudaEvent_t done, int device, PendingEvents& pending)
      : tensor_(std::move(keep_alive)), done_(done), device_(device), pending_(pending) {}
  ~NcclWork() override {
    if (done_ != nullptr) cudaEventDestroy(done_);
  }

  // Orders the caller's current stream after the collective; the host does not wait. The
  // event goes to the watchdog's pending list. (A tensor dropped before the collective
  // completes is safe: it was allocated on the compute stream, which now waits for it.)
  void wait() override {
    if (done_ == nullptr) return;
    LMT_CUDA_CHECK(cudaSetDevice(device_));
    // Already complete: nothing to order or watch. Always the case once the communicator is
    // gone (its destructor synchronizes the stream), so a Work that outlives it never reaches
    // its pending list.
    const cudaError_t state = cudaEventQuery(done_);
    if (state == cudaSuccess) {
      cudaEventDestroy(done_);
      done_ = nullptr;
      return;
    }
    if (state == cudaErrorNotReady) (void)cudaGetLastError();  // not an error: clear it
    LMT_CUDA_CHECK(cudaStreamWaitEvent(compute_stream(device_), done_, 0));
    pending_.add(done_, "nccl_all_reduce");
    done_ = nullptr;
  }

 private:
  at::Tensor tensor_;
  cudaEvent_t done_;
  int device_;
  PendingEvents& pending_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> control, int local_rank, CommOptions options)
      : control_(std::move(control)) {
    int count = 0;
    LMT_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (count < 1) throw DistError("NCCL communicator: no CUDA device is visible");
    device_ = local_rank % count;
    LMT_CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id;
    std::memset(&id, 0, sizeof(id));
    if (control_->rank() == 0) LMT_NCCL_CHECK(ncclGetUniqueId(&id));
    at::Tensor bytes = at::empty({static_cast<int64_t>(sizeof(id))}, at::kByte);
    std::memcpy(bytes.data_ptr(), &id, sizeof(id));
    control_->broadcast(bytes, 0);
    std::memcpy(&id, bytes.data_ptr(), sizeof(id));
    watchdog_ = std::make_unique<CollectiveWatchdog>(
        control_->rank(), options.timeout(),
        [this] {
          std::string error = async_error();
          return error.empty() ? pending_.reap() : error;
        },
        [this] {
          if (comm_ != nullptr) ncclCommAbort(comm_);
        });
    pending_.set_watchdog(watchdog_.get());
    {
      WatchScope watch(*watchdog_, "nccl_init");
      LMT_NCCL_CHECK(ncclCommInitRank(&comm_, control_->size(), id, control_->rank()));
    }
    LMT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }

  ~NcclCommunicator() override {
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    pending_.reap();
    watchdog_.reset();
    if (stream_ != nullptr) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  int rank() const override { return control_->rank(); }
  int size() const override { return control_->size(); }
  std::string backend() const override { return "nccl"; }

  void all_reduce(at::Tensor& t, ReduceOp op) override { all_reduce_async(t, op)->wait(); }

  std::shared_ptr<Work> all_reduce_async(at::Tensor& t, ReduceOp op) override {
    if (t.device().is_cpu()) return control_->all_reduce_async(t, op);
    check_device(t, "all_reduce");
    ncclRedOp_t nop = ncclSum;
    bool divide = false;
    switch (op) {
      case ReduceOp::kSum:
        nop = ncclSum;
        break;
      case ReduceOp::kMax:
        nop = ncclMax;
        break;
      case ReduceOp::kMin:
        nop = ncclMin;
        break;
      case ReduceOp::kAvg:
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
        nop = ncclAvg;
#else
        divide = true;
#endif
        break;
    }
    cudaEvent_t done = enqueue([&] {
      LMT_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(),
                                   nccl_type(t.scalar_type()), nop, comm_, stream_));
    });
    auto work = std::make_shared<NcclWork>(t, done, device_, pending_);
    if (divide) {
      work->wait();
      t.div_(size());
    }
    return work;
  }

  void broadcast(at::Tensor& t, int root) override {
    if (t.device().is_cpu()) return control_->broadcast(t, root);
    check_device(t, "broadcast");
    cudaEvent_t done = enqueue([&] {
      LMT_NCCL_CHECK(
          ncclBroadcast(t.data_ptr(), t.data_ptr(), t.nbytes(), ncclUint8, root, comm_, stream_));
    });
    NcclWork(t, done, device_, pending_).wait();
  }

  at::Tensor all_gather(const at::Tensor& t) override {
    if (t.device().is_cpu()) return control_->all_gather(t);
    check_device(t, "all_gather");
    std::vector<int64_t> shape{size()};
    shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
    at::Tensor out = at::empty(shape, t.options());
    at::Tensor in = t.contiguous();
    cudaEvent_t done = enqueue([&] {
      LMT_NCCL_CHECK(
          ncclAllGather(in.data_ptr(), out.data_ptr(), in.nbytes(), ncclUint8, comm_, stream_));
    });
    NcclWork(out, done, device_, pending_).wait();
    return out;
  }

  void barrier() override {
    LMT_CUDA_CHECK(cudaSetDevice(device_));
    LMT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    control_->barrier();
  }

 private:
  void check_device(const at::Tensor& t, const char* what) const {
    if (!t.device().is_cuda() || t.device().index() != device_ || !t.is_contiguous()) {
      throw DistError(std::string("NCCL ") + what + ": expected a contiguous tensor on cuda:" +
                      std::to_string(device_) + ", got " + t.device().str());
    }
  }

  // Orders our stream after the caller's, runs `issue` on it and returns an event recorded
  // after the collective.
  template <typename Issue>
  cudaEvent_t enqueue(Issue&& issue) {
    LMT_CUDA_CHECK(cudaSetDevice(device_));
    cudaEvent_t ready = nullptr, done = nullptr;
    LMT_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    LMT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    LMT_CUDA_CHECK(cudaEventRecord(ready, compute_stream(device_)));
    LMT_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready, 0));
    issue();
    LMT_CUDA_CHECK(cudaEventRecord(done, stream_));
    cudaEventDestroy(ready);
    return done;
  }

  std::string async_error() {
    if (comm_ == nullptr) return "";
    ncclResult_t state = ncclSuccess;
    if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) return "";
    if (state == ncclSuccess) return "";
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
    if (state == ncclInProgress) return "";
#endif
    return std::string("NCCL reported an asynchronous error: ") + ncclGetErrorString(state) +
           "; a peer rank failed";
  }

  std::shared_ptr<Communicator> control_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<CollectiveWatchdog> watchdog_;
  PendingEvents pending_;  // the destructor stops the watchdog (whose poll reads this) first
};

}  // namespace

bool nccl_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

namespace {
// 21809 -> "2.18.9" (NCCL >= 2.9: major*10000 + minor*100 + patch), 13000 -> "13.0" (CUDA).
std::string nccl_code_string(int code) {
  return std::to_string(code / 10000) + "." + std::to_string(code % 10000 / 100) + "." +
         std::to_string(code % 100);
}
std::string cuda_code_string(int code) {
  return std::to_string(code / 1000) + "." + std::to_string(code % 1000 / 10);
}
}  // namespace

std::string nccl_version_summary() {
  int loaded = 0;
  std::string out = "NCCL ";
  out += ncclGetVersion(&loaded) == ncclSuccess ? nccl_code_string(loaded) : "(version unknown)";
  return out + " (built with " + nccl_code_string(NCCL_VERSION_CODE) + ")";
}

std::string cuda_runtime_summary() {
  int runtime = 0, driver = 0, count = 0;
  std::string out = "runtime ";
  out += cudaRuntimeGetVersion(&runtime) == cudaSuccess ? cuda_code_string(runtime) : "unknown";
  out += ", driver ";
  out += cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0 ? cuda_code_string(driver)
                                                                    : "none";
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaSuccess) {
    out += ", " + std::to_string(count) + " device(s)";
  } else {
    out += ", no device (" + std::string(cudaGetErrorString(e)) + ")";
    cudaGetLastError();  // clear it
  }
  return out;
}

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> control,
                                                     int local_rank, CommOptions options) {
  if (!control) throw DistError("make_nccl_communicator: control communicator is null");
  return std::make_shared<NcclCommunicator>(std::move(control), local_rank, options);
}

}  // namespace lmt::dist
