// lmt::lipschitz: the linear layers with a tracked spectral norm (dense and 2-D convolution,
// optionally folded with the batch-norm that follows it), each carrying its power-iteration vector.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/pimpl.h>

#include <lmt/lipschitz/bounded_module.h>

namespace lmt::lipschitz {

// y = x W^T + b. Parameters `weight` [out, in] and `bias` [out]; buffer `pi_u` [in] (a random unit
// vector at construction). Initialised like torch::nn::Linear.
struct BoundedLinearOptions {
  BoundedLinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  TORCH_ARG(bool, bias) = true;
};

class BoundedLinearImpl : public BoundedModule, public SpectralOperator {
 public:
  explicit BoundedLinearImpl(const BoundedLinearOptions& options);
  BoundedLinearImpl(int64_t in_features, int64_t out_features)
      : BoundedLinearImpl(BoundedLinearOptions(in_features, out_features)) {}

  // Re-draws weight, bias and pi_u.
  void reset();

  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override { return spectral_norm(mode); }

  void power_iteration_step(int iterations = 1) override;
  at::Tensor spectral_norm(BoundMode mode) override;
  at::Tensor power_iteration_vector() override { return pi_u; }
  // The float64 SVD: exact.
  SoundBound sound_bound() override;

  BoundedLinearOptions options;
  at::Tensor weight;
  at::Tensor bias;  // undefined when options.bias() is false
  at::Tensor pi_u;
};
TORCH_MODULE(BoundedLinear);

// 2-D convolution on a fixed input size (the bound of a strided or padded conv depends on it).
// Parameters `weight` [out, in/groups, k, k] and `bias` [out]; buffer `pi_u` [1, in, H, W].
// Initialised like torch::nn::Conv2d. Dilation is 1.
//
// residual_scale(alpha) > 0 makes the part the merged residual operator of a LiResNet block
// (Hu et al. 2023): x -> x + alpha (W * x), computed as ONE convolution whose kernel is
// alpha W plus the identity at its centre tap (operator_weight()). Power iteration, the kTrain
// norm and the sound bound all see that merged kernel, so the block is bounded as one operator
// (sigma(I + alpha W), close to 1 for a small alpha W) instead of 1 + alpha sigma(W). Needs
// in == out channels, stride 1, groups 1, an odd kernel and padding kernel/2 (so the identity
// keeps the grid), and no attached batch norm.
struct BoundedConv2dOptions {
  BoundedConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                       int64_t input_height, int64_t input_width)
      : in_channels_(in_channels),
        out_channels_(out_channels),
        kernel_size_(kernel_size),
        input_height_(input_height),
        input_width_(input_width) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size);
  TORCH_ARG(int64_t, input_height);
  TORCH_ARG(int64_t, input_width);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, padding) = 0;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(double, residual_scale) = 0.0;
};

class BoundedConv2dImpl : public BoundedModule, public SpectralOperator {
 public:
  explicit BoundedConv2dImpl(const BoundedConv2dOptions& options);

  void reset();

  // x: [N, in, H, W] with H, W the configured input size (BoundError otherwise: the bound would
  // not hold for another size). The attached batch-norm, if any, is NOT applied here: the model
  // calls it (it stays a registered module of the model).
  at::Tensor forward(const at::Tensor& x) override;
  // The bound of the operator: the conv, or conv followed by the attached BN's scaling.
  at::Tensor lipschitz_bound(BoundMode mode) override { return spectral_norm(mode); }

  // From now on the operator is conv followed by bn's affine map with EVAL statistics, i.e. each
  // output channel c scaled by gamma_c / sqrt(running_var_c + eps) (the shift does not change the
  // Lipschitz constant). Does not register bn as a submodule. bn must have out_channels features
  // and track running statistics.
  void attach_batch_norm(torch::nn::BatchNorm2d bn);
  bool has_batch_norm() const { return !batch_norm_.is_empty(); }
  // Per-output-channel scale gamma/sqrt(var+eps) of the attached BN, computed in `dtype`
  // (differentiable in gamma); undefined without one.
  at::Tensor batch_norm_scale(at::ScalarType dtype = at::kFloat) const;

  int64_t output_height() const;
  int64_t output_width() const;

  // The kernel of the operator in `dtype` (differentiable in weight): weight itself, or for a
  // merged residual operator residual_scale * weight + the identity at the centre tap.
  at::Tensor operator_weight(at::ScalarType dtype) const;

  void power_iteration_step(int iterations = 1) override;
  at::Tensor spectral_norm(BoundMode mode) override;
  at::Tensor power_iteration_vector() override { return pi_u; }
  // kSound is the smaller of the circulant bound and, where `limits` allow, the exact norm of
  // the explicit matrix or the banded certificate, each with the float64 rounding allowance.
  // spectral_norm(kSound) and sound_bound() use the limits of the active BoundMemo (defaults
  // without one).
  SoundBound sound_bound() override;
  SoundBound sound_bound(const SoundBoundLimits& limits);

  // The operator without bias on a [B, in, H, W] tensor, and its adjoint on [B, out, Ho, Wo];
  // include the attached BN scaling. Exposed for tests.
  at::Tensor apply_operator(const at::Tensor& u) const;
  at::Tensor apply_adjoint(const at::Tensor& v) const;

  BoundedConv2dOptions options;
  at::Tensor weight;
  at::Tensor bias;  // undefined when options.bias() is false
  at::Tensor pi_u;

 private:
  // The operator's float64 kernel with the BN scaling folded in.
  at::Tensor sound_kernel() const;
  torch::nn::BatchNorm2d batch_norm_{nullptr};
};
TORCH_MODULE(BoundedConv2d);

}  // namespace lmt::lipschitz
