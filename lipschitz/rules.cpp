// lmt::lipschitz: the per-component rules of docs/methods.md#per-component-rules (pooling,
// batch-norm, input normalisation, CenterNorm) as free functions.
#include <algorithm>
#include <cmath>

#include <lmt/lipschitz/rules.h>

#include "spectral.h"

namespace lmt::lipschitz {

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void require_positive(int64_t v, const char* what) {
  if (v <= 0) throw BoundError(std::string(what) + " must be positive, got " + std::to_string(v));
}
}  // namespace

at::Tensor constant_bound(double value, BoundMode mode) {
  return at::scalar_tensor(value, mode == BoundMode::kSound ? at::kDouble : at::kFloat);
}

double max_pool_bound(int64_t kh, int64_t kw, int64_t sh, int64_t sw) {
  require_positive(kh, "max_pool_bound: kernel height");
  require_positive(kw, "max_pool_bound: kernel width");
  require_positive(sh, "max_pool_bound: stride height");
  require_positive(sw, "max_pool_bound: stride width");
  return std::sqrt(static_cast<double>(ceil_div(kh, sh) * ceil_div(kw, sw)));
}

double avg_pool_bound(int64_t kh, int64_t kw, int64_t sh, int64_t sw) {
  return max_pool_bound(kh, kw, sh, sw) / std::sqrt(static_cast<double>(kh * kw));
}

double global_avg_pool_bound(int64_t n) {
  require_positive(n, "global_avg_pool_bound: number of positions");
  return 1.0 / std::sqrt(static_cast<double>(n));
}

at::Tensor batch_norm_bound(const torch::nn::BatchNorm2d& bn, BoundMode mode) {
  if (bn.is_empty()) throw BoundError("batch_norm_bound: empty BatchNorm2d");
  if (!bn->options.track_running_stats()) {
    throw BoundError("batch_norm_bound: the BatchNorm2d must track running statistics");
  }
  const bool sound = mode == BoundMode::kSound;
  at::Tensor var = bn->running_var.detach();
  if (sound) var = var.to(at::kDouble);
  at::Tensor inv_std = (var + bn->options.eps()).rsqrt();
  at::Tensor scale = inv_std;
  if (bn->options.affine()) {
    at::Tensor gamma = mode == BoundMode::kTrain ? bn->weight : bn->weight.detach();
    scale = gamma.to(var.scalar_type()).abs() * inv_std;
  }
  at::Tensor bound = scale.max();
  if (sound) bound = detail::with_rounding_allowance(bound, 0.0);
  if (mode == BoundMode::kEstimate) bound = bound.detach();
  return bound;
}

at::Tensor max_abs_bound(const at::Tensor& v, BoundMode mode) {
  switch (mode) {
    case BoundMode::kTrain:
      return v.abs().max();
    case BoundMode::kEstimate:
      return v.detach().abs().max();
    case BoundMode::kSound:
      return v.detach().to(at::kDouble).abs().max();
  }
  throw BoundError("max_abs_bound: unknown BoundMode");
}

double input_normalization_bound(const std::vector<double>& std) {
  if (std.empty()) throw BoundError("input_normalization_bound: std is empty");
  const double smallest = *std::min_element(std.begin(), std.end());
  if (!(smallest > 0)) {
    throw BoundError("input_normalization_bound: every std must be positive, got " +
                     std::to_string(smallest));
  }
  return 1.0 / smallest;
}

at::Tensor center_norm_bound(const at::Tensor& gamma, int64_t channels, BoundMode mode) {
  if (channels < 2) {
    throw BoundError("center_norm_bound: needs at least 2 channels, got " +
                     std::to_string(channels));
  }
  const double factor = static_cast<double>(channels) / static_cast<double>(channels - 1);
  switch (mode) {
    case BoundMode::kTrain:
      return gamma.abs().max() * factor;
    case BoundMode::kEstimate:
      return gamma.detach().abs().max() * factor;
    case BoundMode::kSound:
      return detail::with_rounding_allowance(gamma.detach().to(at::kDouble).abs().max() * factor,
                                             0.0);
  }
  throw BoundError("center_norm_bound: unknown BoundMode");
}

}  // namespace lmt::lipschitz
