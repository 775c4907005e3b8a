// Bucketed gradient averaging across ranks (as PyTorch DDP's reducer): flat buckets in reverse
// registration order, each all-reduced as soon as its last gradient is produced in backward.
#pragma once

#include <lmt/dist/communicator.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/arg.h>

namespace lmt::dist {

struct GradSyncOptions {
  TORCH_ARG(size_t, first_bucket_bytes) = size_t{1} << 20;
  TORCH_ARG(size_t, bucket_cap_bytes) = size_t{25} << 20;
  TORCH_ARG(bool, overlap) = true;
};

// One flat bucket: the parameters (indices into the constructor's list) in bucket order and
// where each one's gradient sits in the flat buffer (element offsets).
struct GradBucket {
  std::vector<size_t> params;
  std::vector<int64_t> offsets;
  int64_t numel = 0;
  size_t bytes = 0;
  at::ScalarType dtype = at::kFloat;
};

// Per step: optimizer.zero_grad(); loss.backward(); grad_sync.finish(); optimizer.step();
// One backward per finish(). Parameters that got no gradient in a step count as zeros.
// In a world of one nothing is communicated and finish() only defines missing gradients.
class GradSync {
 public:
  GradSync(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> params,
           GradSyncOptions options = GradSyncOptions());
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // Launches the buckets not yet started, waits for all, and writes the mean gradient into
  // every parameter's grad(). Throws DistError if a gradient arrived twice (two backwards).
  void finish();
  // Gradient accumulation (DDP's no_sync): while on, a backward only adds into grad() (no bucket
  // is launched); turn it off before the last micro-batch's backward, whose arrivals launch the
  // buckets of the accumulated sums, then finish(). Communication: one all-reduce per bucket per
  // optimizer step, whatever the number of micro-batches.
  void accumulate_only(bool on);
  const std::vector<GradBucket>& buckets() const;
  const GradSyncOptions& options() const;

  struct State;  // shared with the autograd hooks

 private:
  std::shared_ptr<State> state_;
};

// The bucket layout GradSync uses (exposed for tests and benchmarks): parameters in reverse
// order, a new bucket when the dtype changes or the next gradient would exceed the cap (the
// first bucket's cap is first_bytes, or cap_bytes if smaller); a gradient larger than a cap gets
// a bucket of its own.
std::vector<GradBucket> plan_buckets(const std::vector<at::Tensor>& params, size_t first_bytes,
                                     size_t cap_bytes);

}  // namespace lmt::dist
