// Private to attack/: the input gradient of a per-point loss and the steepest-ascent direction
// under a norm, shared by PGD, APGD and the training objectives' inner maximization, and the
// per-point helpers the attacks share.
#pragma once

#include <lmt/attack/attack.h>

namespace lmt::attack {

// d(sum loss(x_adv)) / d x_adv with autograd on (also under an outer NoGradGuard); the
// per-point losses go to *values when given.
at::Tensor input_gradient(const PointLoss& loss, const at::Tensor& x_adv,
                          at::Tensor* values = nullptr);
// Linf: sign(g); L2: g / ||g||_2 per point.
at::Tensor ascent_step(const at::Tensor& grad, Norm norm);
at::Tensor cross_entropy_per_point(const at::Tensor& logits, const at::Tensor& y);

// v [N] reshaped to broadcast over like [N, ...] (threat_model.cpp).
at::Tensor per_point(const at::Tensor& v, const at::Tensor& like);
// A random direction per point, unit in `norm`: Linf t / max|t| with t uniform in [-1,1]; L2
// t / ||t||_2 with t Gaussian. The random starts of APGD and FAB (apgd.cpp).
at::Tensor unit_random_direction(const at::Tensor& x, Norm norm, at::Generator& gen);

}  // namespace lmt::attack
