// lmt::train's device seam: which device a rank computes on, how host tensors reach it, the one
// function that reads device values back to the host (counted), the precision of the forward
// pass, and the dynamic loss scale of --precision fp16. Everything else in lmt is device-generic
// (at::Device, tensor.to(device)); CUDA streams, events and NCCL stay in dist/.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <lmt/train/options.h>

namespace lmt::train {

// True when this process's LibTorch was built with CUDA (whether or not a GPU is visible).
bool built_with_cuda();

// "cpu", "cuda", "cuda:K" or "auto" (CUDA when this LibTorch has it and a GPU is visible, else
// CPU). "cuda" and "auto" give rank `local_rank` GPU local_rank % device_count. Throws TrainError
// naming --device: a malformed value, CUDA asked of a LibTorch without it, no GPU visible, K out
// of range.
at::Device resolve_device(const std::string& spec, int local_rank);
// "cpu", or "cuda:K (NAME-less: K of N GPUs)" for the start-up line.
std::string describe_device(at::Device device);

// Whether ranks computing on `device` reduce its tensors over NCCL (--grad-backend): auto is
// NCCL on a CUDA device when this build has it, MPI otherwise. Throws TrainError naming
// --grad-backend for nccl on a CPU device or in a build without NCCL.
bool reduces_over_nccl(GradBackend backend, at::Device device);
// "nccl", or "mpi" / "mpi (staged through host memory)" for the start-up line.
std::string describe_grad_backend(bool nccl, at::Device device);

// A host tensor on `device`: itself on the CPU; on CUDA copied from pinned host memory with
// non_blocking (the copy is ordered on the current stream, the host does not wait).
// channels_last: a 4-d tensor in the channels-last memory format (--channels-last).
at::Tensor to_device(const at::Tensor& host, at::Device device, bool channels_last = false);
// Host tensors on their way to `device`, queued one step ahead (the input pipeline): on CUDA the
// copies from pinned memory run on a side stream, so they overlap the kernels already queued on
// the compute stream; take() makes the current (compute) stream wait for them and returns the
// device tensors. On the CPU nothing is copied: take() returns the host tensors themselves.
class AheadCopy {
 public:
  AheadCopy(std::vector<at::Tensor> host, at::Device device);
  std::vector<at::Tensor> take();

 private:
  std::vector<at::Tensor> tensors_;
  at::Device device_;
  std::shared_ptr<void> ready_;  // the side stream's c10::Event on CUDA
};

// Moves a module's parameters and buffers to `device` in place (the tensors keep their
// identity: an optimizer made before still holds them); channels_last: 4-d parameters too.
void move_model(torch::nn::Module& module, at::Device device, bool channels_last = false);
// The device of a module's first parameter or buffer (the CPU when it has none).
at::Device module_device(const torch::nn::Module& module);

// The one place the trainer reads device values back: `t` flattened as doubles on the host.
// On a GPU it waits for the device (a host sync); every call is counted by host_reads().
std::vector<double> read_to_host(const at::Tensor& t);
int64_t host_reads();  // read_to_host calls in this process so far

// torch::nn::utils::clip_grad_norm_ (l2 norm) by the same tensor operations, so the same bits,
// without its host read: the total norm before clipping as a 0-dim tensor on the gradients'
// device (undefined when no parameter has a gradient).
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

// Autocast of the forward pass for --precision bf16/fp16 on `device` (nothing for fp32); the
// previous autocast state is restored when it ends.
class AutocastScope {
 public:
  AutocastScope(Precision precision, at::Device device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_ = false, cpu_was_ = false, gpu_was_ = false;
};

// No autocast inside (power iteration, sigma and the bound are computed in fp32 in an autocast
// forward pass); the previous state is restored when it ends.
class Fp32Scope {
 public:
  Fp32Scope();
  ~Fp32Scope();
  Fp32Scope(const Fp32Scope&) = delete;
  Fp32Scope& operator=(const Fp32Scope&) = delete;

 private:
  bool cpu_was_, gpu_was_;
};

// The dynamic loss scale of --precision fp16 (PyTorch's GradScaler rule): the loss is multiplied
// by scale() before backward; after the gradient all-reduce, unscale() divides the gradients by
// it and records on the device whether any is inf/nan, without a host read. update() then reads
// that flag (one read per optimizer step, the one fp16 needs: whether to skip optimizer.step())
// and either backs off (x0.5, step skipped) or counts a good step (x2 after `growth_interval`).
// Every rank holds identical all-reduced gradients, so every rank skips the same steps.
class LossScaler {
 public:
  explicit LossScaler(double initial_scale = 65536.0, double growth = 2.0, double backoff = 0.5,
                      int64_t growth_interval = 2000);
  double scale() const { return scale_; }
  int64_t good_steps() const { return good_steps_; }
  int64_t skipped_steps() const { return skipped_; }
  // Divides every defined gradient by scale() in place; notes (on the device) a non-finite one.
  void unscale(const std::vector<at::Tensor>& params);
  // True when the step must be skipped (a non-finite gradient); adjusts the scale.
  bool update();

 private:
  double scale_, growth_, backoff_;
  int64_t growth_interval_, good_steps_ = 0, skipped_ = 0;
  at::Tensor found_inf_;  // float, on the gradients' device
};

}  // namespace lmt::train
