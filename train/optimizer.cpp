// Optimizers with parameter groups for weight decay.
#include <lmt/train/optimizer.h>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

namespace lmt::train {

bool is_bias_or_norm(const std::string& name, const at::Tensor& parameter) {
  const std::string bias = ".bias";
  const bool named_bias =
      name == "bias" || (name.size() >= bias.size() &&
                         name.compare(name.size() - bias.size(), bias.size(), bias) == 0);
  return named_bias || parameter.dim() <= 1;
}

namespace {

// One group with `decay`, one without (when no_decay_bias_norm takes some parameters out).
template <class GroupOptions>
std::vector<torch::optim::OptimizerParamGroup> groups(
    const TrainOptions& o, const std::vector<std::pair<std::string, at::Tensor>>& parameters,
    const GroupOptions& decay) {
  std::vector<at::Tensor> decayed, exempt;
  for (const auto& [name, p] : parameters)
    (o.no_decay_bias_norm() && is_bias_or_norm(name, p) ? exempt : decayed).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> out;
  if (!decayed.empty()) out.emplace_back(decayed, std::make_unique<GroupOptions>(decay));
  if (!exempt.empty()) {
    auto none = std::make_unique<GroupOptions>(decay);
    none->weight_decay(0.0);
    out.emplace_back(exempt, std::move(none));
  }
  return out;
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(
    const TrainOptions& o, const std::vector<std::pair<std::string, at::Tensor>>& parameters) {
  switch (o.optimizer()) {
    case Optimizer::kAdam: {
      const auto decay = torch::optim::AdamOptions(o.lr()).weight_decay(o.weight_decay());
      return std::make_unique<torch::optim::Adam>(groups(o, parameters, decay), decay);
    }
    case Optimizer::kAdamw: {
      const auto decay = torch::optim::AdamWOptions(o.lr()).weight_decay(o.weight_decay());
      return std::make_unique<torch::optim::AdamW>(groups(o, parameters, decay), decay);
    }
    case Optimizer::kSgd:
      break;
  }
  const auto decay =
      torch::optim::SGDOptions(o.lr()).momentum(o.momentum()).weight_decay(o.weight_decay());
  return std::make_unique<torch::optim::SGD>(groups(o, parameters, decay), decay);
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace lmt::train
