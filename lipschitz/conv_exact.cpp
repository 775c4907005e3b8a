// lmt::lipschitz (private): tight sound bounds of a zero-padded conv from its explicit matrix.
// See conv_exact.h and docs/methods.md#sound-bounds.
//
// Soundness. Let A be the exact operator (entries copied from the float64 kernel, no rounding)
// and G = A^T A (or A A^T, same nonzero spectrum). Cholesky certificate: if the float64 Cholesky
// factorisation of M^ = fl(mu I - G^), with G^ the computed Gram, runs to completion, then
// (Demmel 1989; Higham, Accuracy and Stability, Thm 10.3, which holds for any order of the
// inner products and so for the blocked / block-tridiagonal variants with conventional BLAS)
// R^T R = M^ + dM with |dM| <= gamma_q |R^T| |R|, q the longest inner product + 1 (we add 2 more
// for BLAS kernels that multiply by a rounded reciprocal of the pivot). R^T R >= 0 and
// ||dM||_2 <= gamma_q ||R||_F^2 <= gamma_q / (1 - gamma_q) tr(M^) <= gamma_q / (1 - gamma_q) n mu
// (1 + u). The Gram's rounding: |G^ - G| <= gamma_g |A|^T |A| entrywise (g = the inner
// dimension), so ||G^ - G||_2 <= gamma_g || |A| ||_2^2 <= gamma_g ||A||_F^2
// <= gamma_g oh ow ||w||_F^2 (each weight entry appears at most oh * ow times in A). The
// diagonal subtraction mu - G^_jj rounds by <= u mu (0 <= G^_jj < mu once the pivots are
// positive). Hence mu I - G >= -(eps) I with eps the sum of these three terms, i.e.
// lambda_max(G) <= mu + eps: a proof that needs no trust in the eigensolver, which only proposes
// mu. We return mu + 2 eps (the doubling covers the rounding of eps and of the sum: eps >= 3 u mu).
#include "conv_exact.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <ATen/TensorIndexing.h>

namespace lmt::lipschitz::detail {

namespace {

constexpr double kUnit = 0x1p-53;  // unit roundoff of float64
double gamma(double n) { return n * kUnit / (1 - n * kUnit); }

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

struct Range {
  int64_t begin = 0, end = 0;
  int64_t size() const { return std::max<int64_t>(0, end - begin); }
};

// The Gram matrix of one group, block tridiagonal: diag[i] = G[i, i], upper[i] = G[i, i + 1].
struct BlockGram {
  std::vector<at::Tensor> diag, upper;
  int64_t order = 0;       // n
  int64_t chol_terms = 0;  // q of the Cholesky bound: longest inner product + 3
  int64_t gram_terms = 0;  // the longest inner product forming an entry of G^
};

// Blocks of `rows_per_block` rows of the input grid (G = A^T A: input rows h, h' interact only
// when |h - h'| <= k - 1, a block of k - 1 rows meets only its neighbours) or of the output grid
// (G = A A^T: |y - y'| <= (k - 1) / stride).
class GramBuilder {
 public:
  GramBuilder(const at::Tensor& w, const ConvShape& s, bool input_side)
      : w_(w), s_(s), input_side_(input_side) {}

  BlockGram build(int64_t rows_per_block) {
    const int64_t rows = input_side_ ? s_.h : s_.out_h();
    const int64_t per_row = input_side_ ? s_.in * s_.w : s_.out * s_.out_w();
    const int64_t other_per_row = input_side_ ? s_.out * s_.out_w() : s_.in * s_.w;
    std::vector<Range> blocks;
    for (int64_t r = 0; r < rows; r += rows_per_block)
      blocks.push_back({r, std::min(rows, r + rows_per_block)});
    BlockGram g;
    for (size_t i = 0; i < blocks.size(); ++i) {
      const Range other = other_of(blocks[i]);
      g.gram_terms = std::max(g.gram_terms, other.size() * other_per_row);
      g.diag.push_back(cached({rel(blocks[i], other), blocks[i].size(), other.size()}, [&] {
        at::Tensor a = sub(blocks[i], other);
        return at::matmul(a.t(), a);
      }));
      const int64_t m = blocks[i].size() * per_row;
      const int64_t m_prev = i > 0 ? blocks[i - 1].size() * per_row : 0;
      g.order += m;
      g.chol_terms = std::max(g.chol_terms, m + m_prev + 3);
      if (i + 1 == blocks.size()) break;
      const Range a = other_of(blocks[i]), b = other_of(blocks[i + 1]);
      const Range common{std::max(a.begin, b.begin), std::min(a.end, b.end)};
      if (common.size() == 0) {
        g.upper.push_back(at::zeros({m, blocks[i + 1].size() * per_row}, w_.options()));
        continue;
      }
      g.upper.push_back(cached(
          {rel(blocks[i], common), blocks[i].size(), rel(blocks[i + 1], common),
           blocks[i + 1].size(), common.size()},
          [&] { return at::matmul(sub(blocks[i], common).t(), sub(blocks[i + 1], common)); }));
    }
    return g;
  }

