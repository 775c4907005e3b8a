// lmt::train: evaluation over a dataset split, data-parallel: each rank runs its shard without
// gradients and the counts are summed across ranks.
#pragma once

#include <functional>
#include <memory>

#include <ATen/ATen.h>
#include <lmt/data/loader.h>
#include <lmt/dist/communicator.h>
#include <lmt/models/model.h>

namespace lmt::train {

struct EvalResult {
  int64_t count = 0;
  int64_t correct = 0;
  double loss_sum = 0.0;
  double accuracy() const { return count ? double(correct) / double(count) : 0.0; }
  double mean_loss() const { return count ? loss_sum / double(count) : 0.0; }
};

// Called with every batch of this rank's shard and the model's logits on it.
using BatchVisitor = std::function<void(const data::Batch& batch, const at::Tensor& logits)>;

// Runs one pass of `loader` (epoch 0; use an evaluation loader: no shuffle, no drop_last) in eval
// mode and no-grad; returns the global counts (summed over `comm` when given).
EvalResult evaluate(models::Model& model, data::Loader& loader, dist::Communicator* comm,
                    const BatchVisitor& visit = nullptr);

}  // namespace lmt::train
