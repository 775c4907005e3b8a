// lmt::lipschitz: the LMT loss (global sqrt(2) c L shift and the per-class lmt-fc shift), the
// reference code's margin clip, and the linear warm-up of c.
#include <algorithm>
#include <cmath>
#include <limits>

#include <lmt/lipschitz/lmt_loss.h>

namespace lmt::lipschitz {

namespace {
void check_batch(const at::Tensor& logits, const at::Tensor& targets, const char* who) {
  if (logits.dim() != 2 || targets.dim() != 1 || targets.size(0) != logits.size(0)) {
    throw BoundError(std::string(who) + ": expected logits [N, K] and targets [N], got " +
                     c10::str(logits.sizes()) + " and " + c10::str(targets.sizes()));
  }
}

at::Tensor off_target_mask(const at::Tensor& logits, const at::Tensor& targets) {
  return 1.0 - at::one_hot(targets.to(at::kLong), logits.size(1)).to(logits.scalar_type());
}

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& targets) {
  return at::cross_entropy_loss(logits, targets.to(at::kLong));
}
}  // namespace

at::Tensor lmt_loss(const at::Tensor& logits, const at::Tensor& targets,
                    const at::Tensor& lipschitz_bound, double c, bool clip_to_margin) {
  check_batch(logits, targets, "lmt_loss");
  if (c == 0.0) return cross_entropy(logits, targets);
  at::Tensor mask = off_target_mask(logits, targets);
  at::Tensor shift = std::sqrt(2.0) * c * lipschitz_bound.to(logits.scalar_type());
  if (!clip_to_margin) return cross_entropy(logits + shift * mask, targets);
  at::Tensor factor;  // [N, 1], held constant (no gradient), as in the reference
  {
    at::NoGradGuard no_grad;
    at::Tensor f = logits.detach();
    at::Tensor f_t = f.gather(1, targets.to(at::kLong).unsqueeze(1));
    at::Tensor others = f.masked_fill(mask == 0, -std::numeric_limits<double>::infinity());
    at::Tensor margin = f_t - std::get<0>(others.max(1, /*keepdim=*/true));
    factor = (margin / shift.detach()).clamp(0.0, 1.0);
  }
  return cross_entropy(logits + factor * shift * mask, targets);
}

at::Tensor class_weight_distances(const at::Tensor& head_weight, const at::Tensor& targets) {
  at::Tensor w_t = head_weight.index_select(0, targets.to(at::kLong));  // [N, F]
  const int64_t n = targets.size(0), k = head_weight.size(0), f = head_weight.size(1);
  if (n * k * f <= (int64_t{1} << 24)) {
    // Exact differences; the norm's gradient at the zero diagonal is guarded below.
    at::Tensor diff = head_weight.unsqueeze(0) - w_t.unsqueeze(1);  // [N, K, F]
    at::Tensor sq = diff.pow(2).sum(-1);
    at::Tensor self = at::one_hot(targets.to(at::kLong), k).to(sq.scalar_type());
    return (sq + self).sqrt() * (1.0 - self);
  }
  // Large heads: ||w_t||^2 + ||w_i||^2 - 2 w_t.w_i (less accurate for nearly equal rows).
  at::Tensor norms = head_weight.pow(2).sum(-1);
  at::Tensor sq = (norms.index_select(0, targets.to(at::kLong)).unsqueeze(1) + norms.unsqueeze(0) -
                   2.0 * at::matmul(w_t, head_weight.t()))
                      .clamp_min(1e-12);
  at::Tensor self = at::one_hot(targets.to(at::kLong), k).to(sq.scalar_type());
  return (sq * (1.0 - self) + self).sqrt() * (1.0 - self);
}