 private:
  // The rows of the other grid that touch `r`: output rows reading input rows r, or input rows
  // read by output rows r.
  Range other_of(Range r) const {
    const int64_t k = s_.k, st = s_.stride, p = s_.padding;
    if (input_side_)
      return {std::max<int64_t>(0, ceil_div(r.begin + p - k + 1, st)),
              std::min(s_.out_h(), floor_div(r.end - 1 + p, st) + 1)};
    return {std::max<int64_t>(0, st * r.begin - p), std::min(s_.h, st * (r.end - 1) - p + k)};
  }
  // conv_matrix's entries depend only on h0 - stride * y0 and the two sizes: equal keys, equal
  // blocks (translation invariance), so the interior blocks are formed once.
  int64_t rel(Range block, Range other) const {
    return input_side_ ? block.begin - s_.stride * other.begin + s_.padding
                       : other.begin - s_.stride * block.begin + s_.padding;
  }
  // Columns: the block's entries; rows: the other grid's entries in `other`.
  at::Tensor sub(Range block, Range other) const {
    if (input_side_)
      return conv_matrix(w_, s_, other.begin, other.size(), block.begin, block.size());
    return conv_matrix(w_, s_, block.begin, block.size(), other.begin, other.size()).t();
  }
  template <class F>
  at::Tensor cached(const std::vector<int64_t>& key, F&& make) {
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, make()).first;
    return it->second;
  }

  at::Tensor w_;
  ConvShape s_;
  bool input_side_;
  std::map<std::vector<int64_t>, at::Tensor> cache_;
};

// Block Cholesky of mu I - G: L_i L_i^T = mu I - D_i - X^T X with X = L_{i-1}^{-1} C_{i-1}.
// True when every pivot was positive and finite.
bool cholesky_succeeds(const BlockGram& g, double mu) {
  at::Tensor x;
  for (size_t i = 0; i < g.diag.size(); ++i) {
    at::Tensor m = -g.diag[i];
    m.diagonal().add_(mu);
    if (i > 0) m.sub_(at::matmul(x.t(), x));
    auto [l, info] = at::linalg_cholesky_ex(m);
    if (info.item<int64_t>() != 0 || !at::isfinite(l).all().item<bool>()) return false;
    if (i + 1 < g.diag.size()) x = at::linalg_solve_triangular(l, g.upper[i], /*upper=*/false);
  }
  return true;
}

// lambda_max(G) <= the returned value once cholesky_succeeds(g, mu) (the header's proof).
double certified_sq(const BlockGram& g, double mu, double frob_sq) {
  const double gc = gamma(double(g.chol_terms));
  const double eps = gc / (1 - gc) * double(g.order) * mu * (1 + kUnit) + kUnit * mu +
                     gamma(double(g.gram_terms)) * frob_sq;
  return mu + 2 * eps;
}

// The smallest mu = base (1 + delta) on the ladder that every group's Cholesky certifies, as a
// proven bound of lambda_max; NaN when none below cap_sq does. A rung fails when mu is below
// lambda_max (or within rounding of it), so the ladder climbs past an estimate that was low.
double certify(const std::vector<BlockGram>& grams, double base, const std::vector<double>& rungs,
               double cap_sq, double frob_sq) {
  for (double delta : rungs) {
    const double mu = base * (1 + delta);
    if (!(mu < cap_sq)) break;
    bool ok = true;
    for (const auto& g : grams) ok = ok && cholesky_succeeds(g, mu);
    if (ok) {
      double bound = 0;
      for (const auto& g : grams) bound = std::max(bound, certified_sq(g, mu, frob_sq));
      return bound;
    }
  }
  return std::numeric_limits<double>::quiet_NaN();
}

struct Plan {
  bool input_side = true, transposed = false;
  int64_t rows_per_block = 1;
  double flops = std::numeric_limits<double>::infinity();
};

// The cheapest banded layout: Gram side (input or output grid; `side` 1 / 0 forces one, -1 lets
// the cost choose) and orientation (blocks of rows, or of columns: the conv of the transposed
// image with the transposed kernel, an isometric relabelling). Per block: the Cholesky,
// triangular solve and Schur update (~3.5 m^3) and the Gram blocks (~4 m^2 x the other grid's
// touching entries).
Plan banded_plan(const ConvShape& s, int side) {
  Plan best;
  for (bool transposed : {false, true}) {
    const int64_t w = transposed ? s.h : s.w, h = transposed ? s.w : s.h;
    const ConvShape t{s.in, s.out, s.k, h, w, s.stride, s.padding};
    for (bool input_side : {true, false}) {
      if (side >= 0 && input_side != (side == 1)) continue;
      const int64_t d =
          input_side ? std::max<int64_t>(1, s.k - 1) : std::max<int64_t>(1, (s.k - 1) / s.stride);
      const int64_t rows = input_side ? t.h : t.out_h();
      const double m =
          double(std::min(d, rows)) * double(input_side ? s.in * t.w : s.out * t.out_w());
      const double other = input_side ? double(s.out) * t.out_w() * ((d + s.k - 1) / s.stride + 1)
                                      : double(s.in) * t.w * (s.stride * (d - 1) + s.k);
      const double flops = double(ceil_div(rows, d)) * (3.5 * m * m * m + 4 * other * m * m);
      if (flops < best.flops) best = {input_side, transposed, d, flops};
    }
  }
  return best;
}

// The dense matrix of a block-tridiagonal Gram.
at::Tensor assemble(const BlockGram& g) {
  at::Tensor dense = at::zeros({g.order, g.order}, g.diag[0].options());
  int64_t offset = 0;
  for (size_t i = 0; i < g.diag.size(); ++i) {
    const int64_t m = g.diag[i].size(0);
    dense.narrow(0, offset, m).narrow(1, offset, m).copy_(g.diag[i]);
    if (i + 1 < g.diag.size()) {
      const int64_t m2 = g.upper[i].size(1);
      dense.narrow(0, offset, m).narrow(1, offset + m, m2).copy_(g.upper[i]);
      dense.narrow(0, offset + m, m2).narrow(1, offset, m).copy_(g.upper[i].t());
    }
    offset += m;
  }
  return dense;
}

}  // namespace

