// Tests of the LMT loss (global and pairwise, with and without the reference margin clip), the
// warm-up of c, certified radii and the certification summary, against hand-computed values.
#include <cmath>

#include <gtest/gtest.h>

#include <lmt/lipschitz/certify.h>
#include <lmt/lipschitz/lmt_loss.h>

#include "jacobian.h"

namespace lip = lmt::lipschitz;
using lip::testing::value;

namespace {
// -log softmax(z)_t for a hand-written logit row.
double ce(std::vector<double> z, int t) {
  double sum = 0;
  for (double v : z) sum += std::exp(v);
  return -z[t] + std::log(sum);
}
const double kSqrt2 = std::sqrt(2.0);
}  // namespace

TEST(LmtLoss, AddsSqrt2CLToEveryNonTargetLogit) {
  at::Tensor logits = at::tensor({2.0, 1.0, 0.0, 0.5, 0.2, 1.5}, at::kDouble).view({2, 3});
  at::Tensor targets = at::tensor({0, 2}, at::kLong);
  at::Tensor L = at::scalar_tensor(0.5, at::kDouble);
  const double s = kSqrt2 * 0.8 * 0.5;  // c = 0.8
  const double expected = 0.5 * (ce({2.0, 1.0 + s, 0.0 + s}, 0) + ce({0.5 + s, 0.2 + s, 1.5}, 2));
  EXPECT_NEAR(value(lip::lmt_loss(logits, targets, L, 0.8)), expected, 1e-12);
}

TEST(LmtLoss, WithCZeroIsCrossEntropy) {
  at::Tensor logits = at::tensor({2.0, 1.0, 0.0}, at::kDouble).view({1, 3});
  at::Tensor targets = at::tensor({1}, at::kLong);
  EXPECT_NEAR(value(lip::lmt_loss(logits, targets, at::scalar_tensor(3.0), 0.0)),
              ce({2.0, 1.0, 0.0}, 1), 1e-12);
}

TEST(LmtLoss, IsDifferentiableInTheBound) {
  at::Tensor logits = at::tensor({2.0, 1.0, 0.0}, at::kDouble).view({1, 3});
  at::Tensor targets = at::tensor({0}, at::kLong);
  at::Tensor L = at::scalar_tensor(0.5, at::kDouble).requires_grad_(true);
  at::Tensor g = torch::autograd::grad({lip::lmt_loss(logits, targets, L, 1.0)}, {L})[0];
  const double h = 1e-6;
  auto loss_at = [&](double l) {
    return value(lip::lmt_loss(logits, targets, at::scalar_tensor(l, at::kDouble), 1.0));
  };
  EXPECT_NEAR(value(g), (loss_at(0.5 + h) - loss_at(0.5 - h)) / (2 * h), 1e-7);
  EXPECT_GT(value(g), 0);
}

TEST(LmtLoss, MarginClipShiftsByAtMostTheCurrentMarginAndNotWhenMisclassified) {
  // Shift sqrt(2) c L = 1. Sample 0: margin 2 -> full shift 1. Sample 1: margin 0.4 -> 0.4.
  // Sample 2: misclassified -> no shift.
  at::Tensor logits =
      at::tensor({3.0, 1.0, 0.0, 1.4, 1.0, 0.0, 0.0, 2.0, 1.0}, at::kDouble).view({3, 3});
  at::Tensor targets = at::tensor({0, 0, 0}, at::kLong);
  at::Tensor L = at::scalar_tensor(1.0 / kSqrt2, at::kDouble).requires_grad_(true);
  at::Tensor loss = lip::lmt_loss(logits, targets, L, 1.0, /*clip_to_margin=*/true);
  const double expected =
      (ce({3.0, 2.0, 1.0}, 0) + ce({1.4, 1.4, 0.4}, 0) + ce({0.0, 2.0, 1.0}, 0)) / 3;
  EXPECT_NEAR(value(loss), expected, 1e-12);
  // The factor is held constant: dloss/dL = sum over samples of factor_n * d/dL of the shift.
  at::Tensor g = torch::autograd::grad({loss}, {L})[0];
  auto dshift = [](std::vector<double> z, double factor) {  // d CE / d shift * factor * sqrt(2)
    double sum = 0;
    for (double v : z) sum += std::exp(v);
    return factor * kSqrt2 * (1.0 - std::exp(z[0]) / sum);
  };
  const double expected_grad =
      (dshift({3.0, 2.0, 1.0}, 1.0) + dshift({1.4, 1.4, 0.4}, 0.4) + 0.0) / 3;
  EXPECT_NEAR(value(g), expected_grad, 1e-12);
}

TEST(LmtPairwiseLoss, ShiftsEachLogitByCLhTimesTheClassWeightDistance) {
  // w0 = (0, 0), w1 = (3, 4), w2 = (0, 1): ||w0-w1|| = 5, ||w0-w2|| = 1, ||w1-w2|| = sqrt(18).
  lip::HeadSplit head{at::scalar_tensor(2.0, at::kDouble),
                      at::tensor({0.0, 0.0, 3.0, 4.0, 0.0, 1.0}, at::kDouble).view({3, 2})};
  at::Tensor logits = at::tensor({1.0, 0.0, 0.5, 0.0, 2.0, 1.0}, at::kDouble).view({2, 3});
  at::Tensor targets = at::tensor({0, 1}, at::kLong);
  const double c = 0.1;
  const double expected = 0.5 * (ce({1.0, 0.0 + c * 2 * 5, 0.5 + c * 2 * 1}, 0) +
                                 ce({0.0 + c * 2 * 5, 2.0, 1.0 + c * 2 * std::sqrt(18.0)}, 1));
  EXPECT_NEAR(value(lip::lmt_pairwise_loss(logits, targets, head, c)), expected, 1e-12);
  // Clip: sample 0 margins 1 (shift 1) and 0.5 (shift 0.2) -> factor min(1, 1) = 1; sample 1
  // margins 2 (shift 1) and 1 (shift 0.2 sqrt 18 ~ 0.85) -> factor 1. With c = 1: sample 0 shifts
  // 10 and 2 -> factor min(0.1, 0.25) = 0.1; sample 1 shifts 10, 8.49 -> min(0.2, 0.118) = 0.118.
  const double f0 = 0.1, f1 = 1.0 / (2 * std::sqrt(18.0));
  const double clipped = 0.5 * (ce({1.0, 0.0 + f0 * 10, 0.5 + f0 * 2}, 0) +
                                ce({0.0 + f1 * 10, 2.0, 1.0 + f1 * 2 * std::sqrt(18.0)}, 1));
  EXPECT_NEAR(value(lip::lmt_pairwise_loss(logits, targets, head, 1.0, true)), clipped, 1e-12);
  EXPECT_NEAR(value(lip::lmt_pairwise_loss(logits, targets, head, 0.1, true)), expected, 1e-12);
}

