// Data-parallel evaluation: forward passes over the rank's shard, counts reduced across ranks.
#include <lmt/train/evaluate.h>

#include <ATen/core/grad_mode.h>
#include <torch/nn/functional/loss.h>

namespace lmt::train {

EvalResult evaluate(models::Model& model, data::Loader& loader, dist::Communicator* comm,
                    const BatchVisitor& visit) {
  const bool was_training = model.is_training();
  model.eval();
  at::NoGradGuard no_grad;
  EvalResult local;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    at::Tensor logits = model.forward(batch->images);
    local.count += batch->labels.size(0);
    local.correct += logits.argmax(1).eq(batch->labels).sum().item<int64_t>();
    local.loss_sum += torch::nn::functional::cross_entropy(
                          logits, batch->labels,
                          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                          .item<double>();
    if (visit) visit(*batch, logits);
  }
  model.train(was_training);
  if (!comm || comm->size() == 1) return local;
  auto sums = dist::all_reduce_doubles(
      *comm, {double(local.count), double(local.correct), local.loss_sum}, dist::ReduceOp::kSum);
  EvalResult global;
  global.count = int64_t(sums[0]);
  global.correct = int64_t(sums[1]);
  global.loss_sum = sums[2];
  return global;
}

}  // namespace lmt::train
