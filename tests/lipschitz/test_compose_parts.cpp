// Tests of the parts the built-in models are declared with: the conv + folded batch-norm pair,
// the stand-alone batch norm, channel scales, drop-path, softplus (each bound against the explicit
// Jacobian in float64), Sequential::head_split through a LinearHead and a nested Sequential, and
// the check that a composed tree and the model registering its layers hold the same tensors.
#include <gtest/gtest.h>

#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/lipschitz/rules.h>

#include "jacobian.h"

namespace lip = lmt::lipschitz;
using lip::BoundMode;
using lip::testing::jacobian;
using lip::testing::linear_map_matrix;
using lip::testing::spectral_norm;
using lip::testing::value;

namespace {

torch::nn::BatchNorm2d random_batch_norm(int64_t channels) {
  torch::nn::BatchNorm2d bn(channels);
  at::NoGradGuard no_grad;
  bn->weight.copy_(at::randn({channels}) * 2);  // includes negative gamma
  bn->bias.copy_(at::randn({channels}));
  bn->running_var.copy_(at::rand({channels}) * 3 + 0.05);
  bn->running_mean.copy_(at::randn({channels}));
  return bn;
}

// A LinearHead other than BoundedLinear: F = 2 W h (head weight 2 W).
struct DoubledLinear : lip::BoundedModule, lip::LinearHead {
  explicit DoubledLinear(int64_t in, int64_t out) {
    weight = register_parameter("weight", at::randn({out, in}));
  }
  at::Tensor forward(const at::Tensor& x) override { return at::linear(x, 2 * weight); }
  at::Tensor lipschitz_bound(BoundMode) override {
    return at::linalg_matrix_norm(2 * weight.detach().to(at::kDouble), 2);
  }
  at::Tensor head_weight(BoundMode mode) override {
    return mode == BoundMode::kSound ? 2 * weight.detach().to(at::kDouble) : 2 * weight;
  }
  at::Tensor weight;
};

}  // namespace

TEST(ComposeParts, ConvBatchNormRunsBnAfterTheConvAndIsBoundedAsTheFoldedOperator) {
  at::manual_seed(40);
  lip::BoundedConv2d conv(lip::BoundedConv2dOptions(2, 3, 3, 6, 6).padding(1).bias(false));
  auto bn = random_batch_norm(3);
  lip::ConvBatchNorm2d part(conv, bn);
  part->eval();
  EXPECT_TRUE(conv->has_batch_norm());
  at::Tensor x = at::rand({2, 2, 6, 6});
  EXPECT_TRUE(at::equal(part->forward(x), bn->forward(conv->forward(x))));
  part->to(at::kDouble);
  const double exact = spectral_norm(
      linear_map_matrix([&](const at::Tensor& u) { return part->forward(u); }, {1, 2, 6, 6}));
  const double sound = value(part->lipschitz_bound(BoundMode::kSound));
  EXPECT_GE(sound, exact);
  // The circulant relaxation of a 3x3 conv on 6x6 measured 1.11-1.21x in test_spectral_layers.
  EXPECT_LE(sound, 1.5 * exact);
  // Folded: tighter than the conv's norm times the BN rule whenever the gains differ.
  lip::BoundedConv2d bare(lip::BoundedConv2dOptions(2, 3, 3, 6, 6).padding(1).bias(false));
  {
    at::NoGradGuard no_grad;
    bare->weight.copy_(conv->weight);
  }
  EXPECT_LE(sound, value(bare->spectral_norm(BoundMode::kSound)) *
                       value(lip::batch_norm_bound(bn, BoundMode::kSound)) * (1 + 1e-9));
}

TEST(ComposeParts, StandAloneBatchNormIsBoundedByTheRuleWhichIsExact) {
  at::manual_seed(41);
  auto bn = random_batch_norm(4);
  lip::BoundedBatchNorm2d part(bn);
  part->eval();
  part->to(at::kDouble);
  const double jac = spectral_norm(
      jacobian([&](const at::Tensor& u) { return part->forward(u); }, at::rand({1, 4, 3, 3})));
  // A per-channel affine map: its norm is max |gamma| / sqrt(var + eps); kSound adds the relative
  // rounding allowance 1e-9 of every sound bound (1e-8 leaves room for float64 rounding).
  const double sound = value(part->lipschitz_bound(BoundMode::kSound));
  EXPECT_GE(sound, jac);
  EXPECT_LE(sound, jac * (1 + 1e-8));
  EXPECT_EQ(sound, value(lip::batch_norm_bound(bn, BoundMode::kSound)));
  EXPECT_THROW(lip::BoundedBatchNorm2d(torch::nn::BatchNorm2d(
                   torch::nn::BatchNorm2dOptions(4).track_running_stats(false))),
               lip::BoundError);
}

