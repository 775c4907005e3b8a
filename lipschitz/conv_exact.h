// lmt::lipschitz (private): the tight sound bound of a zero-padded 2-D convolution from its
// explicit matrix (docs/methods.md#sound-bounds). The Gram matrix G of the operator is block
// tridiagonal (blocks of k - 1 grid rows); a block Cholesky factorisation of mu I - G that
// succeeds proves lambda_max(G) <= mu (plus the float64 rounding terms written out in
// conv_exact.cpp). mu is proposed just above the exact lambda_max (eigvalsh of the assembled
// Gram) for small operators, or above a Lanczos estimate for larger ones.
#pragma once

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace lmt::lipschitz::detail {

// One group of a convolution: weight [out, in, k, k] on an h x w input, stride, zero padding.
struct ConvShape {
  int64_t in, out, k, h, w, stride, padding;
  int64_t out_h() const { return (h + 2 * padding - k) / stride + 1; }
  int64_t out_w() const { return (w + 2 * padding - k) / stride + 1; }
};

// The conv's matrix restricted to output rows [y0, y0 + ny) and input rows [h0, h0 + nh) (all
// channels and columns), [out * ny * out_w, in * nh * w], rows (o, y, x) and columns (c, h, w) in
// NCHW order. Every entry is a copy of a weight entry or 0: no arithmetic, so no rounding.
at::Tensor conv_matrix(const at::Tensor& weight, const ConvShape& s, int64_t y0, int64_t ny,
                       int64_t h0, int64_t nh);

struct TightLimits {
  int64_t exact_size;   // explicit Gram + eigvalsh when min(in*h*w, out*oh*ow) <= this
  double banded_flops;  // banded certificate when its estimated flops <= this
};

struct TightResult {
  // lambda_max(A^T A) <= bound_sq, proven (NaN: nothing certified below cap_sq).
  double bound_sq = std::numeric_limits<double>::quiet_NaN();
  // The exact norm (exact) or the estimate the certificate started from.
  double reference = std::numeric_limits<double>::quiet_NaN();
  bool exact = false;
  std::string method;  // "explicit", "banded" or "" (neither applied)
};

// The bound of the block-diagonal operator whose groups have the weights `groups` (each [out, in,
// k, k] float64, finite) on shape `s`. `estimate` returns an estimate from below of the whole
// operator's norm (called only for the banded certificate). A certificate is only tried below
// cap_sq (the square of an already known bound).
TightResult tight_conv_bound(const std::vector<at::Tensor>& groups, const ConvShape& s,
                             double cap_sq, const TightLimits& limits,
                             const std::function<double()>& estimate);

}  // namespace lmt::lipschitz::detail
