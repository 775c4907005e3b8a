// Every attack stays inside the eps ball and the [0,1] box; the worst case is the per-point
// minimum of robustness.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "attack_test_util.h"

namespace lmt::attack {
namespace {

// A fixed random two-layer network on 1x8x8 inputs with 10 classes.
Classifier random_network() {
  at::manual_seed(3);
  at::Tensor w1 = at::randn({64, 40}) * 0.5, w2 = at::randn({40, 10}) * 0.5;
  return [w1, w2](const at::Tensor& x) { return x.flatten(1).matmul(w1).relu().matmul(w2); };
}

// Points in [0,1] with many pixels on the box faces, so the box constraint is active.
at::Tensor box_heavy_inputs(int64_t n) {
  at::manual_seed(5);
  return (at::rand({n, 1, 8, 8}) * 1.6 - 0.3).clamp(0, 1);
}

void expect_in_ball_and_box(const AttackResult& r, const at::Tensor& x, Norm norm, double eps,
                            const std::string& what) {
  ASSERT_TRUE(r.adversarial.sizes().equals(x.sizes())) << what;
  ASSERT_EQ(r.still_correct.scalar_type(), at::kBool) << what;
  EXPECT_GE(r.adversarial.min().item<double>(), 0.0) << what;
  EXPECT_LE(r.adversarial.max().item<double>(), 1.0) << what;
  const double worst = perturbation_norm(r.adversarial - x, norm).max().item<double>();
  EXPECT_LE(worst, eps * (1 + 1e-5)) << what << ": largest perturbation " << worst;
}

class BallAndBox : public ::testing::TestWithParam<Norm> {};

TEST_P(BallAndBox, EveryAttackKeepsPerturbationsInsideTheBallAndTheBox) {
  const Norm norm = GetParam();
  const double eps = norm == Norm::kL2 ? 1.5 : 0.2;
  Classifier f = random_network();
  at::Tensor x = box_heavy_inputs(40);
  at::Tensor y;
  {
    at::NoGradGuard g;
    y = f(x).argmax(1);  // all correct clean, so every point is attacked
  }
  const auto pgd_o = PgdOptions().norm(norm).eps(eps).restarts(2);
  expect_in_ball_and_box(pgd(f, x, y, pgd_o), x, norm, eps, "PGD");
  const auto a = ApgdOptions().norm(norm).eps(eps).iterations(20).target_classes(3);
  expect_in_ball_and_box(apgd_ce(f, x, y, a), x, norm, eps, "APGD-CE");
  expect_in_ball_and_box(apgd_t(f, x, y, a), x, norm, eps, "APGD-T");
  const auto s = SquareOptions().norm(norm).eps(eps).queries(200);
  expect_in_ball_and_box(square(f, x, y, s), x, norm, eps, "Square");
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  at::Tensor start = random_start(x, norm, eps, gen);
  EXPECT_LE(perturbation_norm(start - x, norm).max().item<double>(), eps * (1 + 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Norms, BallAndBox, ::testing::Values(Norm::kL2, Norm::kLinf),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(AttackResult, StillCorrectIsTheClassifiersVerdictOnTheReturnedExamples) {
  Classifier f = random_network();
  at::Tensor x = box_heavy_inputs(40);
  at::Tensor y = at::randint(0, 10, {40}, at::kLong);  // many misclassified clean
  const auto a = ApgdOptions().norm(Norm::kLinf).eps(0.1).iterations(20);
  AttackResult r = apgd_ce(f, x, y, a);
  at::NoGradGuard g;
  at::Tensor verdict = f(r.adversarial).argmax(1).eq(y);
  EXPECT_TRUE(r.still_correct.equal(verdict));
  EXPECT_FALSE(r.still_correct.logical_and(f(x).argmax(1).ne(y)).any().item<bool>());
}

at::Tensor mask(std::vector<int> v) { return at::tensor(v, at::kInt).to(at::kBool); }

TEST(WorstCase, IsThePerPointMinimumOfRobustness) {
  at::Tensor x = at::zeros({4, 1, 1, 1});
  AttackResult a{at::full({4, 1, 1, 1}, 1.0), mask({1, 0, 1, 0})};
  AttackResult b{at::full({4, 1, 1, 1}, 2.0), mask({1, 1, 0, 0})};
  AttackResult c{at::full({4, 1, 1, 1}, 3.0), mask({1, 1, 1, 1})};
  AttackResult w = worst_case({a, b, c});
  EXPECT_TRUE(w.still_correct.equal(mask({1, 0, 0, 0})));
  // The example of a broken point comes from the first attack that broke it.
  EXPECT_TRUE(w.adversarial.flatten().equal(at::tensor({1.0f, 1.0f, 2.0f, 1.0f})));
  // Against an independent reference: the elementwise AND of the masks.
  EXPECT_TRUE(w.still_correct.equal(a.still_correct & b.still_correct & c.still_correct));
  EXPECT_THROW(worst_case({}), AttackError);
}

TEST(Norms, ParseAcceptsL2AndLinfOnly) {
  EXPECT_EQ(parse_norm("L2"), Norm::kL2);
  EXPECT_EQ(parse_norm("linf"), Norm::kLinf);
  EXPECT_THROW(parse_norm("L1"), AttackError);
}

}  // namespace
}  // namespace lmt::attack
