// Tests of the epoch order and the global-batch shard plan (pure functions).
#include <algorithm>
#include <cmath>
#include <numeric>

#include <lmt/data/sampler.h>

#include "test_util.h"

namespace lmt::data {
namespace {

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

TEST(SplitMix64, MatchesTheReferenceOutputs) {
  // First outputs of Vigna's splitmix64.c for seed 1234567 (the published test vector).
  uint64_t state = 1234567;
  EXPECT_EQ(splitmix64_next(state), 6457827717110365317ULL);
  EXPECT_EQ(splitmix64_next(state), 3203168211198807973ULL);
  EXPECT_EQ(splitmix64_next(state), 9817491932198370423ULL);
}

TEST(EpochPermutation, IsAPermutation) {
  for (int64_t n : {0, 1, 2, 17, 1000}) {
    std::vector<int64_t> p = epoch_permutation(7, 3, n);
    std::sort(p.begin(), p.end());
    EXPECT_EQ(p, iota(n)) << "n = " << n;
  }
}

TEST(EpochPermutation, IsAFunctionOfSeedAndEpochOnly) {
  EXPECT_EQ(epoch_permutation(42, 5, 500), epoch_permutation(42, 5, 500));
  EXPECT_NE(epoch_permutation(42, 5, 500), epoch_permutation(42, 6, 500));
  EXPECT_NE(epoch_permutation(42, 5, 500), epoch_permutation(43, 5, 500));
}

TEST(EpochPermutation, NoShuffleIsTheIdentity) {
  EXPECT_EQ(epoch_permutation(42, 5, 50, false), iota(50));
}

TEST(EpochPermutation, FirstPositionIsRoughlyUniform) {
  // Over 4000 epochs each of 8 items lands first about 500 times (bias check, 6 sigma bound).
  std::vector<int> first(8, 0);
  for (int64_t e = 0; e < 4000; ++e) ++first[epoch_permutation(1, e, 8)[0]];
  for (int count : first) EXPECT_NEAR(count, 500, 6 * std::sqrt(4000 * (1.0 / 8) * (7.0 / 8)));
}

TEST(ShardPlan, EverySampleExactlyOnceAcrossOneToFourShards) {
  const int64_t n = 103, batch = 12;
  const std::vector<int64_t> perm = epoch_permutation(9, 0, n);
  for (int64_t world = 1; world <= 4; ++world) {
    const ShardPlan plan = make_shard_plan(n, batch, world, /*drop_last=*/false);
    EXPECT_EQ(plan.steps_per_epoch(), 9);
    std::vector<int64_t> seen;
    for (int64_t step = 0; step < plan.steps_per_epoch(); ++step)
      for (int64_t rank = 0; rank < world; ++rank) {
        const auto part = shard_indices(plan, perm, step, rank);
        seen.insert(seen.end(), part.begin(), part.end());
      }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, iota(n)) << "world size " << world;
  }
}

TEST(ShardPlan, RankSlicesConcatenateToTheGlobalBatch) {
  // DDP semantics: step k is perm[k*B, (k+1)*B) whatever the world size, tail included.
  const int64_t n = 50, batch = 12;
  const std::vector<int64_t> perm = epoch_permutation(3, 1, n);
  for (int64_t world : {1, 2, 3, 4}) {
    const ShardPlan plan = make_shard_plan(n, batch, world, false);
    for (int64_t step = 0; step < plan.steps_per_epoch(); ++step) {
      std::vector<int64_t> global;
      for (int64_t rank = 0; rank < world; ++rank) {
        const auto part = shard_indices(plan, perm, step, rank);
        global.insert(global.end(), part.begin(), part.end());
      }
      const int64_t end = std::min(n, (step + 1) * batch);
      EXPECT_EQ(global, std::vector<int64_t>(perm.begin() + step * batch, perm.begin() + end));
      EXPECT_EQ(plan.global_samples(step), end - step * batch);
    }
  }
}

TEST(ShardPlan, DropLastGivesEveryRankTheSameFullSteps) {
  const int64_t n = 103, batch = 12;
  for (int64_t world : {1, 2, 3, 4}) {
    const ShardPlan plan = make_shard_plan(n, batch, world, /*drop_last=*/true);
    EXPECT_EQ(plan.steps_per_epoch(), n / batch);
    for (int64_t step = 0; step < plan.steps_per_epoch(); ++step)
      for (int64_t rank = 0; rank < world; ++rank)
        EXPECT_EQ(plan.positions(step, rank).size(), batch / world);
  }
}

TEST(ShardPlan, TailIsSplitAsEvenlyAsPossible) {
  // R = 7 remaining samples over 4 ranks: floor(r*7/4) boundaries 0,1,3,5,7.
  const ShardPlan plan = make_shard_plan(31, 12, 4, false);
  const int64_t sizes[] = {1, 2, 2, 2};
  for (int64_t rank = 0; rank < 4; ++rank) EXPECT_EQ(plan.positions(2, rank).size(), sizes[rank]);
}

TEST(ShardPlan, SeedEpochOverloadEqualsThePermutationSlice) {
  const ShardPlan plan = make_shard_plan(40, 8, 2, true);
  const std::vector<int64_t> perm = epoch_permutation(5, 2, 40);
  EXPECT_EQ(shard_indices(plan, 5, 2, 3, 1),
            std::vector<int64_t>(perm.begin() + 3 * 8 + 4, perm.begin() + 4 * 8));
}

TEST(ShardPlan, BatchSizeNotDivisibleByWorldSizeNamesTheFlag) {
  try {
    make_shard_plan(100, 10, 3, true);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("--batch-size 10"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lmt::data
