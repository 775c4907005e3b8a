// The device seam of the train room (device.h): resolving --device, host-to-device copies, the
// counted host reads, autocast scopes and the fp16 loss scale.
#include <lmt/train/device.h>

#include <lmt/dist/communicator.h>

#include <ATen/autocast_mode.h>
#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/cuda.h>

#include <atomic>
#include <cctype>

namespace lmt::train {

bool built_with_cuda() { return at::globalContext().hasCUDART(); }

at::Device resolve_device(const std::string& spec, int local_rank) {
  if (spec == "cpu") return at::Device(at::kCPU);
  const bool automatic = spec == "auto";
  int index = -1;  // -1: by local rank
  if (!automatic && spec != "cuda") {
    const std::string digits = spec.rfind("cuda:", 0) == 0 ? spec.substr(5) : "";
    if (digits.empty() || digits.size() > 4 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(c); }))
      throw TrainError("--device '" + spec + "': expected cpu, cuda, cuda:K or auto");
    index = std::stoi(digits);
  }
  if (!built_with_cuda()) {
    if (automatic) return at::Device(at::kCPU);
    throw TrainError("--device " + spec +
                     ": this lmt was built against a LibTorch without CUDA (use --device cpu)");
  }
  const int count = int(torch::cuda::device_count());
  if (count == 0) {
    if (automatic) return at::Device(at::kCPU);
    throw TrainError("--device " + spec + ": no CUDA GPU is visible (CUDA_VISIBLE_DEVICES?)");
  }
  if (index >= count)
    throw TrainError("--device " + spec + ": this node has " + std::to_string(count) +
                     " visible GPU(s), 0 to " + std::to_string(count - 1));
  if (index < 0) index = std::max(local_rank, 0) % count;
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string describe_device(at::Device device) {
  if (!device.is_cuda()) return "cpu";
  return device.str() + " (of " + std::to_string(torch::cuda::device_count()) + " visible GPUs)";
}

bool reduces_over_nccl(GradBackend backend, at::Device device) {
  switch (backend) {
    case GradBackend::kMpi:
      return false;
    case GradBackend::kAuto:
      return device.is_cuda() && dist::nccl_built();
    case GradBackend::kNccl:
      break;
  }
  if (!device.is_cuda())
    throw TrainError("--grad-backend nccl: NCCL reduces CUDA tensors and this run is on " +
                     device.str() + " (use --device cuda, or --grad-backend mpi)");
  if (!dist::nccl_built())
    throw TrainError(
        "--grad-backend nccl: this lmt was built without NCCL (use --grad-backend mpi)");
  return true;
}

std::string describe_grad_backend(bool nccl, at::Device device) {
  if (nccl) return "nccl";
  return device.is_cpu() ? "mpi" : "mpi (staged through host memory)";
}

at::Tensor to_device(const at::Tensor& host, at::Device device, bool channels_last) {
  at::Tensor t = host;
  if (host.device() != device) {
    if (device.is_cuda() && host.is_cpu())
      t = (host.is_pinned() ? host : host.pin_memory()).to(device, /*non_blocking=*/true);
    else
      t = host.to(device);
  }
  return channels_last && t.dim() == 4 ? t.contiguous(at::MemoryFormat::ChannelsLast) : t;
}

AheadCopy::AheadCopy(std::vector<at::Tensor> host, at::Device device)
    : tensors_(std::move(host)), device_(device) {
  if (!device.is_cuda()) return;
  const c10::impl::VirtualGuardImpl impl(device.type());
  const c10::Stream side = impl.getStreamFromGlobalPool(device);
  {
    const c10::StreamGuard on_side(side);
    for (auto& t : tensors_)
      t = (t.is_pinned() ? t : t.pin_memory()).to(device, /*non_blocking=*/true);
  }
  auto ready = std::make_shared<c10::Event>(device.type());
  ready->record(side);
  ready_ = ready;
}

std::vector<at::Tensor> AheadCopy::take() {
  if (ready_) {
    const c10::impl::VirtualGuardImpl impl(device_.type());
    const c10::Stream compute = impl.getStream(device_);
    static_cast<c10::Event*>(ready_.get())->block(compute);
    // Allocated on the side stream, used on the compute stream: the caching allocator must not
    // hand the memory out again before the compute stream is done with it.
    for (auto& t : tensors_) t.record_stream(compute);
    ready_.reset();
  }
  return std::move(tensors_);
}

void move_model(torch::nn::Module& module, at::Device device, bool channels_last) {
  module.to(device);
  if (!channels_last) return;
  at::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
}

at::Device module_device(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) return b.device();
  return at::Device(at::kCPU);
}

static std::atomic<int64_t> reads{0};

std::vector<double> read_to_host(const at::Tensor& t) {
  ++reads;
  at::Tensor h = t.detach().to(at::kCPU, at::kDouble).contiguous().view(-1);
  return std::vector<double>(h.data_ptr<double>(), h.data_ptr<double>() + h.numel());
}

int64_t host_reads() { return reads.load(); }

at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  std::vector<at::Tensor> grads, norms;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad().data());
  if (grads.empty()) return at::Tensor();
  for (const auto& g : grads) norms.push_back(g.norm(2.0));
  at::Tensor total = norms.size() == 1 ? norms[0] : at::stack(norms).norm(2.0);
  const at::Tensor coef = at::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
  for (auto& g : grads) g.mul_(coef);
  return total;
}

AutocastScope::AutocastScope(Precision precision, at::Device device) {
  if (precision == Precision::kFp32) return;
  const auto dtype = precision == Precision::kBf16 ? at::kBFloat16 : at::kHalf;
  on_ = true;
  cpu_was_ = at::autocast::is_cpu_enabled();
  gpu_was_ = at::autocast::is_enabled();
  if (device.is_cuda()) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(true);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(true);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!on_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(cpu_was_);
  at::autocast::set_enabled(gpu_was_);
}

Fp32Scope::Fp32Scope()
    : cpu_was_(at::autocast::is_cpu_enabled()), gpu_was_(at::autocast::is_enabled()) {
  at::autocast::set_cpu_enabled(false);
  at::autocast::set_enabled(false);
}

Fp32Scope::~Fp32Scope() {
  at::autocast::set_cpu_enabled(cpu_was_);
  at::autocast::set_enabled(gpu_was_);
}

LossScaler::LossScaler(double initial_scale, double growth, double backoff, int64_t growth_interval)
    : scale_(initial_scale),
      growth_(growth),
      backoff_(backoff),
      growth_interval_(growth_interval) {}

void LossScaler::unscale(const std::vector<at::Tensor>& params) {
  at::NoGradGuard no_grad;
  for (const auto& p : params) {
    at::Tensor g = p.grad();
    if (!g.defined()) continue;
    at::Tensor bad = at::logical_not(at::isfinite(g)).any().to(at::kFloat);
    found_inf_ = found_inf_.defined() ? at::maximum(found_inf_, bad) : bad;
    g.mul_(1.0 / scale_);
  }
}

bool LossScaler::update() {
  const bool skip = found_inf_.defined() && read_to_host(found_inf_)[0] > 0;
  found_inf_ = at::Tensor();
  if (skip) {
    scale_ *= backoff_;
    good_steps_ = 0;
    ++skipped_;
  } else if (++good_steps_ >= growth_interval_) {
    scale_ *= growth_;
    good_steps_ = 0;
  }
  return skip;
}

}  // namespace lmt::train
