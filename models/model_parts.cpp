// Shared model pieces: the composed-model base, input normalization from the config, orthogonal
// init and the row-normalized linear head.
#include "model_parts.h"

#include <cmath>

namespace lmt::models {

using lipschitz::BoundMode;

void ComposedModel::train(bool on) {
  Model::train(on);
  if (network_) network_->train(on);
}

void ComposedModel::set_network(lipschitz::Sequential network, bool bounded) {
  lipschitz::require_same_tensors(*network, *this, config_.name);
  network_ = std::move(network);
  bounded_ = bounded;
  network_->train(is_training());
}

lipschitz::InputNormalization make_input_normalization(torch::nn::Module& owner,
                                                       const ModelConfig& c) {
  if (c.mean.empty()) return lipschitz::InputNormalization(nullptr);
  return owner.register_module(
      "normalize", lipschitz::InputNormalization(std::vector<double>(c.mean.begin(), c.mean.end()),
                                                 std::vector<double>(c.std.begin(), c.std.end())));
}

bool uses_batch_centering(const ModelConfig& config) {
  const std::string norm = config.option_string("norm", "batch");
  if (norm != "batch" && norm != "center")
    throw ModelError(config.name + ": model option 'norm': expected batch or center, got '" + norm +
                     "'");
  return norm == "center";
}

void orthogonal_init(at::Tensor& weight) {
  at::NoGradGuard no_grad;
  const int64_t rows = weight.size(0), cols = weight.numel() / rows;
  at::Tensor a = at::randn({std::max(rows, cols), std::min(rows, cols)}, at::kFloat);
  auto [q, r] = at::linalg_qr(a);
  q = q * at::sign(r.diagonal());  // unique (Haar-distributed) factor
  if (rows < cols) q = q.t();
  weight.copy_(q.reshape(weight.sizes()));
}

NormalizedLinearImpl::NormalizedLinearImpl(int64_t in_features, int64_t out_features) {
  weight = register_parameter("weight", at::empty({out_features, in_features}));
  bias = register_parameter("bias", at::zeros({out_features}));
  orthogonal_init(weight);
}

at::Tensor NormalizedLinearImpl::forward(const at::Tensor& x) {
  return at::linear(x, normalized_weight(BoundMode::kTrain), bias);
}

at::Tensor NormalizedLinearImpl::normalized_weight(BoundMode mode) const {
  at::Tensor w = weight;
  if (mode != BoundMode::kTrain) w = w.detach();
  if (mode == BoundMode::kSound) w = w.to(at::kDouble);
  return w / w.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
}

at::Tensor NormalizedLinearImpl::lipschitz_bound(BoundMode mode) {
  at::Tensor sigma = at::linalg_matrix_norm(normalized_weight(mode), 2);
  // kSound: the forward runs in float32; allow for its rounding of W~ (relative 1e-6).
  return mode == BoundMode::kSound ? sigma * (1.0 + 1e-6) : sigma;
}

}  // namespace lmt::models
