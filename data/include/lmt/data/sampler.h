// lmt::data: the epoch order and how a global batch is split across ranks (pure, no I/O).
// Every rank computes its own shard from (seed, epoch) alone, without talking to the others.
#pragma once

#include <cstdint>
#include <vector>

#include <lmt/data/error.h>

namespace lmt::data {

// SplitMix64 (Steele, Lea, Flood 2014; Vigna's reference splitmix64.c): advances state, returns
// the next output. Fixed arithmetic, so identical on every platform and standard library.
uint64_t splitmix64_next(uint64_t& state);

// A 64-bit key hashed from a seed and two coordinates (e.g. epoch, position).
uint64_t mix_key(uint64_t seed, uint64_t a, uint64_t b);

// Uniform integer in [0, bound) from the generator, without modulo bias (rejection).
uint64_t uniform_below(uint64_t& state, uint64_t bound);

// The order of the n samples in epoch `epoch`: Fisher-Yates driven by SplitMix64 keyed on
// (seed, epoch). shuffle=false gives 0..n-1.
std::vector<int64_t> epoch_permutation(uint64_t seed, int64_t epoch, int64_t n,
                                       bool shuffle = true);

// DDP semantics: --batch-size B is the global batch; each of the W ranks takes b = B / W
// consecutive positions of each global batch. Global step k covers permutation positions
// [k*B, (k+1)*B); rank r takes [k*B + r*b, k*B + (r+1)*b).
// drop_last=true (training): the incomplete final global batch is dropped, so every rank runs
// the same steps with b samples each. drop_last=false (evaluation): the final step holds the
// R = n - k*B remaining positions, rank r taking [k*B + floor(r*R/W), k*B + floor((r+1)*R/W)),
// so every sample is seen exactly once across ranks (a rank may get 0 samples there).
struct ShardPlan {
  int64_t num_samples = 0;
  int64_t global_batch_size = 1;
  int64_t world_size = 1;
  bool drop_last = true;

  struct Range {
    int64_t begin = 0, end = 0;  // positions in the epoch permutation, [begin, end)
    int64_t size() const { return end - begin; }
  };

  int64_t per_rank_batch_size() const { return global_batch_size / world_size; }
  int64_t steps_per_epoch() const;
  // Samples in global step `step` across all ranks: B, or R for a kept tail.
  int64_t global_samples(int64_t step) const;
  // The permutation positions rank `rank` takes at global step `step`.
  Range positions(int64_t step, int64_t rank) const;
};

// Validates and builds a plan; DataError naming --batch-size if W does not divide B.
ShardPlan make_shard_plan(int64_t num_samples, int64_t global_batch_size, int64_t world_size,
                          bool drop_last);

// The dataset indices of (step, rank) given the epoch's permutation.
std::vector<int64_t> shard_indices(const ShardPlan& plan, const std::vector<int64_t>& permutation,
                                   int64_t step, int64_t rank);
// The same from (seed, epoch): computes the epoch's permutation (O(n); cache it when looping).
std::vector<int64_t> shard_indices(const ShardPlan& plan, uint64_t seed, int64_t epoch,
                                   int64_t step, int64_t rank, bool shuffle = true);

}  // namespace lmt::data
