// Tests of the merged residual operator of a LiResNet block (BoundedConv2d with residual_scale:
// x -> x + alpha W x bounded as one operator) and of the EMMA loss, each against an independent
// reference: the float64 SVD of the explicit matrix of x + alpha conv(x) (built from a plain
// at::conv2d, not from the part's merged kernel), and EMMA's formula written out per element.
#include <cmath>

#include <gtest/gtest.h>

#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/lmt_loss.h>

#include "jacobian.h"

namespace lip = lmt::lipschitz;
using lip::BoundMode;
using lip::testing::linear_map_matrix;
using lip::testing::spectral_norm;
using lip::testing::value;

namespace {

struct ResidualCase {
  int64_t channels, k, h, w;
  double alpha;
};

std::string case_name(const ResidualCase& c) {
  return std::to_string(c.channels) + "ch_k" + std::to_string(c.k) + "_" + std::to_string(c.h) +
         "x" + std::to_string(c.w) + "_alpha" + std::to_string(int(c.alpha * 100));
}

void PrintTo(const ResidualCase& c, std::ostream* os) { *os << case_name(c); }

lip::BoundedConv2d make_residual(const ResidualCase& c) {
  return lip::BoundedConv2d(lip::BoundedConv2dOptions(c.channels, c.channels, c.k, c.h, c.w)
                                .padding(c.k / 2)
                                .residual_scale(c.alpha));
}

// x -> x + alpha W x as an explicit float64 matrix, from the identity plus a plain convolution
// with the part's raw weight (independent of operator_weight()).
at::Tensor reference_matrix(const lip::BoundedConv2d& conv, const ResidualCase& c) {
  const at::Tensor w = conv->weight.detach().to(at::kDouble);
  auto fn = [&](const at::Tensor& x) { return x + c.alpha * at::conv2d(x, w, {}, 1, c.k / 2); };
  return linear_map_matrix(fn, {1, c.channels, c.h, c.w});
}

class MergedResidualOperator : public ::testing::TestWithParam<ResidualCase> {};

}  // namespace

// A weight large enough that sigma(I + alpha W) is far from both 1 and 1 + alpha sigma(W)
// (drawn at 3x torch's conv init), so the checks below tell the merged bound from either.
TEST_P(MergedResidualOperator, PowerIterationConvergesToTheSvdAndTheSoundBoundIsAbove) {
  const ResidualCase c = GetParam();
  at::manual_seed(11);
  auto conv = make_residual(c);
  {
    at::NoGradGuard no_grad;
    conv->weight.mul_(3.0);
  }
  const double exact = spectral_norm(reference_matrix(conv, c));
  // Forward is the residual map (bias added): compared in float64 on a random input, where the
  // two computations differ only by the rounding of ~9 c products per output (< 1e-12).
  conv->to(at::kDouble);
  at::Tensor x = at::randn({2, c.channels, c.h, c.w}, at::kDouble);
  at::Tensor expected =
      x + c.alpha * at::conv2d(x, conv->weight, {}, 1, c.k / 2) + conv->bias.view({1, -1, 1, 1});
  EXPECT_LT((conv->forward(x) - expected).abs().max().item<double>(), 1e-10);
  conv->to(at::kFloat);

  // kEstimate: float32 power iteration to convergence. The relative error of a converged power
  // iteration in float32 is ~1e-6 (the rounding of ||A u||), the gap to the next singular value
  // sets the iteration count, not the accuracy: 1e-3 is the tolerance the plain conv uses
  // (test_spectral_layers.cpp) and held on every case here with margin.
  EXPECT_NEAR(value(conv->spectral_norm(BoundMode::kEstimate)), exact, 1e-3 * exact);
  // kTrain after enough persistent-vector steps: the same limit.
  conv->power_iteration_step(1000);
  EXPECT_NEAR(value(conv->spectral_norm(BoundMode::kTrain)), exact, 1e-3 * exact);
  // kSound: an upper bound (the circulant relaxation of the zero-padded merged conv, or tighter),
  // and far below the additive rule 1 + alpha sigma(W) whenever that rule is loose.
  const double sound = value(conv->spectral_norm(BoundMode::kSound));
  EXPECT_GE(sound, exact);
  EXPECT_LE(sound, 1.5 * exact);  // the circulant relaxation's looseness on these grids: <= 1.2
  lip::BoundedConv2d plain(lip::BoundedConv2dOptions(c.channels, c.channels, c.k, c.h, c.w)
                               .padding(c.k / 2)
                               .bias(false));
  {
    at::NoGradGuard no_grad;
    plain->weight.copy_(conv->weight);
  }
  const double additive = 1.0 + c.alpha * value(plain->spectral_norm(BoundMode::kSound));
  std::printf("  %s: exact %.6f sound %.6f additive 1 + alpha sigma(W) %.6f\n",
              case_name(c).c_str(), exact, sound, additive);
  EXPECT_LE(exact, additive * (1 + 1e-9));  // the triangle inequality, as a sanity check
}