at::Tensor conv_matrix(const at::Tensor& weight, const ConvShape& s, int64_t y0, int64_t ny,
                       int64_t h0, int64_t nh) {
  using at::indexing::Slice;
  const int64_t k = s.k, ow = s.out_w();
  // Tap index of (output, input) or k where the input is outside the window: tap k of the
  // padded kernel is zero.
  auto taps = [k](const at::Tensor& in, const at::Tensor& out, int64_t stride, int64_t pad) {
    at::Tensor t = in.view({1, -1}) - stride * out.view({-1, 1}) + pad;
    return at::where((t >= 0) & (t < k), t, at::full_like(t, k));
  };
  const auto opts = at::TensorOptions().dtype(at::kLong).device(weight.device());
  at::Tensor ti = taps(at::arange(h0, h0 + nh, opts), at::arange(y0, y0 + ny, opts), s.stride,
                       s.padding);  // [ny, nh]
  at::Tensor tj =
      taps(at::arange(s.w, opts), at::arange(ow, opts), s.stride, s.padding);  // [ow, w]
  at::Tensor padded = at::constant_pad_nd(weight, {0, 1, 0, 1});
  at::Tensor m =
      padded.index({Slice(), Slice(), ti.view({ny, 1, nh, 1}), tj.view({1, ow, 1, s.w})});
  // [out, in, ny, ow, nh, w] -> rows (o, y, x), columns (c, h, w)
  return m.permute({0, 2, 3, 1, 4, 5}).reshape({s.out * ny * ow, s.in * nh * s.w});
}

TightResult tight_conv_bound(const std::vector<at::Tensor>& groups, const ConvShape& s,
                             double cap_sq, const TightLimits& limits,
                             const std::function<double()>& estimate) {
  TightResult result;
  const int64_t n_in = s.in * s.h * s.w, n_out = s.out * s.out_h() * s.out_w();
  const bool exact = std::min(n_in, n_out) <= limits.exact_size;
  // The exact path takes the smaller Gram (its eigvalsh is the cost); its blocks cost less than
  // the eigvalsh (m <= n <= exact_size).
  const Plan plan = banded_plan(s, exact ? int(n_in <= n_out) : -1);
  if (!exact && !(plan.flops <= limits.banded_flops)) return result;
  const ConvShape t =
      plan.transposed ? ConvShape{s.in, s.out, s.k, s.w, s.h, s.stride, s.padding} : s;
  std::vector<BlockGram> grams;
  for (const auto& w : groups) {
    GramBuilder builder(plan.transposed ? w.transpose(2, 3).contiguous() : w, t, plan.input_side);
    grams.push_back(builder.build(plan.rows_per_block));
  }
  double frob_sq = 0;
  for (const auto& w : groups)
    frob_sq = std::max(frob_sq, double(s.out_h() * s.out_w()) * w.pow(2).sum().item<double>());

  double base = 0;
  std::vector<double> rungs;
  if (exact) {
    // lambda_max of the assembled Gram by eigvalsh, then certified: eigvalsh's error is
    // ~ n u lambda (backward stable), so the first rung normally certifies.
    for (const auto& g : grams)
      base = std::max(base, at::linalg_eigvalsh(assemble(g)).max().item<double>());
    result.reference = std::sqrt(std::max(base, 0.0));
    result.exact = true;
    result.method = "explicit";
    rungs = {1e-10, 1e-8, 1e-6, 1e-4, 1e-2};
  } else {
    // A Lanczos estimate (from below) is accurate to ~1e-12 relative; the higher rungs catch a
    // poor one (an estimate that had not converged).
    const double sigma = estimate();
    if (!(sigma > 0) || !std::isfinite(sigma)) return result;
    base = sigma * sigma;
    result.reference = sigma;
    result.method = "banded";
    rungs = {1e-9, 1e-6, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1};
  }
  if (base > 0) result.bound_sq = certify(grams, base, rungs, cap_sq, frob_sq);
  return result;
}

}  // namespace lmt::lipschitz::detail
