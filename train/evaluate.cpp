// Data-parallel evaluation: forward passes over the rank's shard, counts reduced across ranks.
#include <lmt/train/evaluate.h>

#include <ATen/core/grad_mode.h>
#include <torch/nn/functional/loss.h>

#include <lmt/train/device.h>

namespace lmt::train {

EvalResult evaluate(models::Model& model, data::Loader& loader, dist::Communicator* comm,
                    const BatchVisitor& visit) {
  const bool was_training = model.is_training();
  model.eval();
  at::NoGradGuard no_grad;
  EvalResult local;
  loader.start_epoch(0);
  const at::Device device = module_device(model);  // the batches go where the model is
  while (auto batch = loader.next()) {
    const at::Tensor labels = to_device(batch->labels, device);
    at::Tensor logits = model.forward(to_device(batch->images, device));
    local.count += batch->labels.size(0);
    local.correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
    local.loss_sum += torch::nn::functional::cross_entropy(
                          logits, labels,
                          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                          .item<double>();
    if (visit) visit(*batch, logits.to(at::kCPU));  // visitors read host tensors
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
