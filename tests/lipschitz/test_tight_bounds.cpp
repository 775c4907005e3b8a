// Tests of the tight sound bounds of BoundedConv2d (lipschitz/conv_exact.cpp): the exact path
// equals the float64 SVD of the explicit Jacobian built by autograd, the banded Cholesky
// certificate lies between the exact norm and the circulant bound, and the certificate refuses
// every mu below the true lambda_max.
#include <cmath>

#include <gtest/gtest.h>

#include <lmt/lipschitz/layers.h>

#include "../../lipschitz/conv_exact.h"
#include "jacobian.h"

namespace lip = lmt::lipschitz;
using lip::BoundMode;
using lip::SoundBoundLimits;
using lip::testing::jacobian;
using lip::testing::spectral_norm;

namespace {

struct Case {
  int64_t in, out, k, h, w, stride, padding, groups;
  double residual;  // > 0: the merged residual operator x + residual W x
  bool batch_norm;
};

std::string case_name(const Case& c) {
  return std::to_string(c.in) + "to" + std::to_string(c.out) + "_k" + std::to_string(c.k) + "_" +
         std::to_string(c.h) + "x" + std::to_string(c.w) + "_s" + std::to_string(c.stride) + "_p" +
         std::to_string(c.padding) + "_g" + std::to_string(c.groups) +
         (c.residual > 0 ? "_residual" : "") + (c.batch_norm ? "_bn" : "");
}

void PrintTo(const Case& c, std::ostream* os) { *os << case_name(c); }

struct Built {
  lip::BoundedConv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};

Built make(const Case& c) {
  Built b;
  b.conv = lip::BoundedConv2d(lip::BoundedConv2dOptions(c.in, c.out, c.k, c.h, c.w)
                                  .stride(c.stride)
                                  .padding(c.padding)
                                  .groups(c.groups)
                                  .residual_scale(c.residual));
  at::NoGradGuard no_grad;
  b.conv->weight.mul_(3.0);  // far from the identity for the residual cases
  if (c.batch_norm) {
    b.bn = torch::nn::BatchNorm2d(c.out);
    b.bn->weight.copy_(at::randn({c.out}) * 2);  // includes negative gamma
    b.bn->running_var.copy_(at::rand({c.out}) * 3 + 0.05);
    b.conv->attach_batch_norm(b.bn);
  }
  return b;
}

// The Jacobian of the layer's map written with plain ATen ops on the raw parameters (not
// operator_weight nor conv_matrix): x + alpha conv(x, W) or conv then eval-mode BN.
double reference_norm(const Built& b, const Case& c) {
  const at::Tensor w = b.conv->weight.detach().to(at::kDouble);
  auto fn = [&](const at::Tensor& x) {
    at::Tensor y = at::conv2d(x, w, {}, c.stride, c.padding, 1, c.groups);
    if (c.residual > 0) return x + c.residual * y;
    if (c.batch_norm) {
      const at::Tensor scale = b.bn->weight.detach().to(at::kDouble) /
                               (b.bn->running_var.to(at::kDouble) + b.bn->options.eps()).sqrt();
      y = y * scale.view({1, -1, 1, 1});
    }
    return y;
  };
  return spectral_norm(jacobian(fn, at::randn({1, c.in, c.h, c.w}, at::kDouble)));
}

double kernel_abs_sum(const Built& b) {
  at::Tensor w = b.conv->operator_weight(at::kDouble).detach();
  if (b.conv->has_batch_norm())
    w = w * b.conv->batch_norm_scale(at::kDouble).detach().abs().view({-1, 1, 1, 1});
  return w.abs().sum().item<double>();
}

class TightBound : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(TightBound, ExactPathEqualsTheSvdOfTheAutogradJacobian) {
  const Case c = GetParam();
  at::manual_seed(21);
  Built b = make(c);
  const double exact = reference_norm(b, c);
  const lip::SoundBound tight = b.conv->sound_bound(SoundBoundLimits());
  const lip::SoundBound circulant = b.conv->sound_bound(SoundBoundLimits::circulant_only());
  EXPECT_TRUE(tight.exact);
  EXPECT_EQ(circulant.method, "circulant");
  // Two float64 computations of sigma_max of the same <= 324 x 324 matrix: the eigvalsh of the
  // Gram (error <= (q n + 10 n) u lambda with q, n <= 324, u = 1.1e-16: < 2e-11 relative) and
  // LAPACK's SVD (backward stable, ~n u): 1e-10 relative covers both.
  EXPECT_NEAR(tight.reference, exact, 1e-10 * exact);
  // Sound: >= the exact norm; above it by at most the certificate's first rungs (mu <= lambda
  // (1 + 1e-8): sigma (1 + 5e-9)), its rounding terms (2 eps <= 2 (n^2 + q k^2 n) u mu < 1e-9 mu
  // here) and the allowance sigma 1e-9 + 1e-12 sum|w|: 2e-8 relative, 2e-12 sum|w| absolute.
  EXPECT_GE(tight.bound, exact);
  EXPECT_LE(tight.bound, exact * (1 + 2e-8) + 2e-12 * kernel_abs_sum(b));
  EXPECT_LE(tight.bound, circulant.bound);
  EXPECT_EQ(tight.bound, b.conv->spectral_norm(BoundMode::kSound).item<double>());
  std::printf("  %s: exact %.9f sound %.9f (%s) circulant %.6f (x%.4f)\n", case_name(c).c_str(),
              exact, tight.bound, tight.method.c_str(), circulant.bound, circulant.bound / exact);
}

TEST_P(TightBound, BandedCertificateIsBetweenTheExactNormAndTheCirculantBound) {
  const Case c = GetParam();
  at::manual_seed(22);
  Built b = make(c);
  const double exact = reference_norm(b, c);
  const lip::SoundBound banded = b.conv->sound_bound(SoundBoundLimits().exact_size(0));
  const lip::SoundBound circulant = b.conv->sound_bound(SoundBoundLimits::circulant_only());
  EXPECT_FALSE(banded.exact);
  EXPECT_GE(banded.bound, exact);
  EXPECT_LE(banded.bound, circulant.bound);
  // The estimate is a float64 Lanczos Ritz value theta <= sigma, at least as close as as many
  // power-iteration steps from the same vector (the Krylov space contains their iterate), and
  // converged power iteration is within 1e-3 (test_spectral_layers.cpp). So theta^2 >= (1 -
  // 2e-3) sigma^2 and the ladder's rung 3e-3 certifies at the latest: bound <= sigma sqrt(1 +
  // 3e-3) plus the allowance, below sigma (1 + 2e-3) (measured: 1.5e-9). Only where the
  // circulant bound is looser (it is the cap: banded.bound <= circulant.bound above).
  if (circulant.bound > exact * (1 + 2e-3)) {
    EXPECT_EQ(banded.method, "banded");
    EXPECT_LE(banded.bound, exact * (1 + 2e-3));
  }
  // The reference is the Lanczos estimate: from below (up to float64 rounding, 1e-12).
  EXPECT_LE(banded.reference, exact * (1 + 1e-12));
  std::printf("  %s: exact %.9f banded %.9f (x%.2e) estimate %.9f circulant x%.4f\n",
              case_name(c).c_str(), exact, banded.bound, banded.bound / exact - 1, banded.reference,
              circulant.bound / exact);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, TightBound,
    ::testing::Values(
        Case{3, 4, 3, 6, 6, 1, 1, 1, 0, false}, Case{2, 3, 3, 7, 7, 2, 1, 1, 0, false},
        Case{4, 4, 3, 6, 5, 1, 0, 2, 0, false}, Case{3, 5, 1, 5, 5, 2, 0, 1, 0, false},
        Case{2, 2, 4, 6, 6, 2, 2, 1, 0, false}, Case{4, 6, 3, 8, 8, 2, 1, 2, 0, false},
        Case{1, 3, 4, 7, 7, 1, 2, 1, 0, false}, Case{4, 6, 4, 9, 9, 3, 2, 2, 0, false},
        Case{3, 2, 3, 10, 7, 2, 0, 1, 0, false}, Case{8, 8, 3, 4, 4, 1, 1, 1, 0, false},
        Case{4, 8, 3, 7, 7, 2, 1, 1, 0, true}, Case{6, 6, 3, 5, 5, 1, 1, 1, 0.3, false},
        Case{4, 4, 3, 7, 6, 1, 1, 1, 0.3, false}, Case{4, 4, 5, 6, 6, 1, 2, 1, 0.7, false}),
    [](const ::testing::TestParamInfo<Case>& info) { return case_name(info.param); });

// conv_matrix against the autograd Jacobian of at::conv2d, on the whole grid and on a strip:
// both are copies of kernel entries (each Jacobian entry is a sum with one nonzero product
// w * 1), so they are equal bit for bit.
TEST(ConvMatrix, EqualsTheAutogradJacobianAndItsStrips) {
  at::manual_seed(23);
  for (const lip::detail::ConvShape s :
       {lip::detail::ConvShape{2, 3, 3, 6, 5, 1, 1}, lip::detail::ConvShape{3, 2, 4, 9, 7, 2, 2},
        lip::detail::ConvShape{2, 2, 3, 8, 8, 3, 0}}) {
    at::Tensor w = at::randn({s.out, s.in, s.k, s.k}, at::kDouble);
    at::Tensor jac =
        jacobian([&](const at::Tensor& x) { return at::conv2d(x, w, {}, s.stride, s.padding); },
                 at::zeros({1, s.in, s.h, s.w}));
    EXPECT_TRUE(at::equal(lip::detail::conv_matrix(w, s, 0, s.out_h(), 0, s.h), jac));
    // Output rows [1, out_h), input rows [2, 5): the rows (o, y, x) and columns (c, h, x).
    const int64_t ny = s.out_h() - 1;
    at::Tensor full = jac.view({s.out, s.out_h(), s.out_w(), s.in, s.h, s.w});
    at::Tensor strip = full.narrow(1, 1, ny).narrow(4, 2, 3).reshape({s.out * ny * s.out_w(), -1});
    EXPECT_TRUE(at::equal(lip::detail::conv_matrix(w, s, 1, ny, 2, 3), strip));
  }
}

// The banded certificate with a hand-fed estimate: every bound it returns is >= the exact
// lambda_max (it cannot be fooled by an estimate from above or below), and an estimate so low
// that no rung reaches lambda_max (f sigma with f^2 (1 + 0.1) < 1, the top rung) certifies
// nothing.
TEST(BandedCertificate, RefusesEveryMuBelowLambdaMax) {
  at::manual_seed(24);
  for (const lip::detail::ConvShape s :
       {lip::detail::ConvShape{4, 4, 3, 8, 8, 1, 1}, lip::detail::ConvShape{3, 6, 3, 9, 7, 2, 1},
        lip::detail::ConvShape{2, 2, 5, 10, 10, 1, 2},
        // 4 x 12: the banded layout takes blocks of columns (the transposed conv), cheaper.
        lip::detail::ConvShape{2, 3, 3, 4, 12, 1, 1}}) {
    at::Tensor w = at::randn({s.out, s.in, s.k, s.k}, at::kDouble);
    const double exact = spectral_norm(lip::detail::conv_matrix(w, s, 0, s.out_h(), 0, s.h));
    const lip::detail::TightLimits banded{0, 1e12};
    for (double factor : {0.5, 0.9, 0.999, 0.999999, 1.0, 1.001, 1.2}) {
      auto r = lip::detail::tight_conv_bound({w}, s, 1e300, banded, [&] { return factor * exact; });
      EXPECT_EQ(r.method, "banded");
      if (factor * factor * 1.1 < 1) {
        EXPECT_TRUE(std::isnan(r.bound_sq)) << r.bound_sq;
        continue;
      }
      ASSERT_FALSE(std::isnan(r.bound_sq)) << factor;
      // The SVD's own error (~n u sigma, n <= 400): 1e-12 relative in sigma^2.
      EXPECT_GE(r.bound_sq, exact * exact * (1 - 1e-12)) << factor;
      // From an estimate >= sigma the first rung certifies: mu = est^2 (1 + 1e-9), plus the
      // rounding terms 2 eps < 1e-10 mu at these sizes (n <= 256, blocks <= 64 entries).
      if (factor >= 1) EXPECT_LE(r.bound_sq, std::pow(factor * exact, 2) * (1 + 1e-8)) << factor;
    }
    // The cap: no certificate at or above a known bound.
    auto capped = lip::detail::tight_conv_bound({w}, s, exact * exact * 1.00001, banded,
                                                [&] { return 1.01 * exact; });
    EXPECT_TRUE(std::isnan(capped.bound_sq));
  }
}
