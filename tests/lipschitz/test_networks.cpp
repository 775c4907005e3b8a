// Tests of whole composed networks: the composed bound is >= every Jacobian norm and every
// logit-difference slope that gradient ascent finds; the head split matches the pairwise rule.
#include <limits>

#include <gtest/gtest.h>

#include <lmt/lipschitz/certify.h>
#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>

#include "jacobian.h"

namespace lip = lmt::lipschitz;
using lip::BoundMode;
using lip::testing::jacobian;
using lip::testing::spectral_norm;
using lip::testing::value;

namespace {

lip::Sequential small_cnn() {
  using lip::BoundedConv2dOptions;
  return lip::Sequential(
      lip::InputNormalization(std::vector<double>{0.3, 0.5}, std::vector<double>{0.4, 0.6}),
      lip::BoundedConv2d(BoundedConv2dOptions(2, 4, 3, 8, 8).padding(1)), lip::ReLU(),
      lip::Residual(lip::Sequential(
          lip::BoundedConv2d(BoundedConv2dOptions(4, 4, 3, 8, 8).padding(1)), lip::MinMax())),
      lip::MaxPool2d(2, 2),
      lip::BoundedConv2d(BoundedConv2dOptions(4, 6, 3, 4, 4).stride(2).padding(1)), lip::ReLU(),
      lip::Flatten(), lip::BoundedLinear(6 * 2 * 2, 5));
}

lip::Sequential small_resnet() {
  using lip::BoundedConv2dOptions;
  auto bn = torch::nn::BatchNorm2d(4);
  auto conv = lip::BoundedConv2d(BoundedConv2dOptions(4, 4, 3, 6, 6).padding(1).bias(false));
  {
    at::NoGradGuard no_grad;
    bn->weight.copy_(at::rand({4}) + 0.5);
    bn->running_var.copy_(at::rand({4}) + 0.5);
  }
  bn->eval();
  conv->attach_batch_norm(bn);
  struct ConvBn : lip::BoundedModule {
    ConvBn(lip::BoundedConv2d c, torch::nn::BatchNorm2d b)
        : conv(register_module("conv", c)), bn(register_module("bn", b)) {}
    at::Tensor forward(const at::Tensor& x) override { return bn->forward(conv->forward(x)); }
    at::Tensor lipschitz_bound(BoundMode mode) override { return conv->lipschitz_bound(mode); }
    lip::BoundedConv2d conv;
    torch::nn::BatchNorm2d bn;
  };
  return lip::Sequential(
      lip::BoundedConv2d(BoundedConv2dOptions(1, 4, 3, 6, 6).padding(1)), lip::ReLU(),
      lip::Residual(lip::Sequential(std::make_shared<ConvBn>(conv, bn), lip::ReLU())),
      lip::Shift(4), lip::CenterNorm(4), lip::AvgPool2d(2, 2), lip::GlobalAvgPool(3, 3),
      lip::BoundedLinear(4, 3));
}

// Gradient ascent on the slope |d(x) - d(y)| / ||x - y|| of d = F_i - F_j from random pairs.
double steepest_logit_difference_slope(lip::Sequential& net, at::IntArrayRef shape, int classes) {
  double best = 0;
  for (int i = 0; i < classes; ++i) {
    for (int j = i + 1; j < classes; ++j) {
      for (int start = 0; start < 3; ++start) {
        at::Tensor x = at::rand(shape, at::kDouble).requires_grad_(true);
        at::Tensor y = (x.detach() + 0.05 * at::randn(shape, at::kDouble)).requires_grad_(true);
        for (int step = 0; step < 60; ++step) {
          at::Tensor fx = net->forward(x), fy = net->forward(y);
          at::Tensor slope =
              ((fx.select(1, i) - fx.select(1, j)) - (fy.select(1, i) - fy.select(1, j)))
                  .abs()
                  .sum() /
              (x - y).norm().clamp_min(1e-9);
          best = std::max(best, value(slope));
          auto g = torch::autograd::grad({slope}, {x, y});
          at::NoGradGuard no_grad;
          x.add_(0.02 * g[0] / g[0].norm().clamp_min(1e-12));
          y.add_(0.02 * g[1] / g[1].norm().clamp_min(1e-12));
        }
        // The input gradient of the difference at the final point.
        at::Tensor fx = net->forward(x);
        at::Tensor grad =
            torch::autograd::grad({fx.select(1, i).sum() - fx.select(1, j).sum()}, {x})[0];
        best = std::max(best, value(grad.norm()));
      }
    }
  }
  return best;
}

double largest_jacobian_norm(lip::Sequential& net, at::IntArrayRef shape, int points) {
  double best = 0;
  for (int p = 0; p < points; ++p) {
    best =
        std::max(best, spectral_norm(jacobian([&](const at::Tensor& x) { return net->forward(x); },
                                              at::rand(shape, at::kDouble))));
  }
  return best;
}

}  // namespace

