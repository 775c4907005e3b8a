// lmt::lipschitz (private): shared numerics of the spectral operators, the power-iteration
// normalisation, the converged estimate loop and the float64 rounding allowance of sound bounds.
#pragma once

#include <functional>
#include <unordered_map>

#include <ATen/ATen.h>

#include <lmt/lipschitz/bounded_module.h>

namespace lmt::lipschitz::detail {

// x / max(||x||, 1e-12), as torch.nn.functional.normalize does.
at::Tensor normalized(const at::Tensor& x);

// `iterations` power-iteration steps from u: u <- A^T A u / ||A^T A u||. A step whose A u is
// exactly zero (a zero-initialised batch-norm scale, a pruned layer) keeps u instead of collapsing
// it to the zero vector, which would pin the operator's estimate at 0 for good. Branch-free (no
// device synchronisation).
at::Tensor power_step(at::Tensor u, const std::function<at::Tensor(const at::Tensor&)>& apply,
                      const std::function<at::Tensor(const at::Tensor&)>& adjoint, int iterations);

// Power iteration run to convergence from a copy of u: returns ||A u|| at the fixed point.
// apply / adjoint are A and A^T. Stops when u is a singular vector up to the residual
// ||A^T A u - sigma^2 u|| <= 1e-4 sigma^2 (the error of sigma^2 is ~ residual^2 / gap; the step
// change of sigma is no test, it stalls on plateaus while still percents off), when sigma grew
// by <= 1e-7 relative over 200 iterations, or after max_iterations.
at::Tensor converged_norm(const at::Tensor& u,
                          const std::function<at::Tensor(const at::Tensor&)>& apply,
                          const std::function<at::Tensor(const at::Tensor&)>& adjoint,
                          int max_iterations = 5000);

// Lanczos on A^T A from u, with full reorthogonalisation: sqrt of the largest Ritz value, a lower
// estimate of sigma_max (Cauchy interlacing) that converges far faster than power iteration.
// Stops when the Ritz pair's residual beta |y_last| <= tolerance * theta, or after
// max_iterations (fewer when the basis would pass 64 MiB).
at::Tensor lanczos_norm(const at::Tensor& u,
                        const std::function<at::Tensor(const at::Tensor&)>& apply,
                        const std::function<at::Tensor(const at::Tensor&)>& adjoint,
                        int max_iterations = 300, double tolerance = 1e-12);

// The memo of the BoundMemo alive on this thread (null when none): results by operator.
struct BoundMemoEntries {
  SoundBoundLimits limits;
  std::unordered_map<const void*, SoundBound> sound;
  std::unordered_map<const void*, at::Tensor> estimate;
};
BoundMemoEntries* active_memo();

// sigma * (1 + 1e-9) + 1e-12 * scale: covers float64 rounding of the SVD/FFT (errors of order
// 1e-16 * log(n) * scale, scale = sum |w|).
at::Tensor with_rounding_allowance(const at::Tensor& sigma, double scale);

}  // namespace lmt::lipschitz::detail
