// Square attack (Andriushchenko et al. 2020), score-based black-box random search: only forward
// passes, following AutoAttack's square.py (p_init 0.8, margin loss, p schedule not rescaled to
// the budget unless asked). A proposal is kept when the margin drops (or the point is fooled).
// Linf: vertical-stripe start, one random square per iteration (same position for the batch,
// random sign per image and channel) set to +-eps. L2: a grid of "meta-squares" start (two
// centered squares of opposite sign, see meta_square), then per iteration the energy of a
// second random window is moved into a first one, refilled with a fresh meta-square plus its
// old content, and the whole perturbation rescaled to norm eps.
#include <lmt/attack/attack.h>

#include <algorithm>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include "gradient.h"

namespace lmt::attack {
namespace {

// The fraction of pixels changed at iteration `it` (the reference p_selection: halved after
// iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of a 10000-query schedule).
double p_selection(double p_init, int it, int queries, bool rescale) {
  const int i = rescale ? int(double(it) / queries * 10000) : it;
  const int bounds[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
  double p = p_init;
  for (int b : bounds)
    if (i > b) p /= 2;
  return p;
}

// Margin z_y - max_{i != y} z_i per point (<= 0: misclassified).
at::Tensor margin(const at::Tensor& logits, const at::Tensor& y) {
  at::Tensor z_y = logits.gather(1, y.unsqueeze(1)).squeeze(1);
  at::Tensor others = logits.scatter(1, y.unsqueeze(1), -std::numeric_limits<float>::infinity());
  return z_y - std::get<0>(others.max(1));
}

at::Tensor random_sign(at::IntArrayRef shape, at::Generator& gen, const at::TensorOptions& opt) {
  return host_randint(0, 2, shape, gen, opt) * 2 - 1;
}

int64_t random_offset(int64_t range, at::Generator& gen) {  // uniform in [0, range]
  return at::randint(0, range + 1, {1}, gen, at::kLong).item<int64_t>();
}

// Half of the meta-square, rows x cols: concentric rectangles around (rows/2, cols/2), pixel
// value sum_{k >= m}^{K-1} 1/(k+1)^2 at Chebyshev distance m from the centre (K = max(rows,
// cols)/2 + 1), unit L2 norm.
at::Tensor centered_rectangles(int64_t rows, int64_t cols, const at::TensorOptions& opt) {
  const int64_t K = std::max(rows / 2, cols / 2) + 1;
  at::Tensor weight = at::arange(1, K + 1, opt.dtype(at::kDouble)).pow(-2);
  at::Tensor tail = weight.flip({0}).cumsum(0).flip({0});  // tail[m] = sum_{k >= m} weight[k]
  at::Tensor di = (at::arange(rows, opt.dtype(at::kLong)) - rows / 2).abs().unsqueeze(1);
  at::Tensor dj = (at::arange(cols, opt.dtype(at::kLong)) - cols / 2).abs().unsqueeze(0);
  at::Tensor v = tail.index({at::maximum(di, dj)});
  return (v / v.norm()).to(opt.dtype());
}

// The L2 window pattern: the top half centred rectangles, the bottom half their negative, unit
// norm, transposed with probability 1/2.
at::Tensor meta_square(int64_t s, at::Generator& gen, const at::TensorOptions& opt) {
  at::Tensor top = centered_rectangles(s / 2, s, opt);
  at::Tensor bottom = -centered_rectangles(s - s / 2, s, opt);
  at::Tensor m = s / 2 > 0 ? at::cat({top, bottom}, 0) : bottom;
  m = m / m.norm();
  if (at::rand({1}, gen, at::kDouble).item<double>() > 0.5) m = m.t().contiguous();
  return m;
}

at::Tensor l2_normalize(const at::Tensor& delta) {
  return delta / per_point(delta.flatten(1).norm(2, 1) + 1e-12, delta);
}

// The L2 start: a grid of (h/5)-sided meta-squares, each with a random sign per image and
// channel, rescaled to norm eps.
at::Tensor square_l2_start(const at::Tensor& x, double eps, at::Generator& gen) {
  using at::indexing::Slice;
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t s = std::max<int64_t>(h / 5, 1);
  at::Tensor delta = at::zeros_like(x);
  for (int64_t vh = (h - 5 * s) / 2, i = 0; i < h / s; ++i, vh += s)
    for (int64_t vw = (w - 5 * s) / 2, j = 0; j < w / s; ++j, vw += s) {
      if (vh + s > h || vw + s > w) continue;
      at::Tensor pattern = meta_square(s, gen, x.options()).view({1, 1, s, s}) *
                           random_sign({n, c, 1, 1}, gen, x.options());
      delta.index({Slice(), Slice(), Slice(vh, vh + s), Slice(vw, vw + s)}) += pattern;
    }
  return project(x + eps * l2_normalize(delta), x, Norm::kL2, eps);
}

// One L2 step: the energy of window 2 (and window 1's) moves into window 1, which gets a fresh
// meta-square (random sign per image and channel) plus its normalized old content, each channel
// scaled to sqrt(unused budget / c + ||delta on both windows||^2); then delta is rescaled to eps.
at::Tensor square_l2_proposal(const at::Tensor& x, const at::Tensor& delta, double eps,
                              double p, at::Generator& gen) {
  using at::indexing::Slice;
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  int64_t s = std::max<int64_t>(std::lround(std::sqrt(p * double(h * w))), 3);
  if (s % 2 == 0) ++s;  // odd: the meta-square has a centre row
  s = std::min({s, h, w});
  const int64_t vh = random_offset(h - s, gen), vw = random_offset(w - s, gen);
  const int64_t vh2 = random_offset(h - s, gen), vw2 = random_offset(w - s, gen);
  const auto window1 = std::vector<at::indexing::TensorIndex>{Slice(), Slice(), Slice(vh, vh + s),
                                                              Slice(vw, vw + s)};
  const auto window2 = std::vector<at::indexing::TensorIndex>{
      Slice(), Slice(), Slice(vh2, vh2 + s), Slice(vw2, vw2 + s)};
  at::Tensor mask = at::zeros({1, 1, h, w}, x.options());
  mask.index(window1).fill_(1);
  mask.index(window2).fill_(1);
  at::Tensor used = delta.pow(2).flatten(1).sum(1);
  at::Tensor windows_energy = (delta * mask).pow(2).flatten(1).sum(1);
  at::Tensor old = delta.index(window1);
  at::Tensor fresh = meta_square(s, gen, x.options()).view({1, 1, s, s}) *
                         random_sign({n, c, 1, 1}, gen, x.options()) +
                     old / (old.pow(2).sum({2, 3}, true).sqrt() + 1e-12);
  at::Tensor channel_norm =
      ((eps * eps - used).clamp_min(0) / double(c) + windows_energy).sqrt().view({n, 1, 1, 1});
  fresh = fresh / (fresh.pow(2).sum({2, 3}, true).sqrt() + 1e-12) * channel_norm;
  at::Tensor proposal = delta.clone();
  proposal.index_put_(window2, 0.0);
  proposal.index_put_(window1, fresh);
  return project(x + eps * l2_normalize(proposal), x, Norm::kL2, eps);
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

  at::Tensor best;
  if (o.norm() == Norm::kLinf) {
    at::Tensor stripes = random_sign({n, c, 1, w}, gen, x.options()).expand({n, c, h, w});
    best = project(xs + o.eps() * stripes, xs, o.norm(), o.eps());
  } else {
    best = square_l2_start(xs, o.eps(), gen);
  }
  at::Tensor best_margin = margin(f(best), ys);

  for (int it = 0; it < o.queries(); ++it) {
    at::Tensor active = best_margin.gt(0).nonzero().flatten();
    if (active.numel() == 0) break;
    const double p = p_selection(o.p_init(), it, o.queries(), o.rescale_schedule());
    at::Tensor xa = xs.index_select(0, active), ya = ys.index_select(0, active);
    at::Tensor delta = best.index_select(0, active) - xa;
    at::Tensor x_new;
    if (o.norm() == Norm::kLinf) {
      using at::indexing::Slice;
      const int64_t s = std::clamp<int64_t>(std::lround(std::sqrt(p * double(h * w))), 1,
                                            std::min(h, w));
      const int64_t vh = random_offset(h - s, gen), vw = random_offset(w - s, gen);
      at::Tensor proposal = delta.clone();
      proposal.index_put_({Slice(), Slice(), Slice(vh, vh + s), Slice(vw, vw + s)},
                          o.eps() * random_sign({xa.size(0), c, 1, 1}, gen, x.options())
                                        .expand({xa.size(0), c, s, s}));
      x_new = project(xa + proposal, xa, o.norm(), o.eps());
    } else {
      x_new = square_l2_proposal(xa, delta, o.eps(), p, gen);
    }
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
