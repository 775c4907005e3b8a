// evaluate_robustness over a real HDF5 file: the first N points only, the ordering worst case <=
// every attack <= clean, certified <= worst case for a bounded model, one process equal to two
// halves summed, and the counts against the attacks called directly with the per-batch seed.
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
      .attacks({AttackKind::kApgdCe, AttackKind::kApgdT, AttackKind::kSquare, AttackKind::kPgd})
      .apgd_iterations(10)
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
  ASSERT_EQ(r.attack_correct.size(), 4u);
  {
    at::NoGradGuard g;
    EvalMode eval(*model);
    const at::Tensor x = file.x.narrow(0, 0, kN), y = file.y.narrow(0, 0, kN);
    EXPECT_EQ(r.clean_correct, model->forward(x).argmax(1).eq(y).sum().item<int64_t>());
  }
  EXPECT_GT(r.clean_correct, kN / 2) << "the model did not learn";
  EXPECT_LT(r.worst_case_correct, r.clean_correct) << "eps too small to break any point";
  for (size_t a = 0; a < r.attacks.size(); ++a) {
    EXPECT_LE(r.worst_case_correct, r.attack_correct[a]) << to_string(r.attacks[a]);
    EXPECT_LE(r.attack_correct[a], r.clean_correct) << to_string(r.attacks[a]);
  }
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
  for (int64_t rank = 0; rank < 2; ++rank) {
    auto loader = file.loader(rank, 2);
    const auto half = evaluate_robustness(*model, loader, options, nullptr);
    EXPECT_EQ(half.count, kN / 2) << "rank " << rank;
    sum.count += half.count;
    sum.clean_correct += half.clean_correct;
    for (size_t a = 0; a < half.attacks.size(); ++a)
      sum.attack_correct[a] += half.attack_correct[a];
    sum.worst_case_correct += half.worst_case_correct;
    sum.square_only_broken += half.square_only_broken;
    sum.certified += half.certified;
    sum.certified_broken += half.certified_broken;
    EXPECT_EQ(half.sound_bound, whole.sound_bound);
  }
  EXPECT_EQ(sum.count, whole.count);
  EXPECT_EQ(sum.clean_correct, whole.clean_correct);
  EXPECT_EQ(sum.attack_correct, whole.attack_correct);
  EXPECT_EQ(sum.worst_case_correct, whole.worst_case_correct);
  EXPECT_EQ(sum.square_only_broken, whole.square_only_broken);
  EXPECT_EQ(sum.certified, whole.certified);
  EXPECT_EQ(sum.certified_broken, whole.certified_broken);

  // The counts are those of the attacks called on each batch with seed * 1000003 + its first
  // index (what lmt attack has always used), so results stay those of earlier versions.
  EvalMode eval(*model);
  const Classifier f = classifier_of(*model);
  int64_t pgd_correct = 0, square_correct = 0;
  for (int64_t start = 0; start < kN; start += kRankBatch) {
    const at::Tensor x = file.x.narrow(0, start, kRankBatch),
                     y = file.y.narrow(0, start, kRankBatch);
    const auto p =
        PgdOptions().norm(Norm::kL2).eps(kEps).steps(5).seed(kSeed * 1000003ull + uint64_t(start));
    pgd_correct += pgd(f, x, y, p).still_correct.sum().item<int64_t>();
    const auto s = SquareOptions().norm(Norm::kL2).eps(kEps).queries(50).seed(p.seed());
    square_correct += square(f, x, y, s).still_correct.sum().item<int64_t>();
  }
  EXPECT_EQ(whole.attack_correct[3], pgd_correct);
  EXPECT_EQ(whole.attack_correct[2], square_correct);
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
  for (AttackKind k :
       {AttackKind::kApgdCe, AttackKind::kApgdT, AttackKind::kSquare, AttackKind::kPgd})
    EXPECT_EQ(parse_attack_kind(to_string(k)), k);
  EXPECT_THROW(parse_attack_kind("fab-t"), AttackError);
  EXPECT_THROW(parse_attack_kind("apgd"), AttackError);
}

}  // namespace
}  // namespace lmt::attack