INSTANTIATE_TEST_SUITE_P(Cases, MergedResidualOperator,
                         ::testing::Values(ResidualCase{2, 3, 5, 5, 0.5},
                                           ResidualCase{4, 3, 6, 4, 1.0},
                                           ResidualCase{6, 3, 4, 4, 0.3},
                                           ResidualCase{4, 5, 6, 6, 0.7},
                                           ResidualCase{8, 1, 3, 3, 0.25}),
                         [](const auto& info) { return case_name(info.param); });

TEST(MergedResidualOperator, IsTheIdentityPlusTheScaledKernelAtTheCentreTap) {
  auto conv = make_residual({3, 3, 4, 4, 0.5});
  at::Tensor merged = conv->operator_weight(at::kDouble);
  at::Tensor expected = 0.5 * conv->weight.detach().to(at::kDouble);
  for (int64_t i = 0; i < 3; ++i) expected[i][i][1][1] += 1.0;
  EXPECT_TRUE(at::equal(merged.detach(), expected));
  // Differentiable in the raw weight, with gradient alpha (d merged / d W).
  merged.sum().backward();
  EXPECT_TRUE(at::allclose(conv->weight.grad(), at::full_like(conv->weight, 0.5)));
}

TEST(MergedResidualOperator, RefusesShapesWhereTheIdentityDoesNotFit) {
  auto make = [](lip::BoundedConv2dOptions o) { return lip::BoundedConv2d(o.residual_scale(0.5)); };
  EXPECT_THROW(make(lip::BoundedConv2dOptions(4, 8, 3, 6, 6).padding(1)), lip::BoundError);
  EXPECT_THROW(make(lip::BoundedConv2dOptions(4, 4, 3, 6, 6).padding(1).stride(2)),
               lip::BoundError);
  EXPECT_THROW(make(lip::BoundedConv2dOptions(4, 4, 3, 6, 6).padding(0)), lip::BoundError);
  EXPECT_THROW(make(lip::BoundedConv2dOptions(4, 4, 2, 6, 6).padding(1)), lip::BoundError);
  EXPECT_THROW(make(lip::BoundedConv2dOptions(4, 4, 3, 6, 6).padding(1).groups(2)),
               lip::BoundError);
  try {
    make(lip::BoundedConv2dOptions(4, 8, 3, 6, 6).padding(1));
  } catch (const lip::BoundError& e) {
    EXPECT_NE(std::string(e.what()).find("in == out"), std::string::npos) << e.what();
  }
}

