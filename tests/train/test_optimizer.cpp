// The optimizers a run's options make, against steps computed by hand: AdamW's decay is decoupled
// from the gradient (Adam's is L2 inside it), --no-decay-bias-norm exempts biases and 1-d
// parameters, and the ce objective's label smoothing is torch's definition.
#include <gtest/gtest.h>

#include <cmath>

#include <lmt/train/objective.h>
#include <lmt/train/optimizer.h>

namespace {

using namespace lmt;

// One step of the optimizer from `o` on w = [[1]] (named "w") and b = [1] (named "b") with the
// given gradients; returns their new values.
std::pair<double, double> one_step(const train::TrainOptions& o, double grad_w, double grad_b) {
  at::Tensor w = at::ones({1, 1}, at::kFloat).requires_grad_(true);
  at::Tensor b = at::ones({1}, at::kFloat).requires_grad_(true);
  auto optimizer = train::make_optimizer(o, {{"layer.w", w}, {"layer.bias", b}});
  w.mutable_grad() = at::full({1, 1}, grad_w);
  b.mutable_grad() = at::full({1}, grad_b);
  optimizer->step();
  return {w.item<double>(), b.item<double>()};
}

// Adam's first step is lr * g / (|g| + 1e-8) = lr * sign(g) up to 2e-8 relative; the values are
// float32 near 1 (rounding 6e-8): 1e-6 leaves room for both and is 1e4 below the differences
// (0.01) the tests tell apart.
constexpr double kTol = 1e-6;

TEST(Optimizer, AdamwDecaysDecoupledAdamAsL2InTheGradient) {
  train::TrainOptions o;
  o.lr(0.1).weight_decay(0.1);
  // Adam: g' = g + wd w = 0.6, step lr * g'/|g'| = 0.1 -> 0.9.
  EXPECT_NEAR(one_step(train::TrainOptions(o).optimizer(train::Optimizer::kAdam), 0.5, 0.5).first,
              0.9, kTol);
  // AdamW: w - lr wd w = 0.99, then lr * g/|g| = 0.1 -> 0.89.
  EXPECT_NEAR(one_step(train::TrainOptions(o).optimizer(train::Optimizer::kAdamw), 0.5, 0.5).first,
              0.89, kTol);
}

TEST(Optimizer, NoDecayBiasNormExemptsBiasesAndOneDimParameters) {
  // Zero gradients: only the decoupled decay moves a parameter (w -> 1 - lr wd = 0.99).
  train::TrainOptions o;
  o.optimizer(train::Optimizer::kAdamw).lr(0.1).weight_decay(0.1);
  auto [w, b] = one_step(o, 0.0, 0.0);
  EXPECT_NEAR(w, 0.99, kTol);
  EXPECT_NEAR(b, 0.99, kTol);
  std::tie(w, b) = one_step(train::TrainOptions(o).no_decay_bias_norm(true), 0.0, 0.0);
  EXPECT_NEAR(w, 0.99, kTol);
  EXPECT_EQ(b, 1.0);  // exempt: not touched at all
  EXPECT_TRUE(train::is_bias_or_norm("bn1.weight", at::ones({8})));
  EXPECT_TRUE(train::is_bias_or_norm("fc.bias", at::ones({8, 2})));
  EXPECT_FALSE(train::is_bias_or_norm("conv1.weight", at::ones({8, 3, 3, 3})));
}

TEST(Objective, LabelSmoothingIsTorchsDefinition) {
  // The ce objective's loss = mean over points of (1 - e) (-log p_y) + e mean_k(-log p_k),
  // recomputed here in float64 from the logits it returns.
  models::ModelConfig config;
  config.name = "lmt-mnist";
  config.num_classes = 10;
  config.channels = 1;
  config.height = config.width = 28;
  torch::manual_seed(3);
  auto model = models::make_model(config);
  at::Tensor images = at::rand({8, 1, 28, 28});
  at::Tensor labels = at::randint(10, {8}, at::kLong);
  const double e = 0.2;
  auto objective = train::make_objective(train::TrainOptions().label_smoothing(e));
  train::ObjectiveOutput out = objective->compute(*model, images, labels, 0.0);
  at::Tensor log_p = out.logits.detach().to(at::kDouble).log_softmax(1);
  const double expected =
      ((1 - e) * -log_p.gather(1, labels.unsqueeze(1)).squeeze(1) - e * log_p.mean(1))
          .mean()
          .item<double>();
  // The objective computes in float32: relative rounding ~1e-7 on a loss of ~2.3.
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-5);
  const double plain = train::make_objective(train::TrainOptions())
                           ->compute(*model, images, labels, 0.0)
                           .loss.item<double>();
  EXPECT_GT(std::abs(plain - expected), 1e-3);  // smoothing changed the loss
}

}  // namespace
