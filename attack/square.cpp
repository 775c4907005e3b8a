// Square attack (Andriushchenko et al. 2020), score-based black-box random search: only forward
// passes. Linf follows the reference square.py: vertical-stripe start, one random square per
// iteration (same position for the batch, random sign per image and channel), the square's side
// from the p schedule rescaled to the query budget, accepted when the margin loss decreases.
// L2 is a simplified variant (see the header of square_l2_proposal).
#include <lmt/attack/attack.h>

#include <algorithm>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

namespace lmt::attack {
namespace {

at::Tensor per_point(const at::Tensor& v, const at::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  return v.reshape(shape);
}

// The fraction of pixels changed at iteration `it` of a budget of `queries` (reference
// p_selection with the schedule rescaled to 10000 queries).
double p_selection(double p_init, int it, int queries) {
  const int i = int(double(it) / queries * 10000);
  if (i <= 10) return p_init;
  if (i <= 50) return p_init / 2;
  if (i <= 200) return p_init / 4;
  if (i <= 500) return p_init / 8;
  if (i <= 1000) return p_init / 16;
  if (i <= 2000) return p_init / 32;
  if (i <= 4000) return p_init / 64;
  if (i <= 6000) return p_init / 128;
  if (i <= 8000) return p_init / 256;
  return p_init / 512;
}

// Margin z_y - max_{i != y} z_i per point (<= 0: misclassified).
at::Tensor margin(const at::Tensor& logits, const at::Tensor& y) {
  at::Tensor z_y = logits.gather(1, y.unsqueeze(1)).squeeze(1);
  at::Tensor others = logits.scatter(1, y.unsqueeze(1), -std::numeric_limits<float>::infinity());
  return z_y - std::get<0>(others.max(1));
}

at::Tensor random_sign(at::IntArrayRef shape, at::Generator& gen, const at::TensorOptions& opt) {
  return at::randint(0, 2, shape, gen, opt) * 2 - 1;
}

// L2 (simplified): the perturbation inside one random s x s square is replaced by a random-sign
// pattern carrying the square's current energy plus the unused budget eps^2 - ||delta||^2; the
// whole perturbation is then projected back onto the ball and the box. The reference moves energy
// between two squares with a pseudo-Gaussian pattern; this keeps its random-search structure.
at::Tensor square_l2_proposal(const at::Tensor& delta, double eps, int64_t s, int64_t vh,
                              int64_t vw, at::Generator& gen) {
  using at::indexing::Slice;
  const int64_t n = delta.size(0), c = delta.size(1);
  at::Tensor window = delta.index({Slice(), Slice(), Slice(vh, vh + s), Slice(vw, vw + s)});
  at::Tensor window_energy = window.pow(2).flatten(1).sum(1);
  at::Tensor spare = (eps * eps - delta.pow(2).flatten(1).sum(1)).clamp_min(0);
  at::Tensor energy = (window_energy + spare).clamp_min(1e-12);
  at::Tensor pattern = random_sign({n, c, s, s}, gen, delta.options());
  pattern = pattern * per_point((energy / double(c * s * s)).sqrt(), pattern);
  at::Tensor proposal = delta.clone();
  proposal.index_put_({Slice(), Slice(), Slice(vh, vh + s), Slice(vw, vw + s)}, pattern);
  return proposal;
}

}  // namespace

AttackResult square(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                    const SquareOptions& o) {
  if (!(o.eps() >= 0)) throw AttackError("Square: eps must be >= 0");
  if (o.queries() < 1) throw AttackError("Square: queries must be >= 1");
  at::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(o.seed());
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3);
  AttackResult out{x.clone(), correct_mask(f, x, y)};
  at::Tensor idx = out.still_correct.nonzero().flatten();
  if (idx.numel() == 0) return out;
  at::Tensor xs = x.index_select(0, idx), ys = y.index_select(0, idx);
  const int64_t n = xs.size(0);

  at::Tensor stripes = random_sign({n, c, 1, w}, gen, x.options()).expand({n, c, h, w});
  const double start_scale =
      o.norm() == Norm::kL2 ? o.eps() / std::sqrt(double(c * h * w)) : o.eps();
  at::Tensor best = project(xs + start_scale * stripes, xs, o.norm(), o.eps());
  at::Tensor best_margin = margin(f(best), ys);

  for (int it = 1; it < o.queries(); ++it) {
    at::Tensor active = best_margin.gt(0).nonzero().flatten();
    if (active.numel() == 0) break;
    const double p = p_selection(o.p_init(), it, o.queries());
    const int64_t s = std::clamp<int64_t>(
        int64_t(std::lround(std::sqrt(p * double(h * w)))), 1, std::min(h, w));
    const int64_t vh = at::randint(0, h - s + 1, {1}, gen, at::kLong).item<int64_t>();
    const int64_t vw = at::randint(0, w - s + 1, {1}, gen, at::kLong).item<int64_t>();
    at::Tensor xa = xs.index_select(0, active), ya = ys.index_select(0, active);
    at::Tensor delta = best.index_select(0, active) - xa;
    at::Tensor proposal;
    if (o.norm() == Norm::kLinf) {
      using at::indexing::Slice;
      proposal = delta.clone();
      proposal.index_put_({Slice(), Slice(), Slice(vh, vh + s), Slice(vw, vw + s)},
                          o.eps() * random_sign({xa.size(0), c, 1, 1}, gen, x.options())
                                      .expand({xa.size(0), c, s, s}));
    } else {
      proposal = square_l2_proposal(delta, o.eps(), s, vh, vw, gen);
    }
    at::Tensor x_new = project(xa + proposal, xa, o.norm(), o.eps());
    at::Tensor m = margin(f(x_new), ya);
    at::Tensor better = m.lt(best_margin.index_select(0, active));
    at::Tensor take = active.index({better});
    best.index_copy_(0, take, x_new.index({better}));
    best_margin.index_copy_(0, take, m.index({better}));
  }
  at::Tensor fooled = best_margin.le(0);
  out.adversarial.index_copy_(0, idx, best);
  out.still_correct.index_fill_(0, idx.index({fooled}), false);
  return out;
}

}  // namespace lmt::attack
