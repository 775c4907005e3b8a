// lmt::lipschitz (private): power-iteration helpers shared by the dense and conv operators.
// See spectral.h.
#include "spectral.h"

#include <algorithm>
#include <cmath>

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

at::Tensor lanczos_norm(const at::Tensor& u0,
                        const std::function<at::Tensor(const at::Tensor&)>& apply,
                        const std::function<at::Tensor(const at::Tensor&)>& adjoint,
                        int max_iterations, double tolerance) {
  at::NoGradGuard no_grad;
  const auto shape = u0.sizes().vec();
  const int64_t n = u0.numel();
  const int64_t steps =
      std::max<int64_t>(2, std::min<int64_t>(max_iterations, (int64_t(8) << 20) / n));
  at::Tensor basis = at::zeros({steps, n}, u0.options());
  basis[0].copy_(normalized(u0.detach().reshape(-1)));
  std::vector<double> alpha, beta;
  double theta = 0;
  for (int64_t j = 0; j < steps; ++j) {
    at::Tensor q = basis[j];
    at::Tensor w = adjoint(apply(q.view(shape))).reshape(-1);
    alpha.push_back(at::dot(w, q).item<double>());
    at::Tensor done = basis.narrow(0, 0, j + 1);
    for (int pass = 0; pass < 2; ++pass) w = w - at::mv(done.t(), at::mv(done, w));
    const double b = w.norm().item<double>();
    const bool invariant = !(b > 1e-13 * std::abs(alpha[j]));  // the Krylov space is invariant
    // The Ritz values of T_j cost O(j^3): not at every step.
    if (j < 20 || j % 5 == 4 || j + 1 == steps || invariant) {
      at::Tensor t = at::diag(at::tensor(alpha, at::kDouble));
      if (j > 0) {
        at::Tensor off = at::tensor(beta, at::kDouble);
        t = t + at::diag(off, 1) + at::diag(off, -1);
      }
      auto [values, vectors] = at::linalg_eigh(t);
      theta = values[j].item<double>();
      const double residual = b * std::abs(vectors[j][j].item<double>());
      if (!(theta > 0) || residual <= tolerance * theta) break;
    }
    if (j + 1 == steps || invariant) break;
    beta.push_back(b);
    basis[j + 1].copy_(w / b);
  }
  return at::scalar_tensor(std::sqrt(std::max(theta, 0.0)), u0.options());
}

at::Tensor with_rounding_allowance(const at::Tensor& sigma, double scale) {
  return sigma * (1.0 + 1e-9) + 1e-12 * scale;
}

}  // namespace lmt::lipschitz::detail
