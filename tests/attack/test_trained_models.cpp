// Attacks on briefly trained models: APGD-CE is at least as strong as 10-step PGD, and on a model
// trained with the LMT loss no attack breaks a point certified with the sound bound.
#include <gtest/gtest.h>

#include <cstdio>

#include <lmt/lipschitz/certify.h>

#include "attack_test_util.h"

namespace lmt::attack {
namespace {

using testing::small_lmt_mnist;
using testing::synthetic_images;
using testing::train_briefly;

TEST(TrainedModel, ApgdCeFindsAtLeastAsManyErrorsAsTenStepPgd) {
  auto model = small_lmt_mnist();
  train_briefly(*model, synthetic_images(4000, 1), 300, 0.0);
  EvalMode eval(*model);
  auto data = synthetic_images(300, 2);
  Classifier f = classifier_of(*model);
  at::Tensor clean = correct_mask(f, data.x, data.y);
  ASSERT_GT(clean.to(at::kFloat).mean().item<double>(), 0.8) << "the model did not learn";
  for (Norm norm : {Norm::kL2, Norm::kLinf}) {
    const double eps = norm == Norm::kL2 ? 0.5 : 0.06;
    const auto p = PgdOptions().norm(norm).eps(eps).steps(10);
    const auto a = ApgdOptions().norm(norm).eps(eps);
    const int64_t pgd_errors =
        pgd(f, data.x, data.y, p).still_correct.logical_not().sum().item<int64_t>();
    const int64_t apgd_errors =
        apgd_ce(f, data.x, data.y, a).still_correct.logical_not().sum().item<int64_t>();
    EXPECT_GE(apgd_errors, pgd_errors) << to_string(norm);
    EXPECT_GT(pgd_errors, clean.logical_not().sum().item<int64_t>())
        << to_string(norm) << ": eps too small for the comparison to mean anything";
  }
}

TEST(TrainedModel, NoAttackBreaksAPointCertifiedByTheSoundBound) {
  auto model = small_lmt_mnist();
  train_briefly(*model, synthetic_images(4000, 3), 300, /*lmt_c=*/0.3);
  EvalMode eval(*model);
  auto data = synthetic_images(200, 4);
  Classifier f = classifier_of(*model);
  at::Tensor radius;
  {
    at::NoGradGuard g;
    at::Tensor L = model->lipschitz_bound(lipschitz::BoundMode::kSound);
    radius = lipschitz::certified_radius(f(data.x), data.y, L);
  }
  const double eps = 0.15;
  at::Tensor certified = radius.ge(eps);
  std::printf("certified at eps %.2f: %lld of %lld\n", eps,
              static_cast<long long>(certified.sum().item<int64_t>()),
              static_cast<long long>(certified.numel()));
  ASSERT_GT(certified.sum().item<int64_t>(), 10) << "too few certified points to test";

  const auto a = ApgdOptions().norm(Norm::kL2).eps(eps).iterations(50);
  const auto p = PgdOptions().norm(Norm::kL2).eps(eps).steps(20).restarts(2);
  const auto s = SquareOptions().norm(Norm::kL2).eps(eps).queries(300);
  std::vector<AttackResult> results = {apgd_ce(f, data.x, data.y, a), apgd_t(f, data.x, data.y, a),
                                       pgd(f, data.x, data.y, p), square(f, data.x, data.y, s)};
  AttackResult worst = worst_case(results);
  at::Tensor broken_certified = certified.logical_and(worst.still_correct.logical_not());
  EXPECT_EQ(broken_certified.sum().item<int64_t>(), 0);
  // The attacks are not idle: they break some uncertified points at this eps.
  EXPECT_GT(worst.still_correct.logical_not().sum().item<int64_t>(),
            correct_mask(f, data.x, data.y).logical_not().sum().item<int64_t>());
}

}  // namespace
}  // namespace lmt::attack
