// lmt::data: SplitMix64, the epoch permutation (Fisher-Yates) and the global-batch shard plan.
// No std::shuffle or std distributions: their outputs differ between standard libraries.
#include <lmt/data/sampler.h>

#include <numeric>
#include <string>

namespace lmt::data {

uint64_t splitmix64_next(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t mix_key(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t state = seed;
  uint64_t h = splitmix64_next(state);
  state = h ^ a;
  h = splitmix64_next(state);
  state = h ^ b;
  return splitmix64_next(state);
}

uint64_t uniform_below(uint64_t& state, uint64_t bound) {
  // Reject the lowest (2^64 mod bound) outputs so every residue is equally likely.
  const uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const uint64_t r = splitmix64_next(state);
    if (r >= threshold) return r % bound;
  }
}

std::vector<int64_t> epoch_permutation(uint64_t seed, int64_t epoch, int64_t n, bool shuffle) {
  if (n < 0) throw DataError("epoch_permutation: n = " + std::to_string(n) + " is negative");
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!shuffle) return order;
  uint64_t state = mix_key(seed, 0x65706f6368ULL /* "epoch" */, static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(uniform_below(state, static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

int64_t ShardPlan::steps_per_epoch() const {
  return drop_last ? num_samples / global_batch_size
                   : (num_samples + global_batch_size - 1) / global_batch_size;
}

int64_t ShardPlan::global_samples(int64_t step) const {
  if (step < 0 || step >= steps_per_epoch()) return 0;
  return std::min(global_batch_size, num_samples - step * global_batch_size);
}

ShardPlan::Range ShardPlan::positions(int64_t step, int64_t rank) const {
  if (rank < 0 || rank >= world_size)
    throw DataError("rank " + std::to_string(rank) + " is outside world size " +
                    std::to_string(world_size));
  if (step < 0 || step >= steps_per_epoch())
    throw DataError("step " + std::to_string(step) + " is outside the epoch's " +
                    std::to_string(steps_per_epoch()) + " steps");
  const int64_t base = step * global_batch_size;
  const int64_t in_step = global_samples(step);
  if (in_step == global_batch_size) {
    const int64_t b = per_rank_batch_size();
    return {base + rank * b, base + (rank + 1) * b};
  }
  // The kept tail: split R as evenly as the integers allow.
  return {base + rank * in_step / world_size, base + (rank + 1) * in_step / world_size};
}

ShardPlan make_shard_plan(int64_t num_samples, int64_t global_batch_size, int64_t world_size,
                          bool drop_last) {
  if (world_size < 1)
    throw DataError("world size " + std::to_string(world_size) + " must be at least 1");
  if (global_batch_size < 1)
    throw DataError("--batch-size " + std::to_string(global_batch_size) + " must be positive");
  if (global_batch_size % world_size != 0)
    throw DataError("--batch-size " + std::to_string(global_batch_size) +
                    " (the global batch) must be divisible by the world size " +
                    std::to_string(world_size));
  if (num_samples < 0)
    throw DataError("dataset size " + std::to_string(num_samples) + " is negative");
  return ShardPlan{num_samples, global_batch_size, world_size, drop_last};
}

std::vector<int64_t> shard_indices(const ShardPlan& plan, const std::vector<int64_t>& permutation,
                                   int64_t step, int64_t rank) {
  if (static_cast<int64_t>(permutation.size()) != plan.num_samples)
    throw DataError("permutation has " + std::to_string(permutation.size()) +
                    " entries, the plan " + std::to_string(plan.num_samples));
  const ShardPlan::Range r = plan.positions(step, rank);
  return std::vector<int64_t>(permutation.begin() + r.begin, permutation.begin() + r.end);
}

std::vector<int64_t> shard_indices(const ShardPlan& plan, uint64_t seed, int64_t epoch,
                                   int64_t step, int64_t rank, bool shuffle) {
  return shard_indices(plan, epoch_permutation(seed, epoch, plan.num_samples, shuffle), step, rank);
}

}  // namespace lmt::data
