// lmt::models: the hypersphere-embedding (HE) classifier head of Pang et al. 2020: normalized
// features and class weights, no bias, logits = s * cos(theta). The training margin m is train/'s.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <lmt/lipschitz/bounded_module.h>
#include <lmt/models/model.h>

namespace lmt::models {

class HypersphereHeadImpl : public lipschitz::BoundedModule {
 public:
  HypersphereHeadImpl(int64_t features, int64_t classes, double scale);
  // s * (w_i / ||w_i||) . (z / ||z||) for every class i: [N, classes].
  at::Tensor forward(const at::Tensor& features) override;
  // Throws ModelError: no Lipschitz bound (the feature normalization is unbounded near z = 0).
  at::Tensor lipschitz_bound(lipschitz::BoundMode mode) override;
  double scale() const { return scale_; }

  at::Tensor weight;  // [classes, features]

 private:
  double scale_;
};
TORCH_MODULE(HypersphereHead);

// Model option head=linear|he (default linear); any other value throws ModelError.
bool uses_hypersphere_head(const ModelConfig& config);
// Model option he_s (default 10, the PGD-AT+HE setting); must be positive.
double hypersphere_scale(const ModelConfig& config);

}  // namespace lmt::models
