// lmt::lipschitz: BoundedLinear, a dense layer whose spectral norm is tracked by power iteration
// (kTrain, kEstimate) and bounded by a float64 SVD (kSound).
#include <chrono>
#include <cmath>

#include <lmt/lipschitz/layers.h>

#include "spectral.h"

namespace lmt::lipschitz {

BoundedLinearImpl::BoundedLinearImpl(const BoundedLinearOptions& options_) : options(options_) {
  if (options.in_features() <= 0 || options.out_features() <= 0) {
    throw BoundError("BoundedLinear: in_features and out_features must be positive, got " +
                     std::to_string(options.in_features()) + " and " +
                     std::to_string(options.out_features()));
  }
  reset();
}

void BoundedLinearImpl::reset() {
  const int64_t in = options.in_features(), out = options.out_features();
  weight = register_parameter("weight", at::empty({out, in}));
  if (options.bias()) {
    bias = register_parameter("bias", at::empty({out}));
  } else {
    bias = register_parameter("bias", at::Tensor(), /*requires_grad=*/false);
  }
  pi_u = register_buffer("pi_u", at::empty({in}));
  at::NoGradGuard no_grad;
  // torch::nn::Linear: kaiming_uniform(a = sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight.uniform_(-bound, bound);
  if (bias.defined()) bias.uniform_(-bound, bound);
  pi_u.copy_(detail::normalized(at::randn({in})));
}

at::Tensor BoundedLinearImpl::forward(const at::Tensor& x) {
  if (x.dim() < 1 || x.size(-1) != options.in_features()) {
    throw BoundError("BoundedLinear: input's last dimension must be in_features = " +
                     std::to_string(options.in_features()) + ", got shape " + c10::str(x.sizes()));
  }
  return at::linear(x, weight, bias);
}

void BoundedLinearImpl::power_iteration_step(int iterations) {
  at::NoGradGuard no_grad;
  at::Tensor w = weight.detach();
  pi_u.copy_(detail::power_step(
      pi_u.to(w.scalar_type()), [&](const at::Tensor& u) { return at::mv(w, u); },
      [&](const at::Tensor& v) { return at::mv(w.t(), v); }, iterations));
}

at::Tensor BoundedLinearImpl::spectral_norm(BoundMode mode) {
  switch (mode) {
    case BoundMode::kTrain:
      return at::mv(weight, pi_u.detach().to(weight.scalar_type())).norm();
    case BoundMode::kEstimate: {
      auto* memo = detail::active_memo();
      if (memo && memo->estimate.count(this)) return memo->estimate.at(this);
      at::Tensor w = weight.detach().to(at::kFloat);
      at::Tensor sigma = detail::converged_norm(
          pi_u.to(at::kFloat), [&](const at::Tensor& u) { return at::mv(w, u); },
          [&](const at::Tensor& v) { return at::mv(w.t(), v); });
      if (memo) memo->estimate[this] = sigma;
      return sigma;
    }
    case BoundMode::kSound:
      return at::scalar_tensor(sound_bound().bound, weight.options().dtype(at::kDouble));
  }
  throw BoundError("BoundedLinear: unknown BoundMode");
}

SoundBound BoundedLinearImpl::sound_bound() {
  auto* memo = detail::active_memo();
  if (memo && memo->sound.count(this)) return memo->sound.at(this);
  at::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  at::Tensor w = weight.detach().to(at::kDouble);
  at::Tensor sigma = at::linalg_svdvals(w).max();
  SoundBound b;
  b.bound = detail::with_rounding_allowance(sigma, w.abs().sum().item<double>()).item<double>();
  b.reference = sigma.item<double>();
  b.exact = true;
  b.method = "svd";
  b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (memo) memo->sound[this] = b;
  return b;
}

}  // namespace lmt::lipschitz
