// lmt::lipschitz (private): power-iteration helpers shared by the dense and conv operators.
// See spectral.h.
#include "spectral.h"

namespace lmt::lipschitz::detail {

at::Tensor normalized(const at::Tensor& x) { return x / x.norm().clamp_min(1e-12); }

at::Tensor converged_norm(const at::Tensor& u0,
                          const std::function<at::Tensor(const at::Tensor&)>& apply,
                          const std::function<at::Tensor(const at::Tensor&)>& adjoint,
                          int max_iterations) {
  at::NoGradGuard no_grad;
  at::Tensor u = normalized(u0.detach().clone());
  double previous = 0.0;
  at::Tensor sigma;
  for (int i = 0; i < max_iterations; ++i) {
    at::Tensor v = apply(u);
    sigma = v.norm();
    double s = sigma.item<double>();
    if (i > 0 && std::abs(s - previous) <= 1e-7 * s) break;
    previous = s;
    u = normalized(adjoint(normalized(v)));
  }
  return sigma;
}

at::Tensor with_rounding_allowance(const at::Tensor& sigma, double scale) {
  return sigma * (1.0 + 1e-9) + 1e-12 * scale;
}

}  // namespace lmt::lipschitz::detail
