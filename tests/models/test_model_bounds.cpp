// Every model with a bound, on a small random instance in eval mode: kSound and kEstimate are
// >= the Jacobian norm and the logit-difference slopes that gradient ascent finds (difference
// slopes against sqrt(2) L and against the pairwise head rule); kTrain converges to kEstimate
// under power iteration and never exceeds kSound.
#include <gtest/gtest.h>

#include <cmath>

#include <torch/csrc/autograd/autograd.h>

#include <lmt/lipschitz/bounded_module.h>
#include <lmt/models/model.h>

#include "zoo.h"

namespace lm = lmt::models;
namespace lip = lmt::lipschitz;
using lip::BoundMode;

namespace {

double value(const at::Tensor& t) { return t.to(at::kDouble).item<double>(); }

struct Steepest {
  double difference_gradient = 0;  // max over points and pairs of ||grad_x (F_i - F_j)||
  double difference_slope = 0;     // max |d(x) - d(y)| / ||x - y|| over the pairs tried
  double pairwise_ratio = 0;       // max slope_ij / ||w_i - w_j|| (compare with L_h)
  double jacobian = 0;             // max ||J(x)||_2 at the points reached
};

// The spectral norm of dF/dx at x [1, C, H, W], from one backward pass per logit.
double jacobian_norm(lm::Model& model, const at::Tensor& x0) {
  at::Tensor x = x0.detach().clone().requires_grad_(true);
  at::Tensor f = model.forward(x).reshape({-1});
  at::Tensor jac = at::zeros({f.numel(), x.numel()}, at::kDouble);
  for (int64_t i = 0; i < f.numel(); ++i)
    jac[i].copy_(torch::autograd::grad({f[i]}, {x}, {}, /*retain_graph=*/true)[0].reshape({-1}));
  return at::linalg_svdvals(jac).max().item<double>();
}

// Gradient ascent (float64) on the slope of d = F_i - F_j between two nearby points, from
// random starts, for every class pair; records the input gradient of d where it ends.
Steepest gradient_ascent(lm::Model& model, const at::Tensor& head_weight, at::IntArrayRef shape,
                         int64_t classes) {
  Steepest s;
  for (int64_t i = 0; i < classes; ++i) {
    for (int64_t j = i + 1; j < classes; ++j) {
      const double w_dist = value((head_weight[i] - head_weight[j]).norm());
      for (int start = 0; start < 3; ++start) {
        at::Tensor x = at::rand(shape, at::kDouble).requires_grad_(true);
        at::Tensor y = (x.detach() + 0.05 * at::randn(shape, at::kDouble)).requires_grad_(true);
        for (int step = 0; step < 40; ++step) {
          at::Tensor fx = model.forward(x), fy = model.forward(y);
          at::Tensor d = (fx.select(1, i) - fx.select(1, j)) - (fy.select(1, i) - fy.select(1, j));
          at::Tensor slope = d.abs().sum() / (x - y).norm().clamp_min(1e-9);
          s.difference_slope = std::max(s.difference_slope, value(slope));
          s.pairwise_ratio = std::max(s.pairwise_ratio, value(slope) / w_dist);
          auto g = torch::autograd::grad({slope}, {x, y});
          at::NoGradGuard no_grad;
          x.add_(0.05 * g[0] / g[0].norm().clamp_min(1e-12));
          y.add_(0.05 * g[1] / g[1].norm().clamp_min(1e-12));
        }
        at::Tensor fx = model.forward(x);
        at::Tensor grad =
            torch::autograd::grad({fx.select(1, i).sum() - fx.select(1, j).sum()}, {x})[0];
        s.difference_gradient = std::max(s.difference_gradient, value(grad.norm()));
        s.pairwise_ratio = std::max(s.pairwise_ratio, value(grad.norm()) / w_dist);
        s.jacobian = std::max(s.jacobian, jacobian_norm(model, x.detach()));
      }
    }
  }
  return s;
}

class BoundedModel : public ::testing::TestWithParam<std::string> {};

TEST_P(BoundedModel, BoundDominatesGradientAscent) {
  at::manual_seed(7);
  const int64_t classes = 3;
  auto model = lm::make_model(lm::testing::small_config(GetParam(), 1, 16, classes));
  ASSERT_TRUE(model->has_bound());
  lm::testing::randomize_normalizations(*model);
  model->eval();
  const double sound = value(model->lipschitz_bound(BoundMode::kSound));
  const double estimate = value(model->lipschitz_bound(BoundMode::kEstimate));
  lip::HeadSplit head = model->head_split(BoundMode::kSound);
  ASSERT_TRUE(head.defined());
  const double body = value(head.body_bound);

  model->to(at::kDouble);
  Steepest s = gradient_ascent(*model, head.head_weight, {1, 1, 16, 16}, classes);
  RecordProperty("sound", std::to_string(sound));
  std::printf("%s: L_sound %.4g  L_estimate %.4g  max|J| %.4g  max grad(Fi-Fj) %.4g\n",
              GetParam().c_str(), sound, estimate, s.jacobian, s.difference_gradient);
  EXPECT_GT(s.jacobian, 0.0);
  EXPECT_LE(estimate, sound * (1 + 1e-6));
  EXPECT_GE(estimate, s.jacobian);
  EXPECT_GE(sound, s.jacobian);
  EXPECT_GE(std::sqrt(2.0) * estimate, s.difference_gradient);
  EXPECT_GE(std::sqrt(2.0) * estimate, s.difference_slope);
  EXPECT_GE(std::sqrt(2.0) * sound, s.difference_slope);
  EXPECT_GE(body, s.pairwise_ratio);
}

TEST_P(BoundedModel, TrainBoundConvergesToEstimateAndStaysBelowSound) {
  at::manual_seed(3);
  auto model = lm::make_model(lm::testing::small_config(GetParam()));
  lm::testing::randomize_normalizations(*model);
  model->eval();
  lip::power_iteration_step(*model, 500);
  const double train = value(model->lipschitz_bound(BoundMode::kTrain));
  const double estimate = value(model->lipschitz_bound(BoundMode::kEstimate));
  const double sound = value(model->lipschitz_bound(BoundMode::kSound));
  EXPECT_NEAR(train / estimate, 1.0, 1e-2);
  EXPECT_LE(train, sound * (1 + 1e-5));
  // The pairwise head split composes to the same body bound the global bound uses.
  lip::HeadSplit head = model->head_split(BoundMode::kSound);
  const double head_norm = at::linalg_svdvals(head.head_weight).max().item<double>();
  EXPECT_LE(value(head.body_bound) * head_norm, sound * (1 + 1e-5));
  EXPECT_GE(value(head.body_bound) * head_norm, sound * (1 - 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Zoo, BoundedModel, ::testing::ValuesIn(lm::testing::bounded_models()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