at::Tensor lmt_pairwise_loss(const at::Tensor& logits, const at::Tensor& targets,
                             const HeadSplit& head, double c, bool clip_to_margin) {
  check_batch(logits, targets, "lmt_pairwise_loss");
  if (!head.defined()) {
    throw BoundError("lmt_pairwise_loss: the model has no linear head split (HeadSplit undefined)");
  }
  if (head.head_weight.dim() != 2 || head.head_weight.size(0) != logits.size(1)) {
    throw BoundError(
        "lmt_pairwise_loss: head_weight must be [K, F] with K = " + std::to_string(logits.size(1)) +
        ", got " + c10::str(head.head_weight.sizes()));
  }
  if (c == 0.0) return cross_entropy(logits, targets);
  at::Tensor w = head.head_weight.to(logits.scalar_type());
  at::Tensor shift = c * head.body_bound.to(logits.scalar_type()) *
                     class_weight_distances(w, targets);  // [N, K], 0 at the target
  if (!clip_to_margin) return cross_entropy(logits + shift, targets);
  at::Tensor factor;
  {
    at::NoGradGuard no_grad;
    at::Tensor f = logits.detach();
    at::Tensor s = shift.detach();
    at::Tensor margin = f.gather(1, targets.to(at::kLong).unsqueeze(1)) - f;  // [N, K]
    // Reference LmtFc: per class 1 if margin >= shift, margin/shift if 0 <= margin < shift,
    // 0 if margin < 0; the target (shift 0, margin 0) counts as 1. One factor per sample: min.
    at::Tensor ratio = at::where(s > 0, margin / s, at::where(margin >= 0, 1.0, 0.0));
    factor = std::get<0>(ratio.clamp(0.0, 1.0).min(1, /*keepdim=*/true));
  }
  return cross_entropy(logits + factor * shift, targets);
}

at::Tensor global_margin_lipschitz(const at::Tensor& logits, const at::Tensor& targets,
                                   const at::Tensor& lipschitz_bound) {
  check_batch(logits, targets, "global_margin_lipschitz");
  return std::sqrt(2.0) * lipschitz_bound.to(logits.scalar_type()) *
         off_target_mask(logits, targets);
}

at::Tensor pairwise_margin_lipschitz(const at::Tensor& logits, const at::Tensor& targets,
                                     const HeadSplit& head) {
  check_batch(logits, targets, "pairwise_margin_lipschitz");
  if (!head.defined())
    throw BoundError(
        "pairwise_margin_lipschitz: the model has no linear head (HeadSplit undefined)");
  if (head.head_weight.dim() != 2 || head.head_weight.size(0) != logits.size(1)) {
    throw BoundError("pairwise_margin_lipschitz: head_weight must be [K, F] with K = " +
                     std::to_string(logits.size(1)) + ", got " +
                     c10::str(head.head_weight.sizes()));
  }
  return head.body_bound.to(logits.scalar_type()) *
         class_weight_distances(head.head_weight.to(logits.scalar_type()), targets);
}

at::Tensor emma_loss(const at::Tensor& logits, const at::Tensor& targets,
                     const at::Tensor& margin_lipschitz, double eps) {
  check_batch(logits, targets, "emma_loss");
  if (!margin_lipschitz.sizes().equals(logits.sizes()))
    throw BoundError("emma_loss: margin_lipschitz must be [N, K] like the logits, got " +
                     c10::str(margin_lipschitz.sizes()));
  if (eps == 0.0) return cross_entropy(logits, targets);
  at::Tensor fraction;  // e_j [N, K], held constant (no gradient); 0 at the target
  {
    at::NoGradGuard no_grad;
    at::Tensor f = logits.detach();
    at::Tensor k = margin_lipschitz.detach();
    at::Tensor margin = f.gather(1, targets.to(at::kLong).unsqueeze(1)) - f;  // F_t - F_j
    // k > 0 off the target for any non-degenerate model; where it is 0 the shift is 0 anyway.
    at::Tensor ratio = at::where(k > 0, margin / (k * eps), at::ones_like(k));
    fraction = ratio.clamp(0.01, 1.0) * off_target_mask(logits, targets);
  }
  return cross_entropy(logits + fraction * eps * margin_lipschitz.to(logits.scalar_type()),
                       targets);
}

double lmt_c_at(double c, double warmup_epochs, double epoch_progress) {
  if (warmup_epochs <= 0) return c;
  return c * std::clamp(epoch_progress / warmup_epochs, 0.0, 1.0);
}

}  // namespace lmt::lipschitz
