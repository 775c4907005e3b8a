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
  // {correct, loss sum} on the device, read once at the end: the same double additions as
  // reading each batch's (exact counts; float -> double sums in the same order).
  at::Tensor counts = at::zeros({2}, at::TensorOptions(at::kDouble).device(device));
  while (auto batch = loader.next()) {
    const at::Tensor labels = to_device(batch->labels, device);
    at::Tensor logits = model.forward(to_device(batch->images, device));
    local.count += batch->labels.size(0);
    const at::Tensor loss = torch::nn::functional::cross_entropy(
        logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    counts.add_(
        at::stack({logits.argmax(1).eq(labels).sum().to(at::kDouble), loss.to(at::kDouble)}));
    if (visit) visit(*batch, logits.to(at::kCPU));  // visitors read host tensors
  }
  const std::vector<double> read = read_to_host(counts);
  local.correct = int64_t(read[0]);
  local.loss_sum = read[1];
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