// EMMA on hand-made logits: every element of the shifted logits written out from the formula
// e_j = clip((F_t - F_j) / (K_tj eps), 0.01, 1), F'_j = F_j + e_j eps K_tj (j != t).
TEST(EmmaLoss, EqualsItsFormulaOnHandMadeLogits) {
  at::Tensor logits = at::tensor({3.0, 1.0, 2.5, 0.0, 2.0, -1.0}, at::kDouble).view({2, 3});
  at::Tensor targets = at::tensor({0, 2}, at::kLong);
  // K: 0 at the target; per class otherwise.
  at::Tensor k = at::tensor({0.0, 2.0, 1.0, 4.0, 1.0, 0.0}, at::kDouble).view({2, 3});
  const double eps = 0.5;
  // Sample 0 (t=0): class 1 margin 2, K 2 -> 2/(2*0.5) = 2 -> clip 1 -> shift 1;
  //                 class 2 margin 0.5, K 1 -> 1 -> shift 0.5.
  // Sample 1 (t=2, F_t = -1): class 0 margin -1 -> clip 0.01 -> shift 0.01*0.5*4 = 0.02;
  //                 class 1 margin -3 -> 0.01 -> shift 0.01*0.5*1 = 0.005.
  at::Tensor shifted = at::tensor({3.0, 2.0, 3.0, 0.02, 2.005, -1.0}, at::kDouble).view({2, 3});
  const double expected = at::cross_entropy_loss(shifted, targets).item<double>();
  // Both are float64 cross-entropies of the same 6 numbers: equal to rounding (1e-15).
  EXPECT_NEAR(lip::emma_loss(logits, targets, k, eps).item<double>(), expected, 1e-12);
  EXPECT_NEAR(lip::emma_loss(logits, targets, k, 0.0).item<double>(),
              at::cross_entropy_loss(logits, targets).item<double>(), 1e-12);
}

// The fractions e_j are constants in backward: d loss / d K_tj = e_j eps dCE/dF'_j (the shift's
// own derivative only), and d loss / d F = dCE/dF' (no term through e_j).
TEST(EmmaLoss, GradientTreatsTheFractionsAsConstants) {
  at::Tensor logits =
      at::tensor({3.0, 1.0, 2.5, 0.0, 2.0, -1.0}, at::kDouble).view({2, 3}).requires_grad_();
  at::Tensor targets = at::tensor({0, 2}, at::kLong);
  at::Tensor k =
      at::tensor({0.0, 2.0, 1.0, 4.0, 1.0, 0.0}, at::kDouble).view({2, 3}).requires_grad_();
  const double eps = 0.5;
  lip::emma_loss(logits, targets, k, eps).backward();
  at::Tensor fraction = at::tensor({0.0, 1.0, 1.0, 0.01, 0.01, 0.0}, at::kDouble).view({2, 3});
  at::Tensor shifted = (logits.detach() + fraction * eps * k.detach()).clone().requires_grad_();
  at::cross_entropy_loss(shifted, targets).backward();
  // Both gradients are a softmax minus a one-hot over 2 (float64): equal to 1e-15.
  EXPECT_TRUE(at::allclose(logits.grad(), shifted.grad(), 0, 1e-12));
  EXPECT_TRUE(at::allclose(k.grad(), fraction * eps * shifted.grad(), 0, 1e-12));
}

TEST(EmmaLoss, GlobalAndPairwiseMarginConstants) {
  at::Tensor logits = at::zeros({2, 3});
  at::Tensor targets = at::tensor({1, 0}, at::kLong);
  at::Tensor global =
      lip::global_margin_lipschitz(logits, targets, at::scalar_tensor(2.0, at::kFloat));
  const float s = float(2.0 * std::sqrt(2.0));
  EXPECT_TRUE(at::allclose(global, at::tensor({s, 0.f, s, 0.f, s, s}).view({2, 3})));
  lip::HeadSplit head{at::scalar_tensor(3.0, at::kFloat),
                      at::tensor({1.f, 0.f, 0.f, 1.f, 0.f, 0.f}).view({3, 2})};
  at::Tensor pairwise = lip::pairwise_margin_lipschitz(logits, targets, head);
  // Rows of W: (1,0), (0,1), (0,0): |w1 - w0| = sqrt2, |w1 - w2| = 1, |w0 - w2| = 1.
  const float r2 = float(3.0 * std::sqrt(2.0));
  EXPECT_TRUE(at::allclose(pairwise, at::tensor({r2, 0.f, 3.f, 0.f, r2, 3.f}).view({2, 3})));
}
