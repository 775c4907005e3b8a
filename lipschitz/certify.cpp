// lmt::lipschitz: certified radii from a bound (global and pairwise) and the certification
// summary (clean and certified accuracy, median radius).
#include <algorithm>
#include <cmath>
#include <limits>

#include <lmt/lipschitz/certify.h>
#include <lmt/lipschitz/lmt_loss.h>

namespace lmt::lipschitz {

namespace {
void check_batch(const at::Tensor& logits, const at::Tensor& labels, const char* who) {
  if (logits.dim() != 2 || labels.dim() != 1 || labels.size(0) != logits.size(0) ||
      logits.size(1) < 2) {
    throw BoundError(std::string(who) + ": expected logits [N, K >= 2] and labels [N], got " +
                     c10::str(logits.sizes()) + " and " + c10::str(labels.sizes()));
  }
}
}  // namespace

at::Tensor certified_radius(const at::Tensor& logits, const at::Tensor& labels,
                            const at::Tensor& lipschitz_bound) {
  check_batch(logits, labels, "certified_radius");
  at::NoGradGuard no_grad;
  at::Tensor f = logits.detach().to(at::kDouble);
  at::Tensor t = labels.to(at::kLong).unsqueeze(1);
  at::Tensor others = f.scatter(1, t, -std::numeric_limits<double>::infinity());
  at::Tensor margin = f.gather(1, t).squeeze(1) - std::get<0>(others.max(1));
  const double L = lipschitz_bound.detach().to(at::kDouble).item<double>();
  if (!(L > 0))
    throw BoundError("certified_radius: the bound must be positive, got " + std::to_string(L));
  return margin.clamp_min(0.0) / (std::sqrt(2.0) * L);
}

at::Tensor certified_radius_pairwise(const at::Tensor& logits, const at::Tensor& labels,
                                     const HeadSplit& head) {
  check_batch(logits, labels, "certified_radius_pairwise");
  if (!head.defined() || head.head_weight.size(0) != logits.size(1)) {
    throw BoundError("certified_radius_pairwise: needs a HeadSplit whose head_weight has " +
                     std::to_string(logits.size(1)) + " rows");
  }
  at::NoGradGuard no_grad;
  at::Tensor f = logits.detach().to(at::kDouble);
  at::Tensor t = labels.to(at::kLong);
  at::Tensor w = head.head_weight.detach().to(at::kDouble);
  const double Lh = head.body_bound.detach().to(at::kDouble).item<double>();
  if (!(Lh > 0)) throw BoundError("certified_radius_pairwise: body_bound must be positive");
  at::Tensor radius = at::empty({f.size(0)}, f.options());
  for (int64_t k = 0; k < w.size(0); ++k) {  // exact float64 distances, one target class at a time
    at::Tensor rows = (t == k).nonzero().squeeze(1);
    if (rows.numel() == 0) continue;
    at::Tensor dist = (w - w[k]).norm(2, {1});  // [K]
    at::Tensor fk = f.index_select(0, rows);
    at::Tensor gap = fk.select(1, k).unsqueeze(1) - fk;  // [n_k, K]
    at::Tensor r = gap / (Lh * dist).unsqueeze(0);
    // Class k itself and classes with w_i == w_k (a constant logit gap) do not limit the radius,
    // unless the gap is not positive.
    at::Tensor limiting = r.masked_fill((dist == 0).unsqueeze(0).expand_as(r),
                                        std::numeric_limits<double>::infinity());
    limiting = at::where(gap <= 0, at::zeros_like(r), limiting);
    limiting.select(1, k).fill_(std::numeric_limits<double>::infinity());
    radius.index_copy_(0, rows, std::get<0>(limiting.min(1)).clamp_min(0.0));
  }
  return radius;
}

CertificationSummary summarize(const at::Tensor& radii, const at::Tensor& correct,
                               const std::vector<double>& eps, double bound) {
  if (radii.dim() != 1 || correct.dim() != 1 || radii.size(0) != correct.size(0)) {
    throw BoundError("summarize: radii and correct must be [N] of the same N, got " +
                     c10::str(radii.sizes()) + " and " + c10::str(correct.sizes()));
  }
  CertificationSummary s;
  s.n = radii.size(0);
  s.eps = eps;
  s.bound = bound;
  if (s.n == 0) return s;
  at::Tensor ok = correct.to(at::kBool);
  at::Tensor r = at::where(ok, radii.to(at::kDouble), at::zeros_like(radii, at::kDouble));
  s.clean_accuracy = ok.to(at::kDouble).mean().item<double>();
  for (double e : eps) {
    s.certified_accuracy.push_back((ok & (r >= e)).to(at::kDouble).mean().item<double>());
  }
  at::Tensor sorted = std::get<0>(r.sort());
  const int64_t mid = s.n / 2;
  s.median_radius = s.n % 2 == 1
                        ? sorted[mid].item<double>()
                        : 0.5 * (sorted[mid - 1].item<double>() + sorted[mid].item<double>());
  return s;
}

}  // namespace lmt::lipschitz
