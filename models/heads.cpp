// The hypersphere-embedding head and the model options that select it.
#include <lmt/models/heads.h>

#include <cmath>

namespace lmt::models {

HypersphereHeadImpl::HypersphereHeadImpl(int64_t features, int64_t classes, double scale)
    : scale_(scale) {
  // The default initialization of a linear layer (uniform in +-1/sqrt(fan_in)).
  const double bound = 1.0 / std::sqrt(double(features));
  weight = register_parameter("weight", at::rand({classes, features}) * (2 * bound) - bound);
}

at::Tensor HypersphereHeadImpl::forward(const at::Tensor& features) {
  at::Tensor z = features / features.norm(2, 1, true).clamp_min(1e-12);
  at::Tensor w = weight / weight.norm(2, 1, true).clamp_min(1e-12);
  return scale_ * z.matmul(w.t());
}

at::Tensor HypersphereHeadImpl::lipschitz_bound(lipschitz::BoundMode /*mode*/) {
  throw ModelError(
      "the hypersphere-embedding head (model option head=he) has no finite Lipschitz bound: it "
      "normalizes its input");
}

bool uses_hypersphere_head(const ModelConfig& config) {
  const std::string head = config.option_string("head", "linear");
  if (head == "linear") return false;
  if (head == "he") return true;
  throw ModelError("model option head: expected linear or he, got '" + head + "'");
}

double hypersphere_scale(const ModelConfig& config) {
  const double s = config.option_double("he_s", 10.0);
  if (!(s > 0)) throw ModelError("model option he_s: must be positive, got " + std::to_string(s));
  return s;
}

}  // namespace lmt::models
