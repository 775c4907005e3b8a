// evaluate_robustness over a real HDF5 file: the first N points only, AutoAttack's order (each
// attack on the survivors of the ones before: attacked = survivors, robust accuracy cumulative),
// certified <= worst case for a bounded model, one process equal to two halves summed, and the
// counts against the attacks called directly on the survivors with the per-batch seed.
#include <gtest/gtest.h>

#include <cmath>

#include <lmt/attack/robustness.h>
#include <lmt/data/loader.h>

#include "../data/test_util.h"
#include "attack_test_util.h"

namespace lmt::attack {
namespace {

using testing::small_lmt_mnist;
using testing::synthetic_images;
using testing::train_briefly;

constexpr int64_t kFile = 50, kN = 40, kRankBatch = 10;
constexpr uint64_t kSeed = 5;
constexpr double kEps =
    0.3;  // L2: breaks a few points, certifies about half (measured: 38, 20 of 40)

// Synthetic 1x8x8 images rounded to bytes, written as an HDF5 split; x/y are what the file holds.
struct File {
  data::testing::ScratchDir dir;
  std::string path = dir.file("test.h5");
  at::Tensor x, y;
  File() {
    auto s = synthetic_images(kFile, 11);
    at::Tensor bytes = s.x.mul(255).round().to(at::kByte).permute({0, 2, 3, 1}).contiguous();
    at::Tensor labels = s.y.to(at::kInt).contiguous();
    data::DatasetInfo info;
    info.size = kFile;
    info.height = info.width = 8;
    info.channels = 1;
    info.num_classes = 10;
    info.source = "synthetic";
    for (int i = 0; i < 10; ++i) info.class_names.push_back("c" + std::to_string(i));
    data::write_dataset(path, info, bytes.data_ptr<uint8_t>(), labels.data_ptr<int32_t>());
    x = bytes.permute({0, 3, 1, 2}).to(at::kFloat).div(255.0);
    y = s.y;
  }
  data::Loader loader(int64_t rank, int64_t world) const {
    return data::Loader(path, data::LoaderOptions()
                                  .batch_size(kRankBatch * world)
                                  .rank(rank)
                                  .world_size(world)
                                  .shuffle(false)
                                  .drop_last(false)
                                  .limit(kN));
  }
};

RobustnessOptions small_options(Norm norm, double eps) {
  return RobustnessOptions()
      .norm(norm)
      .eps(eps)
      .attacks({AttackKind::kApgdCe, AttackKind::kApgdT, AttackKind::kFabT, AttackKind::kSquare,
                AttackKind::kPgd})
      .apgd_iterations(10)
      .fab_iterations(5)
      .target_classes(3)
      .square_queries(50)
      .pgd_steps(5)
      .seed(kSeed);
}

std::shared_ptr<models::Model> bounded_model() {
  auto model = small_lmt_mnist();
  train_briefly(*model, synthetic_images(4000, 3), 300, /*lmt_c=*/0.1);
  return model;
}

TEST(EvaluateRobustness, OrderedCountsAndCertifiedBelowAttackedOnTheFirstNPoints) {
  File file;
  auto model = bounded_model();
  auto loader = file.loader(0, 1);
  const auto r = evaluate_robustness(*model, loader, small_options(Norm::kL2, kEps), nullptr);
  ASSERT_EQ(r.count, kN);  // the limit, not the file's 50
  ASSERT_EQ(r.attack_correct.size(), 5u);
  {
    at::NoGradGuard g;
    EvalMode eval(*model);
    const at::Tensor x = file.x.narrow(0, 0, kN), y = file.y.narrow(0, 0, kN);
    EXPECT_EQ(r.clean_correct, model->forward(x).argmax(1).eq(y).sum().item<int64_t>());
  }
  EXPECT_GT(r.clean_correct, kN / 2) << "the model did not learn";
  EXPECT_LT(r.worst_case_correct, r.clean_correct) << "eps too small to break any point";
  // Each attack runs on what the one before left: exact bookkeeping, no tolerance.
  int64_t survivors = r.clean_correct;
  for (size_t a = 0; a < r.attacks.size(); ++a) {
    EXPECT_EQ(r.attacked[a], survivors) << to_string(r.attacks[a]);
    EXPECT_LE(r.flipped[a], r.attacked[a]) << to_string(r.attacks[a]);
    survivors -= r.flipped[a];
    EXPECT_EQ(r.attack_correct[a], survivors) << to_string(r.attacks[a]);
    EXPECT_GE(r.seconds[a], 0.0) << to_string(r.attacks[a]);
  }
  EXPECT_EQ(r.worst_case_correct, survivors);
  // Exact, no tolerance: a point certified with the sound bound has no adversarial example
  // within eps, so an attack that breaks one reveals an unsound bound.
  ASSERT_TRUE(r.certified_evaluated);
  EXPECT_TRUE(std::isfinite(r.sound_bound) && r.sound_bound > 0) << r.sound_bound;
  EXPECT_GT(r.certified, 0) << "nothing certified: the comparison below means nothing";
  EXPECT_LE(r.certified, r.worst_case_correct);
  EXPECT_EQ(r.certified_broken, 0);
  EXPECT_FALSE(r.certificate_violated());
  EXPECT_FALSE(r.outputs_look_like_probabilities());

  // Linf has no certificate.
  auto again = file.loader(0, 1);
  const auto linf = evaluate_robustness(*model, again, small_options(Norm::kLinf, 0.05), nullptr);
  EXPECT_FALSE(linf.certified_evaluated);
  EXPECT_EQ(linf.certified, 0);
}

TEST(EvaluateRobustness, OneProcessEqualsTwoHalvesSummedAndTheDirectAttacks) {
  File file;
  auto model = bounded_model();
  const auto options = small_options(Norm::kL2, kEps);
  auto whole_loader = file.loader(0, 1);
  const auto whole = evaluate_robustness(*model, whole_loader, options, nullptr);
  RobustnessResult sum;
  sum.attack_correct.assign(whole.attacks.size(), 0);
  sum.attacked.assign(whole.attacks.size(), 0);
  sum.flipped.assign(whole.attacks.size(), 0);
  for (int64_t rank = 0; rank < 2; ++rank) {
    auto loader = file.loader(rank, 2);
    const auto half = evaluate_robustness(*model, loader, options, nullptr);
    EXPECT_EQ(half.count, kN / 2) << "rank " << rank;
    sum.count += half.count;
    sum.clean_correct += half.clean_correct;
    for (size_t a = 0; a < half.attacks.size(); ++a) {
      sum.attack_correct[a] += half.attack_correct[a];
      sum.attacked[a] += half.attacked[a];
      sum.flipped[a] += half.flipped[a];
    }
    sum.worst_case_correct += half.worst_case_correct;
    sum.square_only_broken += half.square_only_broken;
    sum.certified += half.certified;
    sum.certified_broken += half.certified_broken;
    EXPECT_EQ(half.sound_bound, whole.sound_bound);
  }
  EXPECT_EQ(sum.count, whole.count);
  EXPECT_EQ(sum.clean_correct, whole.clean_correct);
  EXPECT_EQ(sum.attack_correct, whole.attack_correct);
  EXPECT_EQ(sum.attacked, whole.attacked);
  EXPECT_EQ(sum.flipped, whole.flipped);
  EXPECT_EQ(sum.worst_case_correct, whole.worst_case_correct);
  EXPECT_EQ(sum.square_only_broken, whole.square_only_broken);
  EXPECT_EQ(sum.certified, whole.certified);
  EXPECT_EQ(sum.certified_broken, whole.certified_broken);

  // The counts are those of the attacks called in order on each batch's survivors, each with
  // seed * 1000003 + the batch's first index, a point counting as broken when it is
  // misclassified on the returned example.
  EvalMode eval(*model);
  const Classifier f = classifier_of(*model);
  std::vector<int64_t> correct_after(options.attacks().size(), 0);
  for (int64_t start = 0; start < kN; start += kRankBatch) {
    const at::Tensor x = file.x.narrow(0, start, kRankBatch),
                     y = file.y.narrow(0, start, kRankBatch);
    const uint64_t seed = kSeed * 1000003ull + uint64_t(start);
    at::Tensor robust = correct_mask(f, x, y);
    for (size_t a = 0; a < options.attacks().size(); ++a) {
      const at::Tensor idx = robust.nonzero().flatten();
      const at::Tensor xs = x.index_select(0, idx), ys = y.index_select(0, idx);
      AttackResult r;
      switch (options.attacks()[a]) {
        case AttackKind::kApgdCe:
          r = apgd_ce(f, xs, ys, ApgdOptions().norm(Norm::kL2).eps(kEps).iterations(10).seed(seed));
          break;
        case AttackKind::kApgdT:
          r = apgd_t(f, xs, ys,
                     ApgdOptions().norm(Norm::kL2).eps(kEps).iterations(10).target_classes(3).seed(
                         seed));
          break;
        case AttackKind::kFabT:
          r = fab_t(f, xs, ys,
                    FabOptions().norm(Norm::kL2).eps(kEps).iterations(5).target_classes(3).seed(
                        seed));
          break;
        case AttackKind::kSquare:
          r = square(f, xs, ys, SquareOptions().norm(Norm::kL2).eps(kEps).queries(50).seed(seed));
          break;
        case AttackKind::kPgd:
          r = pgd(f, xs, ys, PgdOptions().norm(Norm::kL2).eps(kEps).steps(5).seed(seed));
          break;
      }
      at::NoGradGuard g;
      const at::Tensor broken =
          r.still_correct.logical_not().logical_and(f(r.adversarial).argmax(1).ne(ys));
      robust.index_fill_(0, idx.index({broken}), false);
      correct_after[a] += robust.sum().item<int64_t>();
    }
  }
  EXPECT_EQ(whole.attack_correct, correct_after);
}

// An attack that breaks every point leaves nothing to the attacks after it: they attack no
// point and take no time.
TEST(EvaluateRobustness, LaterAttacksRunOnlyOnTheSurvivors) {
  File file;
  auto model = bounded_model();
  auto loader = file.loader(0, 1);
  // Linf eps 1 is the whole box: APGD-CE can move any image to another class's prototype.
  const auto options = small_options(Norm::kLinf, 1.0).attacks(
      {AttackKind::kApgdCe, AttackKind::kFabT, AttackKind::kSquare});
  const auto r = evaluate_robustness(*model, loader, options, nullptr);
  ASSERT_GT(r.clean_correct, 0);
  EXPECT_EQ(r.attacked[0], r.clean_correct);
  ASSERT_EQ(r.flipped[0], r.attacked[0]) << "APGD-CE left points in the whole box: no test";
  for (size_t a = 1; a < 3; ++a) {
    EXPECT_EQ(r.attacked[a], 0) << to_string(r.attacks[a]);
    EXPECT_EQ(r.flipped[a], 0) << to_string(r.attacks[a]);
    EXPECT_EQ(r.seconds[a], 0.0) << to_string(r.attacks[a]);
    EXPECT_EQ(r.attack_correct[a], 0) << to_string(r.attacks[a]);
  }
  EXPECT_EQ(r.worst_case_correct, 0);
  EXPECT_EQ(r.square_only_broken, 0);
}

TEST(EvaluateRobustness, TheStandardSuiteIsAutoAttacksAndDifferencesAreNamed) {
  const RobustnessOptions standard;
  EXPECT_EQ(standard.attacks(), standard_suite());
  EXPECT_EQ(standard_suite_difference(standard), "");
  EXPECT_EQ(standard_suite_difference(RobustnessOptions().square_queries(100)),
            "square_queries: 100 (standard: 5000)");
  EXPECT_EQ(standard_suite_difference(RobustnessOptions().fab_iterations(5)),
            "fab_iterations: 5 (standard: 100)");
  EXPECT_EQ(standard_suite_difference(
                RobustnessOptions().attacks({AttackKind::kApgdCe, AttackKind::kSquare})),
            "attacks: apgd-ce,square (standard: apgd-ce,apgd-t,fab-t,square)");
}

TEST(EvaluateRobustness, RefusesBadOptionsNamingThem) {
  File file;
  auto model = small_lmt_mnist();
  auto loader = file.loader(0, 1);
  auto message = [&](const RobustnessOptions& o) {
    try {
      evaluate_robustness(*model, loader, o, nullptr);
    } catch (const AttackError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message(small_options(Norm::kL2, 0.0)).rfind("eps:", 0), 0u);
  EXPECT_EQ(message(small_options(Norm::kL2, kEps).attacks({})).rfind("attacks:", 0), 0u);
  EXPECT_EQ(message(small_options(Norm::kL2, kEps).pgd_steps(0)).rfind("pgd_steps:", 0), 0u);
  for (AttackKind k : {AttackKind::kApgdCe, AttackKind::kApgdT, AttackKind::kFabT,
                       AttackKind::kSquare, AttackKind::kPgd})
    EXPECT_EQ(parse_attack_kind(to_string(k)), k);
  EXPECT_EQ(message(small_options(Norm::kL2, kEps).fab_iterations(0)).rfind("fab_iterations:", 0),
            0u);
  EXPECT_THROW(parse_attack_kind("fab"), AttackError);  // untargeted FAB: not implemented
  EXPECT_THROW(parse_attack_kind("apgd"), AttackError);
}

}  // namespace
}  // namespace lmt::attack
