// Private to models/: small pieces the newer architectures share (input normalization from the
// config, per-channel scale bounds, orthogonal initialisation, a weight-normalized linear head).
#pragma once

#include <ATen/ATen.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/models/model.h>
#include <torch/nn/module.h>

namespace lmt::models {

// Registers "normalize" on `owner` when the config has mean/std; an empty holder otherwise.
lipschitz::InputNormalization make_input_normalization(torch::nn::Module& owner,
                                                       const ModelConfig& config);

// The model option `norm` of ResNet/WRN: true for "center" (BatchCentering2d), false for
// "batch" (the default, BatchNorm2d); ModelError naming the option otherwise.
bool uses_batch_centering(const ModelConfig& config);

// max_c |v_c|: the bound of y_c = v_c x_c. Differentiable in kTrain, float64 in kSound.
at::Tensor max_abs_bound(const at::Tensor& v, lipschitz::BoundMode mode);

// Fills `weight` (any shape, dim 0 = outputs) with a (semi-)orthogonal matrix of shape
// [dim0, rest], as torch.nn.init.orthogonal_ does.
void orthogonal_init(at::Tensor& weight);

// A linear head whose rows are normalized to unit l2 norm in the forward pass ("last-layer
// normalization", LLN): F = W~ h + b with W~_i = W_i / ||W_i||. Parameters `weight`, `bias`.
class NormalizedLinearImpl : public lipschitz::BoundedModule {
 public:
  NormalizedLinearImpl(int64_t in_features, int64_t out_features);
  at::Tensor forward(const at::Tensor& x) override;
  // sigma_max(W~): an exact SVD (differentiable in kTrain; float64 plus a rounding allowance
  // in kSound).
  at::Tensor lipschitz_bound(lipschitz::BoundMode mode) override;
  // W~ as the certificate needs it: float64 and detached in kSound, detached in kEstimate.
  at::Tensor normalized_weight(lipschitz::BoundMode mode) const;
  at::Tensor weight, bias;
};
TORCH_MODULE(NormalizedLinear);

}  // namespace lmt::models
