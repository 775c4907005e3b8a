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

// c during a linear warm-up: c * min(1, epoch_progress / warmup_epochs) (c when warmup <= 0).
// epoch_progress counts epochs done, fractional (epoch + step / steps_per_epoch).
double lmt_c_at(double c, double warmup_epochs, double epoch_progress);

// ||w_t - w_i|| for every sample n (t = targets[n]) and class i: [N, K]; differentiable in W.
at::Tensor class_weight_distances(const at::Tensor& head_weight, const at::Tensor& targets);

}  // namespace lmt::lipschitz
