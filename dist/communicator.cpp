// Control messages over any Communicator (strings, doubles) as CPU tensors, and the
// out-of-line destructors of the interface.
#include <lmt/dist/communicator.h>
#include <lmt/dist/error.h>

#include <cstring>

namespace lmt::dist {

Work::~Work() = default;
Communicator::~Communicator() = default;

#if !(defined(LMT_HAVE_NCCL) && LMT_HAVE_NCCL)
bool nccl_built() { return false; }
bool nccl_available() { return false; }
std::string nccl_version_summary() { return ""; }
std::string cuda_runtime_summary() { return ""; }
#else
bool nccl_built() { return true; }
#endif

namespace {

// An all-reduce of a host copy; wait() waits for it and writes the result into the tensor.
class StagedWork : public Work {
 public:
  StagedWork(std::shared_ptr<Work> inner, at::Tensor host, at::Tensor target)
      : inner_(std::move(inner)), host_(std::move(host)), target_(std::move(target)) {}
  void wait() override {
    if (done_) return;
    inner_->wait();
    target_.copy_(host_);
    done_ = true;
  }

 private:
  std::shared_ptr<Work> inner_;
  at::Tensor host_, target_;
  bool done_ = false;
};

class StagingCommunicator : public Communicator {
 public:
  StagingCommunicator(std::shared_ptr<Communicator> control, bool stage_host_tensors)
      : control_(std::move(control)), stage_host_(stage_host_tensors) {}
  int rank() const override { return control_->rank(); }
  int size() const override { return control_->size(); }
  std::string backend() const override { return control_->backend(); }
  void barrier() override { control_->barrier(); }

  void all_reduce(at::Tensor& t, ReduceOp op) override { all_reduce_async(t, op)->wait(); }
  std::shared_ptr<Work> all_reduce_async(at::Tensor& t, ReduceOp op) override {
    if (!staged(t)) return control_->all_reduce_async(t, op);
    at::Tensor host = to_host(t);
    auto inner = control_->all_reduce_async(host, op);
    return std::make_shared<StagedWork>(std::move(inner), host, t);
  }
  void broadcast(at::Tensor& t, int root) override {
    if (!staged(t)) return control_->broadcast(t, root);
    at::Tensor host = to_host(t);
    control_->broadcast(host, root);
    t.copy_(host);
  }
  at::Tensor all_gather(const at::Tensor& t) override {
    if (!staged(t)) return control_->all_gather(t);
    return control_->all_gather(to_host(t)).to(t.device());
  }

 private:
  bool staged(const at::Tensor& t) const { return stage_host_ || !t.device().is_cpu(); }
  // A contiguous host copy the caller's tensor does not share (for a CUDA tensor, a copy that
  // waits for the kernels that produced it).
  static at::Tensor to_host(const at::Tensor& t) {
    return t.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous();
  }
  std::shared_ptr<Communicator> control_;
  bool stage_host_;
};

}  // namespace

std::shared_ptr<Communicator> make_staging_communicator(std::shared_ptr<Communicator> control,
                                                        bool stage_host_tensors) {
  if (!control) throw DistError("make_staging_communicator: control communicator is null");
  return std::make_shared<StagingCommunicator>(std::move(control), stage_host_tensors);
}

std::shared_ptr<Communicator> make_device_communicator(std::shared_ptr<Communicator> control,
                                                       at::Device device, bool nccl,
                                                       CommOptions options) {
  if (!control) throw DistError("make_device_communicator: control communicator is null");
  if (device.is_cpu()) {
    if (nccl) throw DistError("NCCL reduces CUDA tensors only; this rank computes on the CPU");
    return control;
  }
  if (!nccl) return make_staging_communicator(std::move(control));
#if defined(LMT_HAVE_NCCL) && LMT_HAVE_NCCL
  return make_nccl_communicator(std::move(control), device.has_index() ? device.index() : 0,
                                options);
#else
  (void)options;
  throw DistError("this lmt was built without NCCL (no NCCL headers and library were found)");
#endif
}

std::vector<std::string> all_gather_strings(Communicator& comm, const std::string& s) {
  at::Tensor len = at::full({1}, static_cast<int64_t>(s.size()), at::kLong);
  at::Tensor lens = comm.all_gather(len).view(-1);
  const int64_t longest = lens.max().item<int64_t>();
  at::Tensor bytes = at::zeros({std::max<int64_t>(longest, 1)}, at::kByte);
  if (!s.empty()) std::memcpy(bytes.data_ptr(), s.data(), s.size());
  at::Tensor all = comm.all_gather(bytes);
  std::vector<std::string> out;
  for (int r = 0; r < comm.size(); ++r) {
    const char* row = static_cast<const char*>(all[r].data_ptr());
    out.emplace_back(row, static_cast<size_t>(lens[r].item<int64_t>()));
  }
  return out;
}

std::string broadcast_string(Communicator& comm, std::string s, int root) {
  at::Tensor len = at::full({1}, static_cast<int64_t>(s.size()), at::kLong);
  comm.broadcast(len, root);
  const int64_t n = len.item<int64_t>();
  at::Tensor bytes = at::zeros({std::max<int64_t>(n, 1)}, at::kByte);
  if (comm.rank() == root && n > 0) std::memcpy(bytes.data_ptr(), s.data(), s.size());
  comm.broadcast(bytes, root);
  return std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(n));
}

std::vector<double> all_reduce_doubles(Communicator& comm, std::vector<double> values,
                                       ReduceOp op) {
  if (values.empty()) return values;
  at::Tensor t = at::empty({static_cast<int64_t>(values.size())}, at::kDouble);
  std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(double));
  comm.all_reduce(t, op);
  std::memcpy(values.data(), t.data_ptr(), values.size() * sizeof(double));
  return values;
}

}  // namespace lmt::dist
