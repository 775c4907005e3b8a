// lmt::train: the optimizer a run's options describe: SGD (momentum), Adam (weight decay as L2 in
// the gradient, torch.optim.Adam's), AdamW (decoupled weight decay, Loshchilov & Hutter), with
// biases and 1-d parameters (norm scales) optionally excluded from weight decay as timm does
// (no_decay_bias_norm: a parameter named "*.bias" or with ndim <= 1).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>

#include <lmt/train/options.h>

namespace lmt::train {

// True for the parameters no_decay_bias_norm keeps out of weight decay.
bool is_bias_or_norm(const std::string& name, const at::Tensor& parameter);

// The optimizer over `parameters` (in their order: the decayed group first, then the others);
// lr, momentum and weight decay from `options`.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const TrainOptions& options, const std::vector<std::pair<std::string, at::Tensor>>& parameters);

// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace lmt::train