TEST(ComposeParts, ChannelScaleIsBoundedByItsLargestMagnitude) {
  at::manual_seed(42);
  lip::ChannelScale part(at::tensor({0.5, -1.5, 0.25}, at::kDouble));
  const double jac = spectral_norm(
      jacobian([&](const at::Tensor& u) { return part->forward(u); }, at::rand({1, 3, 2, 2})));
  EXPECT_DOUBLE_EQ(jac, 1.5);
  EXPECT_DOUBLE_EQ(value(part->lipschitz_bound(BoundMode::kSound)), 1.5);
  EXPECT_TRUE(part->lipschitz_bound(BoundMode::kTrain).requires_grad());
  EXPECT_FALSE(part->lipschitz_bound(BoundMode::kEstimate).requires_grad());
  EXPECT_THROW(part->forward(at::rand({1, 4, 2, 2}, at::kDouble)), lip::BoundError);
}

TEST(ComposeParts, DropPathDropsWholeSamplesWhileTrainingAndIsTheIdentityAtEval) {
  at::manual_seed(43);
  lip::DropPath part(0.5);
  at::Tensor x = at::rand({64, 2, 3, 3}) + 0.1;
  at::Tensor y = part->forward(x);
  // Each sample is either 0 or x / keep (x > 0, so a kept sample has a positive sum).
  at::Tensor kept = (y.flatten(1).sum(1) > 0).to(at::kFloat).view({-1, 1, 1, 1});
  EXPECT_TRUE(at::allclose(y, x * 2.0 * kept));
  // 64 samples, keep probability 1/2: 0 or 64 kept has probability 2^-63.
  EXPECT_GT(kept.sum().item<double>(), 0);
  EXPECT_LT(kept.sum().item<double>(), 64);
  part->eval();
  EXPECT_TRUE(at::equal(part->forward(x), x));
  EXPECT_EQ(value(part->lipschitz_bound(BoundMode::kSound)), 1.0);
  EXPECT_THROW(lip::DropPath(1.0), lip::BoundError);
}

TEST(ComposeParts, SoftplusHasSlopeBelowOne) {
  at::manual_seed(44);
  lip::Softplus part;
  at::Tensor x = at::randn({1, 2, 3, 3}, at::kDouble) * 3;
  EXPECT_TRUE(at::equal(part->forward(x), at::softplus(x)));
  const double jac =
      spectral_norm(jacobian([&](const at::Tensor& u) { return part->forward(u); }, x));
  EXPECT_LT(jac, 1.0);
  EXPECT_EQ(value(part->lipschitz_bound(BoundMode::kSound)), 1.0);
}

TEST(ComposeParts, HeadSplitReadsALinearHeadAndANestedSequential) {
  at::manual_seed(45);
  lip::BoundedLinear hidden(12, 6);
  auto head = std::make_shared<DoubledLinear>(6, 3);
  lip::Sequential net(lip::Flatten(), lip::Sequential(hidden, lip::ReLU(), head));
  lip::HeadSplit split = net->head_split(BoundMode::kSound);
  ASSERT_TRUE(split.defined());
  EXPECT_TRUE(at::equal(split.head_weight, 2 * head->weight.detach().to(at::kDouble)));
  EXPECT_DOUBLE_EQ(value(split.body_bound), value(hidden->lipschitz_bound(BoundMode::kSound)));
  // The global bound is the body's times the head's.
  EXPECT_NEAR(value(net->lipschitz_bound(BoundMode::kSound)),
              value(split.body_bound) * spectral_norm(split.head_weight),
              1e-12 * value(net->lipschitz_bound(BoundMode::kSound)));
  EXPECT_TRUE(net->head_split(BoundMode::kTrain).head_weight.requires_grad());
  EXPECT_FALSE(lip::Sequential(hidden, lip::ReLU())->head_split(BoundMode::kSound).defined());
}

TEST(ComposeParts, RequireSameTensorsNamesWhatOnlyOneSideHolds) {
  torch::nn::Module owner;
  auto conv = owner.register_module(
      "conv", lip::BoundedConv2d(lip::BoundedConv2dOptions(1, 2, 3, 4, 4).padding(1)));
  lip::Sequential tree(conv, lip::ReLU());
  EXPECT_NO_THROW(lip::require_same_tensors(*tree, owner, "net"));
  auto expect_message = [&](lip::Sequential& t, const std::string& part) {
    try {
      lip::require_same_tensors(*t, owner, "net");
      ADD_FAILURE() << "no error";
    } catch (const lip::BoundError& e) {
      EXPECT_NE(std::string(e.what()).find("net: tensor '" + part), std::string::npos) << e.what();
    }
  };
  lip::Sequential extra(conv, lip::Flatten(), lip::BoundedLinear(32, 2));  // not registered
  expect_message(extra, "2.weight' of the composed network is not registered");
  owner.register_module("unused", lip::BoundedLinear(3, 2));
  expect_message(tree, "unused.weight' of the model is not part of its composed network");
}
