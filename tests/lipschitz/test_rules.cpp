// Tests of the per-component rules: each bound is >= the spectral norm of the brute-force
// (autograd, float64) Jacobian at several random points; exact where the map is linear.
#include <gtest/gtest.h>

#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/lipschitz/rules.h>

#include "jacobian.h"

namespace lip = lmt::lipschitz;
using lip::BoundMode;
using lip::testing::jacobian;
using lip::testing::spectral_norm;
using lip::testing::value;

namespace {

// The largest Jacobian norm of `module` over `points` random inputs of `shape` (float64).
double max_jacobian_norm(lip::BoundedModule& module, at::IntArrayRef shape, int points = 6) {
  module.to(at::kDouble);
  double largest = 0;
  for (int i = 0; i < points; ++i) {
    at::Tensor x = at::randn(shape, at::kDouble);
    largest = std::max(largest, spectral_norm(jacobian(
                                    [&](const at::Tensor& t) { return module.forward(t); }, x)));
  }
  module.to(at::kFloat);
  return largest;
}

// How far above the brute-force norm a bound that is attained may sit. The sound rules multiply
// the float64 value by (1 + 1e-9) (detail::with_rounding_allowance), and the float64 SVD of these
// Jacobians (at most 60 x 60) is accurate to about n * 2^-53 < 1e-14 relative (LAPACK's
// backward-stable SVD; the same on every CPU and BLAS), so an attained bound is within
// 1e-9 + 1e-14 of the brute force: 2e-9 leaves the SVD's error 1e5 times over. (1e-9 alone
// failed whenever the SVD rounded the norm one ulp down.)
constexpr double kAttained = 2e-9;

void expect_sound(lip::BoundedModule& module, at::IntArrayRef shape, double tight_within = 0) {
  const double brute = max_jacobian_norm(module, shape);
  const double bound = value(module.lipschitz_bound(BoundMode::kSound));
  EXPECT_GE(bound, brute * (1 - 1e-12));
  if (lip::spectral_operators(module).empty()) {  // constant rules: every mode agrees
    EXPECT_NEAR(value(module.lipschitz_bound(BoundMode::kTrain)), bound, 1e-6 * bound);
  }
  if (tight_within > 0) {
    EXPECT_LE(bound, brute * (1 + tight_within));
  }
}

}  // namespace