TEST(ComposedNetwork, CnnBoundIsAboveJacobianNormsAndAscentSlopes) {
  at::manual_seed(20);
  auto net = small_cnn();
  net->eval();
  const double sound = value(net->lipschitz_bound(BoundMode::kSound));
  net->to(at::kDouble);
  const double jac = largest_jacobian_norm(net, {1, 2, 8, 8}, 4);
  const double slope = steepest_logit_difference_slope(net, {1, 2, 8, 8}, 5);
  EXPECT_GE(sound, jac);
  // A logit difference (e_i - e_j)^T F is sqrt(2) L-Lipschitz: the certificate's factor.
  EXPECT_GE(std::sqrt(2.0) * sound, slope);
  EXPECT_GE(sound, slope / std::sqrt(2.0));
  std::printf("  cnn: sound L %.4f, largest Jacobian norm %.4f, steepest difference slope %.4f\n",
              sound, jac, slope);
}

TEST(ComposedNetwork, ResidualNetWithFoldedBatchNormBoundIsAboveAscentSlopes) {
  at::manual_seed(21);
  auto net = small_resnet();
  net->eval();
  const double sound = value(net->lipschitz_bound(BoundMode::kSound));
  net->to(at::kDouble);
  const double jac = largest_jacobian_norm(net, {1, 1, 6, 6}, 4);
  const double slope = steepest_logit_difference_slope(net, {1, 1, 6, 6}, 3);
  EXPECT_GE(sound, jac);
  EXPECT_GE(std::sqrt(2.0) * sound, slope);
  std::printf("  resnet: sound L %.4f, largest Jacobian norm %.4f, steepest slope %.4f\n", sound,
              jac, slope);
}

TEST(ComposedNetwork, SequentialBoundIsTheProductOfItsParts) {
  at::manual_seed(22);
  auto net = small_cnn();
  double product = 1;
  for (size_t i = 0; i < net->size(); ++i)
    product *= value((*net)[i]->lipschitz_bound(BoundMode::kSound));
  EXPECT_NEAR(value(net->lipschitz_bound(BoundMode::kSound)), product, 1e-12 * product);
  EXPECT_EQ(lip::spectral_operators(*net).size(), 4u);
  EXPECT_TRUE(net->lipschitz_bound(BoundMode::kTrain).requires_grad());
  EXPECT_FALSE(net->lipschitz_bound(BoundMode::kSound).requires_grad());
}

