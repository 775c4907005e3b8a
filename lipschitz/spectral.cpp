// lmt::lipschitz (private): power-iteration helpers shared by the dense and conv operators.
// See spectral.h.
#include "spectral.h"

namespace lmt::lipschitz::detail {

at::Tensor normalized(const at::Tensor& x) { return x / x.norm().clamp_min(1e-12); }

at::Tensor power_step(at::Tensor u, const std::function<at::Tensor(const at::Tensor&)>& apply,
                      const std::function<at::Tensor(const at::Tensor&)>& adjoint, int iterations) {
  at::NoGradGuard no_grad;
  for (int i = 0; i < iterations; ++i) {
    at::Tensor au = apply(u);
    at::Tensor norm = au.norm();
    at::Tensor next = normalized(adjoint(au / norm.clamp_min(1e-30)));
    u = at::where(norm > 0, next, u);
  }
  return u;
}

at::Tensor converged_norm(const at::Tensor& u0,
                          const std::function<at::Tensor(const at::Tensor&)>& apply,
                          const std::function<at::Tensor(const at::Tensor&)>& adjoint,
                          int max_iterations) {
  at::NoGradGuard no_grad;
  at::Tensor u = normalized(u0.detach().clone());
  at::Tensor sigma;
  double sigma_window_start = 0.0;
  for (int i = 0; i < max_iterations; ++i) {
    at::Tensor v = apply(u);
    sigma = v.norm();
    // Stagnation over a long window (rounding keeps the residual above tolerance on big layers).
    if (i % 200 == 0) {
      const double s = sigma.item<double>();
      if (i > 0 && s - sigma_window_start <= 1e-7 * s) break;
      sigma_window_start = s;
    }
    at::Tensor w = adjoint(v);  // A^T A u
    const double s2 = sigma.item<double>() * sigma.item<double>();
    if (s2 == 0.0) break;
    if ((w - s2 * u).norm().item<double>() <= 1e-4 * s2) break;
    u = normalized(w);
  }
  return sigma;
}

at::Tensor with_rounding_allowance(const at::Tensor& sigma, double scale) {
  return sigma * (1.0 + 1e-9) + 1e-12 * scale;
}

}  // namespace lmt::lipschitz::detail