TEST(Rules, MaxPoolBoundIsAboveTheJacobianNorm) {
  at::manual_seed(10);
  for (auto [k, s, p] : std::vector<std::tuple<int, int, int>>{
           {2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {2, 1, 0}, {3, 3, 0}}) {
    lip::MaxPool2d pool(k, s, p);
    expect_sound(*pool, {1, 2, 7, 7});
    EXPECT_DOUBLE_EQ(value(pool->lipschitz_bound(BoundMode::kSound)),
                     lip::max_pool_bound(k, k, s, s));
  }
  // A constant image makes every window pick (by tie-break) the same input repeatedly: the
  // max-pool Jacobian then reaches the count of windows one input falls in.
  EXPECT_DOUBLE_EQ(lip::max_pool_bound(3, 3, 1, 1), 3.0);
  EXPECT_DOUBLE_EQ(lip::max_pool_bound(3, 2, 2, 2), std::sqrt(2.0));
}

TEST(Rules, AvgPoolBoundIsAboveTheOperatorNorm) {
  at::manual_seed(11);
  for (auto [k, s, p] :
       std::vector<std::tuple<int, int, int>>{{2, 2, 0}, {3, 2, 1}, {3, 1, 0}, {2, 1, 1}}) {
    lip::AvgPool2d pool(k, s, p);
    expect_sound(*pool, {1, 2, 8, 8});
  }
  // Non-overlapping windows: the bound is exact (1/k).
  lip::AvgPool2d pool(2, 2);
  expect_sound(*pool, {1, 1, 6, 6}, kAttained);
}

TEST(Rules, GlobalAvgPoolBoundIsExact) {
  lip::GlobalAvgPool pool(3, 5);
  expect_sound(*pool, {1, 4, 3, 5}, kAttained);
  EXPECT_EQ(pool->forward(at::zeros({2, 4, 3, 5})).sizes(), at::IntArrayRef({2, 4}));
}

TEST(Rules, InputNormalizationBoundIsExact) {
  lip::InputNormalization norm(std::vector<double>{0.5, 0.4, 0.3},
                               std::vector<double>{0.2, 0.25, 0.3});
  expect_sound(*norm, {1, 3, 4, 4}, kAttained);
  EXPECT_DOUBLE_EQ(lip::input_normalization_bound({0.2, 0.25, 0.3}), 5.0);
}

TEST(Rules, BatchNormBoundIsExactForEvalStatistics) {
  at::manual_seed(12);
  torch::nn::BatchNorm2d bn(4);
  {
    at::NoGradGuard no_grad;
    bn->weight.copy_(at::tensor({0.5, -3.0, 1.0, 2.0}));
    bn->running_var.copy_(at::tensor({1.0, 4.0, 0.1, 2.0}));
  }
  bn->eval();
  bn->to(at::kDouble);
  const double brute = spectral_norm(
      jacobian([&](const at::Tensor& x) { return bn->forward(x); }, at::randn({1, 4, 3, 3})));
  bn->to(at::kFloat);
  const double sound = value(lip::batch_norm_bound(bn, BoundMode::kSound));
  EXPECT_GE(sound, brute);
  EXPECT_NEAR(sound, brute, 1e-8 * brute);
  at::Tensor train = lip::batch_norm_bound(bn, BoundMode::kTrain);
  EXPECT_TRUE(train.requires_grad());
}

TEST(Rules, CenterNormBoundIsAboveTheJacobianNorm) {
  at::manual_seed(13);
  for (int64_t channels : {2, 3, 8}) {
    lip::CenterNorm norm(channels);
    {
      at::NoGradGuard no_grad;
      norm->weight.copy_(at::randn({channels}));
      norm->bias.copy_(at::randn({channels}));
    }
    expect_sound(*norm, {1, channels, 3, 2});
    // Equal gammas: the map is |gamma| C/(C-1) times a projection, so the bound is attained.
    {
      at::NoGradGuard no_grad;
      norm->weight.fill_(-1.5);
    }
    expect_sound(*norm, {1, channels, 2, 2}, kAttained);
  }
  // Token layout: channels last.
  lip::CenterNorm tokens(6, -1);
  expect_sound(*tokens, {1, 3, 6});
  // The formula: y = gamma * (x - mean) * C/(C-1) + beta.
  lip::CenterNorm three(3);
  at::Tensor y = three->forward(at::tensor({1.0, 2.0, 6.0}).view({1, 3, 1, 1}));
  EXPECT_TRUE(at::allclose(y.flatten(), at::tensor({-3.0, -1.5, 4.5}), 1e-6, 1e-6));
}

TEST(Rules, ActivationsShiftFlattenDropoutHaveBoundOne) {
  at::manual_seed(14);
  lip::MinMax minmax;
  expect_sound(*minmax, {1, 6, 2, 2});
  at::Tensor y = minmax->forward(at::tensor({3.0, 1.0, -1.0, 2.0}).view({1, 4}));
  EXPECT_TRUE(at::equal(y, at::tensor({1.0, 3.0, -1.0, 2.0}).view({1, 4})));
  lip::ReLU relu;
  expect_sound(*relu, {1, 3, 2, 2});
  lip::Shift shift(4);
  expect_sound(*shift, {1, 5, 3, 4});
  lip::Flatten flatten;
  expect_sound(*flatten, {1, 2, 2, 2}, kAttained);
  lip::Dropout dropout(0.5);
  dropout->eval();
  expect_sound(*dropout, {1, 4}, kAttained);
}

TEST(Rules, ShiftMovesFourChannelGroupsOnePixelWithZeroFill) {
  lip::Shift shift(4);
  at::Tensor x = at::arange(1, 10, at::kFloat).view({1, 1, 3, 3}).repeat({1, 4, 1, 1});
  at::Tensor y = shift->forward(x);
  // left: column j takes column j+1; right: j takes j-1; up: row i takes i+1; down: i takes i-1.
  EXPECT_TRUE(at::equal(y[0][0], at::tensor({2., 3., 0., 5., 6., 0., 8., 9., 0.}).view({3, 3})));
  EXPECT_TRUE(at::equal(y[0][1], at::tensor({0., 1., 2., 0., 4., 5., 0., 7., 8.}).view({3, 3})));
  EXPECT_TRUE(at::equal(y[0][2], at::tensor({4., 5., 6., 7., 8., 9., 0., 0., 0.}).view({3, 3})));
  EXPECT_TRUE(at::equal(y[0][3], at::tensor({0., 0., 0., 1., 2., 3., 4., 5., 6.}).view({3, 3})));
}

TEST(Rules, ResidualAndParallelBoundsAreAboveTheJacobianNorm) {
  at::manual_seed(15);
  auto conv = [] {
    return lip::BoundedConv2d(lip::BoundedConv2dOptions(2, 2, 3, 5, 5).padding(1));
  };
  lip::Residual identity_shortcut(lip::Sequential(conv(), lip::ReLU(), conv()));
  expect_sound(*identity_shortcut, {1, 2, 5, 5});
  lip::Residual projection(lip::BoundedConv2d(lip::BoundedConv2dOptions(2, 2, 1, 5, 5)),
                           lip::Sequential(conv(), lip::MinMax()));
  expect_sound(*projection, {1, 2, 5, 5});
  lip::Parallel branches(conv(), lip::Sequential(conv(), lip::ReLU()), lip::AvgPool2d(3, 1, 1));
  expect_sound(*branches, {1, 2, 5, 5});
  // A residual of a linear branch: y = (I + A) x. The bound 1 + ||A|| is attained when A is a
  // positive multiple of the identity.
  lip::Residual scaled(lip::BoundedLinear(lip::BoundedLinearOptions(3, 3).bias(false)));
  auto* fc = dynamic_cast<lip::BoundedLinearImpl*>(scaled->named_children()["branch"].get());
  ASSERT_NE(fc, nullptr);
  {
    at::NoGradGuard no_grad;
    fc->weight.copy_(at::eye(3) * 0.7);
  }
  expect_sound(*scaled, {1, 3}, 1e-6);
}

TEST(Rules, BatchCenteringIsAShiftOfBoundOneAndTracksTheBatchMean) {
  at::manual_seed(15);
  lip::BatchCentering2d center(3, 0.25);
  {
    at::NoGradGuard no_grad;
    center->bias.copy_(at::tensor({0.5, -1.0, 2.0}));
  }
  // Training: the per-channel batch mean is removed and beta added; running_mean moves by
  // momentum towards the batch mean.
  center->train();
  at::Tensor x = at::randn({4, 3, 5, 2}) * 3 + 1;
  at::Tensor y = center->forward(x);
  EXPECT_TRUE(at::allclose(y.mean({0, 2, 3}), center->bias.detach(), 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(center->running_mean, 0.25 * x.mean({0, 2, 3}), 1e-6, 1e-6));
  // Eval: x - running_mean + beta, a shift, so its Jacobian is the identity: bound exactly 1.
  center->eval();
  at::Tensor z = at::randn({2, 3, 5, 2});
  at::Tensor expected = z - (center->running_mean - center->bias.detach()).view({1, 3, 1, 1});
  EXPECT_TRUE(at::allclose(center->forward(z), expected, 1e-6, 1e-6));
  expect_sound(*center, {1, 3, 2, 2}, kAttained);
  EXPECT_EQ(value(center->lipschitz_bound(BoundMode::kSound)), 1.0);
  EXPECT_THROW(center->forward(at::randn({2, 4, 5, 2})), lip::BoundError);
  EXPECT_THROW(lip::BatchCentering2d(3, 0.0), lip::BoundError);
}