TEST(LmtPairwiseLoss, IsDifferentiableInTheHeadWeights) {
  at::manual_seed(30);
  at::Tensor w = at::randn({4, 3}, at::kDouble).requires_grad_(true);
  lip::HeadSplit head{at::scalar_tensor(1.5, at::kDouble), w};
  at::Tensor logits = at::randn({5, 4}, at::kDouble);
  at::Tensor targets = at::tensor({0, 1, 2, 3, 1}, at::kLong);
  at::Tensor g =
      torch::autograd::grad({lip::lmt_pairwise_loss(logits, targets, head, 0.3)}, {w})[0];
  EXPECT_FALSE(at::isnan(g).any().item<bool>());
  const double h = 1e-6;
  at::Tensor wp = w.detach().clone(), wm = w.detach().clone();
  wp[2][1] += h;
  wm[2][1] -= h;
  const double up = value(lip::lmt_pairwise_loss(logits, targets, {head.body_bound, wp}, 0.3));
  const double down = value(lip::lmt_pairwise_loss(logits, targets, {head.body_bound, wm}, 0.3));
  EXPECT_NEAR(value(g[2][1]), (up - down) / (2 * h), 1e-7);
}

TEST(LmtWarmup, RampsCLinearly) {
  EXPECT_DOUBLE_EQ(lip::lmt_c_at(0.4, 5, 0), 0.0);
  EXPECT_DOUBLE_EQ(lip::lmt_c_at(0.4, 5, 2.5), 0.2);
  EXPECT_DOUBLE_EQ(lip::lmt_c_at(0.4, 5, 7), 0.4);
  EXPECT_DOUBLE_EQ(lip::lmt_c_at(0.4, 0, 0), 0.4);
}

TEST(Certify, RadiusIsMarginOverSqrt2L) {
  at::Tensor logits = at::tensor({3.0, 1.0, 0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0}).view({3, 3});
  at::Tensor labels = at::tensor({0, 0, 0}, at::kLong);
  at::Tensor r = lip::certified_radius(logits, labels, at::scalar_tensor(2.0, at::kDouble));
  EXPECT_NEAR(value(r[0]), 2.0 / (kSqrt2 * 2.0), 1e-12);
  EXPECT_EQ(value(r[1]), 0.0);  // misclassified
  EXPECT_EQ(value(r[2]), 0.0);  // tied
}

TEST(Certify, PairwiseRadiusIsTheSmallestGapOverLhTimesDistance) {
  lip::HeadSplit head{at::scalar_tensor(2.0, at::kDouble),
                      at::tensor({0.0, 0.0, 3.0, 4.0, 0.0, 1.0}, at::kDouble).view({3, 2})};
  at::Tensor logits = at::tensor({1.0, 0.0, 0.5, 0.0, 2.0, 1.0, 0.0, 1.0, 0.5}).view({3, 3});
  at::Tensor labels = at::tensor({0, 1, 0}, at::kLong);
  at::Tensor r = lip::certified_radius_pairwise(logits, labels, head);
  // Sample 0: min(1 / (2*5), 0.5 / (2*1)) = 0.1. Sample 1: min(2 / 10, 1 / (2 sqrt 18)).
  EXPECT_NEAR(value(r[0]), 0.1, 1e-12);
  EXPECT_NEAR(value(r[1]), 1.0 / (2 * std::sqrt(18.0)), 1e-12);
  EXPECT_EQ(value(r[2]), 0.0);
}

TEST(Certify, SummaryCountsMisclassifiedAsRadiusZero) {
  at::Tensor radii = at::tensor({0.5, 0.1, 0.3, 0.9}, at::kDouble);
  at::Tensor correct = at::tensor({1, 1, 0, 1}).to(at::kBool);
  auto s = lip::summarize(radii, correct, {0.0, 0.2, 1.0}, 1.7);
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.clean_accuracy, 0.75);
  ASSERT_EQ(s.certified_accuracy.size(), 3u);
  EXPECT_DOUBLE_EQ(s.certified_accuracy[0], 0.75);
  EXPECT_DOUBLE_EQ(s.certified_accuracy[1], 0.5);
  EXPECT_DOUBLE_EQ(s.certified_accuracy[2], 0.0);
  EXPECT_DOUBLE_EQ(s.median_radius, 0.3);  // effective radii 0, 0.1, 0.5, 0.9
  EXPECT_DOUBLE_EQ(s.bound, 1.7);
  auto odd = lip::summarize(at::tensor({0.4, 0.2, 0.8}, at::kDouble), at::tensor({1, 1, 1}), {});
  EXPECT_DOUBLE_EQ(odd.median_radius, 0.4);
}
