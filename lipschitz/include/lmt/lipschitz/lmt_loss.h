// lmt::lipschitz: the Lipschitz-margin training loss (docs/methods.md#lmt-loss), its per-class
// "lmt-fc" variant for a linear head, the reference code's margin clip, and the warm-up of c.
#pragma once

#include <ATen/ATen.h>

#include <lmt/lipschitz/bounded_module.h>

namespace lmt::lipschitz {

// Mean over the batch of CE(F + sqrt(2) c L (1 - onehot(t)), t). logits [N, K], targets [N]
// (int64), lipschitz_bound a scalar tensor (differentiable: the loss then also shrinks L).
//
// clip_to_margin reproduces Tsuzuku's reference code (ytsmiling/lmt, src/function/last_fc.py,
// class Lmt): the shift of sample n is scaled by factor_n = clamp(M_n / (sqrt(2) c L), 0, 1),
// M_n = F_t - max_{i != t} F_i, with factor_n held constant (no gradient through it). So a point
// whose margin already exceeds sqrt(2) c L gets the full shift, a correctly classified point
// with a smaller margin gets a shift equal to its margin, and a misclassified point gets none
// (plain CE). The reference subtracts the shift from F_t instead of adding it to the others,
// which gives the same cross-entropy.
at::Tensor lmt_loss(const at::Tensor& logits, const at::Tensor& targets,
                    const at::Tensor& lipschitz_bound, double c, bool clip_to_margin = false);

// The "lmt-fc" variant for F = W h(x) + b with L_h = head.body_bound: the shift of logit i is
// c L_h ||w_t - w_i|| (no sqrt(2)), then CE. clip_to_margin (reference LmtFc): one factor per
// sample, min over i != t of clamp((F_t - F_i) / shift_i, 0, 1), held constant.
at::Tensor lmt_pairwise_loss(const at::Tensor& logits, const at::Tensor& targets,
                             const HeadSplit& head, double c, bool clip_to_margin = false);

// EMMA (Hu et al. 2023, "Unlocking Deep Lipschitz Certified Robustness", the loss of LiResNet):
// with K[n, j] an upper bound of the Lipschitz constant of the margin F_t - F_j of sample n
// (0 at the target t), each non-target logit is raised to the worst value it can reach inside
// the eps ball, F_j + e_j eps K[n, j], with the per-class fraction
// e_j = clip((F_t - F_j) / (K[n, j] eps), 0.01, 1) held constant in backward (no gradient), then
// CE. A class already beaten by more than eps K gets the full shift, a closer one a shift equal
// to its current margin (the radius it is certified at), a winning wrong class 0.01 of it.
// Differences to the reference-code clip of lmt_loss(clip_to_margin): EMMA clips per class, not
// one factor per sample; its floor is 0.01, not 0 (a misclassified point still pushes L down);
// and eps is a radius in input space, where the LMT c is multiplied by sqrt(2) L.
// `margin_lipschitz` [N, K] is differentiable (the loss then shrinks the bound too).
at::Tensor emma_loss(const at::Tensor& logits, const at::Tensor& targets,
                     const at::Tensor& margin_lipschitz, double eps);
// K for a global bound L: sqrt(2) L for every non-target class ([N, K], 0 at the target).
at::Tensor global_margin_lipschitz(const at::Tensor& logits, const at::Tensor& targets,
                                   const at::Tensor& lipschitz_bound);
// K for F = W h(x) + b: L_h ||w_t - w_j|| (the lmt-fc / LiResNet pairwise margin).
at::Tensor pairwise_margin_lipschitz(const at::Tensor& logits, const at::Tensor& targets,
                                     const HeadSplit& head);

// c during a linear warm-up: c * min(1, epoch_progress / warmup_epochs) (c when warmup <= 0).
// epoch_progress counts epochs done, fractional (epoch + step / steps_per_epoch).
double lmt_c_at(double c, double warmup_epochs, double epoch_progress);

// ||w_t - w_i|| for every sample n (t = targets[n]) and class i: [N, K]; differentiable in W.
at::Tensor class_weight_distances(const at::Tensor& head_weight, const at::Tensor& targets);

}  // namespace lmt::lipschitz
