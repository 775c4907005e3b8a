// lmt::lipschitz: the per-component Lipschitz rules (docs/methods.md#per-component-rules) as free
// functions; the parts in modules.h and compose.h are these rules inside a composed network.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>

#include <lmt/lipschitz/bounded_module.h>

namespace lmt::lipschitz {

// A constant bound as a scalar tensor: float64 in kSound, float32 otherwise.
at::Tensor constant_bound(double value, BoundMode mode);

// Max pooling, window kh x kw, stride sh x sw (any padding): sqrt(ceil(kh/sh) * ceil(kw/sw)), the
// square root of the number of windows one input can fall in.
double max_pool_bound(int64_t kh, int64_t kw, int64_t sh, int64_t sw);
// Average pooling (zero padding counted): max_pool_bound / sqrt(kh * kw).
double avg_pool_bound(int64_t kh, int64_t kw, int64_t sh, int64_t sw);
// Global average over n positions per channel: 1 / sqrt(n).
double global_avg_pool_bound(int64_t n);
// Batch-norm with eval statistics: max_c |gamma_c| / sqrt(running_var_c + eps). kTrain is
// differentiable in gamma; kSound is float64.
at::Tensor batch_norm_bound(const torch::nn::BatchNorm2d& bn, BoundMode mode);
// A per-channel scale y_c = v_c x_c: max_c |v_c|. kTrain is differentiable in v; kSound is float64.
at::Tensor max_abs_bound(const at::Tensor& v, BoundMode mode);
// Input normalisation (x - mean) / std: 1 / min_c std_c.
double input_normalization_bound(const std::vector<double>& std);
// CenterNorm y = gamma * (x - mean_C(x)) * C/(C-1) + beta: C/(C-1) * max |gamma| (the centring
// projection has norm 1). kTrain is differentiable in gamma; kSound is float64.
at::Tensor center_norm_bound(const at::Tensor& gamma, int64_t channels,
                             BoundMode mode = BoundMode::kTrain);

}  // namespace lmt::lipschitz