TEST(ComposedNetwork, HeadSplitGivesAPairwiseRadiusThatNoPerturbationBreaks) {
  at::manual_seed(23);
  auto net = small_cnn();
  net->eval();
  lip::HeadSplit head = net->head_split(BoundMode::kSound);
  ASSERT_TRUE(head.defined());
  EXPECT_EQ(head.head_weight.sizes(), at::IntArrayRef({5, 24}));
  net->to(at::kDouble);
  at::Tensor x = at::rand({16, 2, 8, 8}, at::kDouble);
  at::Tensor logits = net->forward(x);
  at::Tensor labels = logits.argmax(1);
  at::Tensor r = lip::certified_radius_pairwise(logits, labels, head);
  // Perturbations of length 0.99 r in random and gradient directions never flip the label.
  for (int trial = 0; trial < 20; ++trial) {
    at::Tensor d = at::randn(x.sizes(), at::kDouble);
    d = d / d.flatten(1).norm(2, {1}).view({-1, 1, 1, 1}) * (0.99 * r).view({-1, 1, 1, 1});
    EXPECT_TRUE(at::equal(net->forward(x + d).argmax(1), labels));
  }
  at::Tensor radius =
      lip::certified_radius(logits, labels, net->lipschitz_bound(BoundMode::kSound));
  EXPECT_TRUE((radius > 0).all().item<bool>());
  EXPECT_TRUE((radius <= r + 1e-15).all().item<bool>());  // the pairwise bound is the tighter
}

// The smallest margin F_t - max_{i != t} F_i that L2 PGD (100 steps of eps/10, projected onto
// each point's eps-ball) reaches.
static at::Tensor pgd_worst_gap(lip::Sequential& net, const at::Tensor& x, const at::Tensor& labels,
                                const at::Tensor& eps_per_point) {
  at::Tensor eps = eps_per_point.view({-1, 1, 1, 1});
  at::Tensor delta = at::zeros_like(x).requires_grad_(true);
  at::Tensor worst = at::full({x.size(0)}, std::numeric_limits<double>::infinity(), at::kDouble);
  for (int step = 0; step <= 100; ++step) {
    at::Tensor f = net->forward(x + delta);
    at::Tensor f_t = f.gather(1, labels.unsqueeze(1)).squeeze(1);
    at::Tensor gap = f_t - std::get<0>(f.scatter(1, labels.unsqueeze(1), -1e30).max(1));
    worst = at::minimum(worst, gap.detach());
    at::Tensor g = torch::autograd::grad({gap.sum()}, {delta})[0];
    at::NoGradGuard no_grad;
    delta.sub_(0.1 * eps * g / g.flatten(1).norm(2, {1}).clamp_min(1e-30).view({-1, 1, 1, 1}));
    at::Tensor d_norm = delta.flatten(1).norm(2, {1}).view({-1, 1, 1, 1});
    delta.mul_(at::clamp_max(eps / d_norm.clamp_min(1e-30), 1.0));
  }
  return worst;
}

TEST(ComposedNetwork, PairwiseRadiusOfALinearModelIsExactUnderL2Pgd) {
  // For F = W x + b the pairwise radius is the exact distance to the decision boundary: PGD
  // flips every point just outside it and none just inside (checks radius and attack alike).
  at::manual_seed(24);
  lip::Sequential net(lip::Flatten(), lip::BoundedLinear(36, 4));
  net->to(at::kDouble);
  lip::HeadSplit head = net->head_split(BoundMode::kSound);
  at::Tensor x = at::rand({32, 1, 6, 6}, at::kDouble);
  at::Tensor labels = net->forward(x).argmax(1);
  at::Tensor r = lip::certified_radius_pairwise(net->forward(x).detach(), labels, head);
  EXPECT_TRUE((pgd_worst_gap(net, x, labels, 0.99 * r) > 0).all().item<bool>());
  EXPECT_TRUE((pgd_worst_gap(net, x, labels, 1.01 * r) < 0).all().item<bool>());
}

TEST(ComposedNetwork, L2PgdInsideTheCertifiedRadiusFlipsNoLabel) {
  at::manual_seed(25);
  auto net = small_resnet();
  net->eval();
  lip::HeadSplit head = net->head_split(BoundMode::kSound);
  net->to(at::kDouble);
  at::Tensor x = at::rand({32, 1, 6, 6}, at::kDouble);
  at::Tensor logits = net->forward(x).detach();
  at::Tensor labels = logits.argmax(1);
  at::Tensor r = lip::certified_radius_pairwise(logits, labels, head);
  EXPECT_TRUE((pgd_worst_gap(net, x, labels, 0.99 * r) > 0).all().item<bool>());
}
