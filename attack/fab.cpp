// FAB-T (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive
// boundary attack"), targeted as in AutoAttack's standard suite (fab_pt.py's defaults: 100
// iterations, 1 restart, alpha_max 0.1, eta 1.05, beta 0.9, 9 target classes). Each iteration
// linearizes g = z_t - z_y at the iterate x_k, projects both x_k and the original x onto
// {g_lin = 0} within [0,1] (d1, d2), and steps to
//   x_{k+1} = clamp((x_k + eta d1)(1 - a) + (x + eta d2) a, 0, 1),  a = min(|d1|/(|d1|+|d2|), alpha_max);
// a misclassified x_{k+1} is kept when it is the closest so far, then pulled back to
// x + beta (x_{k+1} - x). The projections are exact (sort + prefix sums), in float64.
#include <lmt/attack/attack.h>

#include <cmath>
#include <limits>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include "gradient.h"

namespace lmt::attack {
namespace {

// Per row, the value of `prefix` (an inclusive prefix sum [M,D]) over the first k entries
// (0 for k = 0).
at::Tensor prefix_at(const at::Tensor& prefix, const at::Tensor& k) {
  at::Tensor v = prefix.gather(1, (k - 1).clamp_min(0).unsqueeze(1)).squeeze(1);
  return at::where(k.gt(0), v, at::zeros_like(v));
}

// Exclusive suffix sums: out[:, j] = sum_{i > j} v[:, i] (exactly 0 after the last nonzero).
at::Tensor suffix_after(const at::Tensor& v) {
  at::Tensor inclusive = v.flip({1}).cumsum(1).flip({1});
  return at::cat({inclusive.narrow(1, 1, v.size(1) - 1), at::zeros({v.size(0), 1}, v.options())},
                 1);
}

// L2: d(lam) = clamp(-lam w, -t, 1 - t) for lam >= 0 (KKT); w.d(lam) decreases piecewise
// linearly, with a kink where a coordinate reaches the box (lam_i = its box distance / |w_i|).
// With the kinks sorted, w.d at each is a prefix sum; the first kink past -c fixes the segment
// and lam on it.
at::Tensor project_l2(const at::Tensor& t, const at::Tensor& w, const at::Tensor& c) {
  const int64_t D = t.size(1);
  at::Tensor lo = -t, hi = 1 - t;
  at::Tensor saturated = at::where(w.gt(0), lo, at::where(w.lt(0), hi, at::zeros_like(t)));
  at::Tensor kink = at::where(w.ne(0), saturated / (-w), at::full_like(t, INFINITY));
  at::Tensor order = std::get<1>(kink.sort(1));
  at::Tensor k_sorted = kink.gather(1, order);
  at::Tensor w2 = w.pow(2).gather(1, order);
  at::Tensor wd = (w * saturated).gather(1, order);
  at::Tensor tail = suffix_after(w2);  // sum of w^2 of the coordinates not yet at the box
  at::Tensor moving = at::where(tail.gt(0), k_sorted * tail, at::zeros_like(tail));
  at::Tensor value_at_kink = wd.cumsum(1) - moving;  // w.d at each kink, nonincreasing
  at::Tensor k = value_at_kink.gt(-c.unsqueeze(1)).sum(1);  // kinks before the solution
  at::Tensor free_w2 = at::where(k.gt(0), tail.gather(1, (k - 1).clamp_min(0).unsqueeze(1))
                                              .squeeze(1),
                                 w.pow(2).sum(1));
  at::Tensor lam = (prefix_at(wd.cumsum(1), k) + c) / free_w2;
  // All coordinates at the box and still short of the plane: the nearest corner.
  lam = at::where(k.eq(D).logical_or(free_w2.le(0)), at::full_like(lam, INFINITY), lam);
  at::Tensor d = at::where(w.ne(0), at::clamp(-lam.unsqueeze(1) * w, lo, hi), at::zeros_like(t));
  return at::where(k.eq(D).unsqueeze(1), saturated, d);
}

// Linf: d(r) = -sign(w) min(r, p) with p the distance to the box face against w; w.d(r) =
// -sum |w_i| min(r, p_i) is piecewise linear with kinks at the sorted p.
at::Tensor project_linf(const at::Tensor& t, const at::Tensor& w, const at::Tensor& c) {
  const int64_t D = t.size(1);
  at::Tensor dir = -w.sign();
  at::Tensor p = at::where(w.gt(0), t, at::where(w.lt(0), 1 - t, at::zeros_like(t)));
  at::Tensor order = std::get<1>(p.sort(1));
  at::Tensor p_sorted = p.gather(1, order);
  at::Tensor a = w.abs().gather(1, order);
  at::Tensor ap_prefix = (a * p_sorted).cumsum(1);
  at::Tensor tail = suffix_after(a);  // sum of |w| of the coordinates not yet at the box
  at::Tensor reach_at_kink = ap_prefix + p_sorted * tail;  // -(w.d) at r = p_sorted, nondecreasing
  at::Tensor k = reach_at_kink.lt(c.unsqueeze(1)).sum(1);
  at::Tensor free_a = at::where(k.gt(0), tail.gather(1, (k - 1).clamp_min(0).unsqueeze(1))
                                             .squeeze(1),
                                a.sum(1));
  at::Tensor r = (c - prefix_at(ap_prefix, k)) / free_a;
  r = at::where(k.eq(D).logical_or(free_a.le(0)), at::full_like(r, INFINITY), r);
  return dir * at::minimum(r.unsqueeze(1), p);
}

// One FAB run toward `target` from `start` on points all correctly classified. Returns the
// closest misclassified iterate (x where none) and its norm (inf where none).
std::pair<at::Tensor, at::Tensor> fab_run(const Classifier& f, const at::Tensor& x,
                                          const at::Tensor& y, const at::Tensor& target,
                                          const at::Tensor& start, const FabOptions& o) {
  const int64_t n = x.size(0);
  const at::Tensor x0 = x.flatten(1).to(at::kDouble);
  at::Tensor x1 = start.clone();
  at::Tensor best = x.clone();
  at::Tensor best_norm = at::full({n}, INFINITY, x0.options());
  const at::Tensor ty = target.unsqueeze(1), yy = y.unsqueeze(1);
  for (int it = 0; it < o.iterations(); ++it) {
    at::Tensor gap;  // z_t - z_y: negative while the point is correct
    at::Tensor grad = input_gradient(
        [&](const at::Tensor& v) {
          at::Tensor z = f(v);
          return (z.gather(1, ty) - z.gather(1, yy)).squeeze(1);
        },
        x1, &gap);
    at::NoGradGuard no_grad;
    // The linearized boundary w.v = b with w = grad, b = w.x1 - gap.
    at::Tensor w = grad.flatten(1).to(at::kDouble);
    at::Tensor xk = x1.flatten(1).to(at::kDouble);
    at::Tensor b = (w * xk).sum(1) - gap.to(at::kDouble);
    at::Tensor d = hyperplane_box_projection(at::cat({xk, x0}), at::cat({w, w}), at::cat({b, b}),
                                             o.norm());
    at::Tensor d1 = d.narrow(0, 0, n), d2 = d.narrow(0, n, n);
    auto size = [&](const at::Tensor& v) {
      return (o.norm() == Norm::kL2 ? v.norm(2, 1) : v.abs().amax(1)).clamp_min(1e-8);
    };
    at::Tensor a1 = size(d1), a2 = size(d2);
    at::Tensor alpha = (a1 / (a1 + a2)).clamp(0.0, o.alpha_max()).unsqueeze(1);
    at::Tensor next = ((xk + o.eta() * d1) * (1 - alpha) + (x0 + o.eta() * d2) * alpha).clamp(0, 1);
    x1 = next.to(x.scalar_type()).reshape(x.sizes());

    at::Tensor fooled = f(x1).argmax(1).ne(y);
    at::Tensor norm = perturbation_norm(x1 - x, o.norm());
    at::Tensor closer = fooled.logical_and(norm.lt(best_norm));
    best.index_put_({closer}, x1.index({closer}));
    best_norm = at::where(closer, norm, best_norm);
    // Back toward x, to look for a closer crossing.
    at::Tensor pulled = x + (x1 - x) * o.beta();
    x1 = at::where(per_point(fooled, x1), pulled, x1);
  }
  return {best, best_norm};
}

// The reference's random start: x + (eps/2) (a unit random direction), clamped to the box.
at::Tensor fab_start(const at::Tensor& x, Norm norm, double eps, at::Generator& gen) {
  return (x + 0.5 * eps * unit_random_direction(x, norm, gen)).clamp(0.0, 1.0);
}

}  // namespace

at::Tensor hyperplane_box_projection(const at::Tensor& t, const at::Tensor& w, const at::Tensor& b,
                                     Norm norm) {
  if (t.dim() != 2 || !t.sizes().equals(w.sizes()) || b.dim() != 1 || b.size(0) != t.size(0))
    throw AttackError("hyperplane_box_projection: expected t, w [M,D] and b [M]");
  at::NoGradGuard no_grad;
  at::Tensor t64 = t.to(at::kDouble), w64 = w.to(at::kDouble), b64 = b.to(at::kDouble);
  // Orient every plane so that t lies on its positive side: then d must lower w.t by c >= 0.
  at::Tensor c = (w64 * t64).sum(1) - b64;
  at::Tensor side = at::where(c.lt(0), at::full_like(c, -1.0), at::ones_like(c));
  w64 = w64 * side.unsqueeze(1);
  c = c * side;
  return norm == Norm::kL2 ? project_l2(t64, w64, c) : project_linf(t64, w64, c);
}

AttackResult fab_t(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                   const FabOptions& o, at::Tensor* distance) {
  if (!(o.eps() >= 0)) throw AttackError("FAB-T: eps must be >= 0");
  if (o.iterations() < 1 || o.restarts() < 1 || o.target_classes() < 1)
    throw AttackError("FAB-T: iterations, restarts and target_classes must be >= 1");
  if (o.restarts() > 1 && !std::isfinite(o.eps()))
    throw AttackError("FAB-T: random restarts need a finite eps (they start in the eps/2 ball)");
  at::Generator gen = at::detail::createCPUGenerator(o.seed());
  AttackResult out{x.clone(), correct_mask(f, x, y)};
  const auto f64 = x.options().dtype(at::kDouble);
  at::Tensor best_norm = at::where(out.still_correct, at::full({x.size(0)}, INFINITY, f64),
                                   at::zeros({x.size(0)}, f64));
  at::Tensor ranking;
  {
    at::NoGradGuard no_grad;
    ranking = std::get<1>(f(x).sort(1, /*descending=*/true));
  }
  const int targets = int(std::min<int64_t>(o.target_classes(), ranking.size(1) - 1));
  for (int t = 1; t <= targets; ++t) {
    for (int r = 0; r < o.restarts(); ++r) {
      at::Tensor idx = out.still_correct.nonzero().flatten();
      if (idx.numel() == 0) break;
      at::Tensor xs = x.index_select(0, idx), ys = y.index_select(0, idx);
      at::Tensor target = ranking.index_select(0, idx).select(1, t).contiguous();
      at::Tensor start = r == 0 ? xs : fab_start(xs, o.norm(), o.eps(), gen);
      auto [adv, norm] = fab_run(f, xs, ys, target, start, o);
      at::NoGradGuard no_grad;
      best_norm.index_copy_(0, idx, at::minimum(best_norm.index_select(0, idx), norm));
      at::Tensor broken = norm.le(o.eps());
      at::Tensor broken_idx = idx.index({broken});
      out.adversarial.index_copy_(0, broken_idx, adv.index({broken}));
      out.still_correct.index_fill_(0, broken_idx, false);
    }
  }
  if (distance) *distance = best_norm;
  return out;
}

}  // namespace lmt::attack
