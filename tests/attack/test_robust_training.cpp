// The pieces of robust training: the hypersphere-embedding head and its margin, the eps warm-up,
// the label-mixing augmentations and the label-preserving ones, and one PGD-AT / TRADES step.
#include <gtest/gtest.h>

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <lmt/models/heads.h>
#include <lmt/train/adversarial_objective.h>
#include <lmt/train/augment_batch.h>

#include "attack_test_util.h"

namespace lmt::train {
namespace {

TEST(HypersphereHead, LogitsAreScaledCosinesOfFeaturesAndClassWeights) {
  at::manual_seed(1);
  models::HypersphereHead head(6, 4, 10.0);
  at::Tensor z = at::randn({3, 6});
  at::Tensor logits = head->forward(z);
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t i = 0; i < 4; ++i) {
      at::Tensor w = head->weight[i], f = z[n];
      const double cos = (w.dot(f) / (w.norm() * f.norm())).item<double>();
      EXPECT_NEAR(logits[n][i].item<double>(), 10.0 * cos, 1e-5);
    }
}

TEST(HypersphereHead, ModelWithHeOptionHasNoBoundAndUsesTheHead) {
  models::ModelConfig c;
  c.name = "lmt-mnist";
  c.height = c.width = 8;
  c.options = {{"head", "he"}, {"he_s", "15"}, {"hidden", "16"}};
  auto model = models::make_model(c);
  EXPECT_FALSE(model->has_bound());
  EXPECT_THROW(model->lipschitz_bound(lipschitz::BoundMode::kSound), models::ModelError);
  at::Tensor logits = model->forward(at::rand({5, 1, 8, 8}));
  EXPECT_LE(logits.abs().max().item<double>(), 15.0 + 1e-4);  // |s cos| <= s
  c.options["head"] = "cosine";
  EXPECT_THROW(models::make_model(c), models::ModelError);
}

TEST(HypersphereMargin, SubtractsSTimesMFromTheTrueClassOnly) {
  at::Tensor logits = at::tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}).reshape({2, 3});
  at::Tensor y = at::tensor({2, 0}, at::kLong);
  at::Tensor m = hypersphere_margin_logits(logits, y, 10.0, 0.2);
  at::Tensor expected = at::tensor({1.0f, 2.0f, 1.0f, 2.0f, 5.0f, 6.0f}).reshape({2, 3});
  EXPECT_TRUE(at::allclose(m, expected));
}

TEST(EpsWarmup, IsLinearFromZeroThenConstant) {
  EXPECT_DOUBLE_EQ(eps_at(0.1, 2.0, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(eps_at(0.1, 2.0, 1.0), 0.05);
  EXPECT_DOUBLE_EQ(eps_at(0.1, 2.0, 3.0), 0.1);
  EXPECT_DOUBLE_EQ(eps_at(0.1, 0.0, 0.0), 0.1);
}

// Image n is the constant n and its label is n, so a mixed pixel reveals its two sources.
TEST(MixBatch, MixUpIsTheConvexCombinationOfTheTwoLabelledImages) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  at::Tensor x = at::arange(8, at::kFloat).view({8, 1, 1, 1}).expand({8, 1, 4, 4}).contiguous();
  at::Tensor y = at::arange(8, at::kLong);
  MixedBatch mb = mix_batch(x, y, 0.4, 0.0, gen);
  ASSERT_GT(mb.lambda, 0.0);
  ASSERT_LT(mb.lambda, 1.0);
  at::Tensor expected = mb.lambda * mb.labels_a.to(at::kFloat) +
                        (1 - mb.lambda) * mb.labels_b.to(at::kFloat);
  EXPECT_TRUE(at::allclose(mb.images.flatten(1).mean(1), expected, 1e-5, 1e-5));
}

TEST(MixBatch, CutMixLambdaIsTheKeptAreaFraction) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  at::Tensor x = at::arange(8, at::kFloat).view({8, 1, 1, 1}).expand({8, 1, 16, 16}).contiguous();
  at::Tensor y = at::arange(8, at::kLong);
  MixedBatch mb = mix_batch(x, y, 0.0, 1.0, gen);
  for (int64_t n = 0; n < 8; ++n) {
    if (mb.labels_a[n].item<int64_t>() == mb.labels_b[n].item<int64_t>()) continue;
    const double kept = mb.images[n].eq(float(n)).to(at::kDouble).mean().item<double>();
    EXPECT_NEAR(kept, mb.lambda, 1e-9);
  }
}

TEST(LabelPreservingAugmentations, StayInTheBoxAndEraseABoxOfTheDocumentedSize) {
  at::Generator gen = at::detail::createCPUGenerator(7);
  at::Tensor x = at::rand({16, 1, 28, 28});
  at::Tensor r = rand_augment(x, 2, 9, gen);
  EXPECT_TRUE(r.sizes().equals(x.sizes()));
  EXPECT_GE(r.min().item<double>(), 0.0);
  EXPECT_LE(r.max().item<double>(), 1.0);
  at::Tensor zeros = at::zeros({16, 1, 28, 28});
  at::Tensor e = random_erasing(zeros, 1.0, gen);
  for (int64_t n = 0; n < 16; ++n) {
    const double area = e[n].gt(0).to(at::kDouble).mean().item<double>();
    EXPECT_GT(area, 0.0);
    EXPECT_LE(area, 0.34);
  }
}

TEST(RobustObjectives, PgdAtAndTradesGiveFiniteLossesWithGradientsAndLeaveTrainMode) {
  auto data = attack::testing::synthetic_images(32, 9);
  for (Loss loss : {Loss::kPgdAt, Loss::kTrades}) {
    TrainOptions o;
    o.loss(loss).adv_norm(attack::Norm::kL2).adv_eps(0.5).attack_steps(3);
    auto objective = make_objective(o);
    auto model = attack::testing::small_lmt_mnist();
    model->train();
    ObjectiveOutput out = objective->compute(*model, data.x, data.y, 1.0);
    ASSERT_TRUE(std::isfinite(out.loss.item<double>())) << options::to_string(loss);
    EXPECT_TRUE(model->is_training()) << options::to_string(loss);
    out.loss.backward();
    double grad_norm = 0;
    for (auto& p : model->parameters()) grad_norm += p.grad().defined() ? p.grad().norm().item<double>() : 0;
    EXPECT_GT(grad_norm, 0.0) << options::to_string(loss);
    EXPECT_EQ(out.logits.size(0), 32) << options::to_string(loss);
  }
  TrainOptions bad;
  bad.data_dir("d").out_dir("o").loss(Loss::kPgdAt);  // eps 0
  EXPECT_THROW(check_options(bad, 1), TrainError);
}

}  // namespace
}  // namespace lmt::train
