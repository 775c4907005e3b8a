// On linear classifiers the minimal adversarial perturbation is known in closed form: PGD and
// APGD must succeed at 1.01x that distance and cannot succeed at 0.99x (the box is not active:
// the points sit in the middle of [0,1] and the minimal perturbations are small).
#include <gtest/gtest.h>

#include "attack_test_util.h"

namespace lmt::attack {
namespace {

// Binary: logits (0, w.x + b). Distance to the boundary: |w.x + b| / ||w||_2 (L2) and
// |w.x + b| / ||w||_1 (Linf).
struct Binary {
  at::Tensor w;  // [d]
  double b;
  Classifier f() const {
    at::Tensor w_ = w;
    double b_ = b;
    return [w_, b_](const at::Tensor& x) {
      at::Tensor s = x.flatten(1).matmul(w_) + b_;
      return at::stack({at::zeros_like(s), s}, 1);
    };
  }
};

// Multi-class: logits W x + c; the L2 distance of x (label t) to the nearest boundary is
// min_{j != t} (z_t - z_j) / ||w_t - w_j||_2: the region where t loses is the union of the
// half-spaces z_j >= z_t.
at::Tensor multiclass_distance(const at::Tensor& W, const at::Tensor& c, const at::Tensor& x,
                               const at::Tensor& y) {
  at::Tensor z = x.flatten(1).matmul(W.t()) + c;
  at::Tensor zt = z.gather(1, y.unsqueeze(1));
  at::Tensor diff = W.index_select(0, y).unsqueeze(1) - W.unsqueeze(0);  // [N, K, d]
  at::Tensor d = (zt - z) / diff.norm(2, 2);
  d.scatter_(1, y.unsqueeze(1), std::numeric_limits<float>::infinity());
  return std::get<0>(d.min(1));
}

// Runs `attack` with a per-point eps = factor * distance (one point at a time) and returns how
// many points it broke.
template <typename Attack>
int64_t broken_at(const Attack& attack, const at::Tensor& x, const at::Tensor& y,
                  const at::Tensor& distance, double factor) {
  int64_t broken = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    AttackResult r = attack(x.narrow(0, i, 1), y.narrow(0, i, 1),
                            factor * distance[i].item<double>());
    broken += r.still_correct.logical_not().sum().item<int64_t>();
  }
  return broken;
}

class LinearOptimality : public ::testing::TestWithParam<Norm> {};

TEST_P(LinearOptimality, PgdAndApgdFindTheMinimalPerturbationOfABinaryLinearClassifier) {
  const Norm norm = GetParam();
  at::manual_seed(11);
  Binary lin{at::randn({48}), 0.0};
  at::Tensor x = 0.5 + 0.02 * at::randn({8, 1, 6, 8});
  at::Tensor s = x.flatten(1).matmul(lin.w);
  lin.b = -s.mean().item<double>();  // points on both sides, close to the boundary
  Classifier f = lin.f();
  at::Tensor y = (s + lin.b).gt(0).to(at::kLong);
  at::Tensor dist = (s + lin.b).abs() / (norm == Norm::kL2 ? lin.w.norm(2) : lin.w.abs().sum());
  ASSERT_LT(dist.max().item<double>(), 0.3);

  auto run_pgd = [&](const at::Tensor& xi, const at::Tensor& yi, double eps) {
    // 50 steps: from a random start on the sphere, radial projection turns slowly
    const auto o = PgdOptions().norm(norm).eps(eps).steps(50).step_size(0.25 * eps);
    return pgd(f, xi, yi, o);
  };
  auto run_apgd = [&](const at::Tensor& xi, const at::Tensor& yi, double eps) {
    const auto o = ApgdOptions().norm(norm).eps(eps).iterations(50);
    return apgd_ce(f, xi, yi, o);
  };
  EXPECT_EQ(broken_at(run_pgd, x, y, dist, 1.01), x.size(0));
  EXPECT_EQ(broken_at(run_pgd, x, y, dist, 0.99), 0);
  EXPECT_EQ(broken_at(run_apgd, x, y, dist, 1.01), x.size(0));
  EXPECT_EQ(broken_at(run_apgd, x, y, dist, 0.99), 0);
}

INSTANTIATE_TEST_SUITE_P(Norms, LinearOptimality, ::testing::Values(Norm::kL2, Norm::kLinf),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(LinearOptimality, ApgdTargetedFindsTheNearestClassBoundaryInL2) {
  at::manual_seed(13);
  const int64_t classes = 10, d = 48;
  at::Tensor W = at::randn({classes, d}), c = at::zeros({classes});
  at::Tensor x = 0.5 + 0.02 * at::randn({8, 1, 6, 8});
  Classifier f = [W, c](const at::Tensor& v) { return v.flatten(1).matmul(W.t()) + c; };
  at::Tensor y;
  {
    at::NoGradGuard g;
    y = f(x).argmax(1);
  }
  at::Tensor dist = multiclass_distance(W, c, x, y);
  ASSERT_LT(dist.max().item<double>(), 0.4);
  auto run = [&](const at::Tensor& xi, const at::Tensor& yi, double eps) {
    const auto o = ApgdOptions().norm(Norm::kL2).eps(eps).iterations(50);
    return apgd_t(f, xi, yi, o);
  };
  EXPECT_EQ(broken_at(run, x, y, dist, 1.01), x.size(0));
  EXPECT_EQ(broken_at(run, x, y, dist, 0.99), 0);
}

}  // namespace
}  // namespace lmt::attack
