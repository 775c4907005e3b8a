// The EMA of the weights: a second model of the same architecture, averaged after each step.
#include <lmt/train/ema.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include <lmt/lipschitz/bounded_module.h>
#include <lmt/train/device.h>
#include <lmt/train/options.h>

namespace lmt::train {

bool is_power_iteration_vector(const std::string& name) {
  const std::string suffix = ".pi_u";
  return name == "pi_u" || (name.size() > suffix.size() &&
                            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0);
}

ModelEma::ModelEma(models::Model& live, double decay, bool warmup)
    : decay_(decay), warmup_(warmup) {
  if (!(decay >= 0 && decay < 1))
    throw TrainError("--ema-decay: must be in [0, 1) (got " + std::to_string(decay) + ")");
  // make_model initializes weights from the default generator (overwritten below): its state is
  // put back after (not held locked: the initialization takes the same lock).
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  at::Tensor state;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    state = generator.get_state();
  }
  model_ = models::make_model(live.config(), /*strict_options=*/false);
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state);
  }
  move_model(*model_, module_device(live));  // the EMA lives where the model trains
  at::NoGradGuard no_grad;
  auto copy = [](auto target, auto source) {
    if (target.size() != source.size())
      throw TrainError("--ema-decay: the EMA copy of the model has another structure");
    for (size_t i = 0; i < target.size(); ++i) {
      auto &t = target[i], &s = source[i];
      if (t.key() != s.key() || t.value().defined() != s.value().defined())
        throw TrainError("--ema-decay: the EMA copy differs from the model at '" + s.key() + "'");
      if (t.value().defined()) t.value().copy_(s.value());
    }
  };
  copy(model_->named_parameters(), live.named_parameters());
  copy(model_->named_buffers(), live.named_buffers());
  model_->eval();  // never trained: batch-norm statistics come from update()
}

double ModelEma::decay_at(int64_t updates) const {
  if (!warmup_) return decay_;
  return std::min(decay_, (1.0 + double(updates)) / (10.0 + double(updates)));
}

void ModelEma::update(models::Model& live, int64_t updates) {
  const double d = decay_at(updates);
  at::NoGradGuard no_grad;
  auto ema_params = model_->parameters(), live_params = live.parameters();
  for (size_t i = 0; i < ema_params.size(); ++i)
    if (ema_params[i].defined()) ema_params[i].mul_(d).add_(live_params[i], 1.0 - d);
  auto ema_buffers = model_->named_buffers(), live_buffers = live.named_buffers();
  for (size_t i = 0; i < ema_buffers.size(); ++i) {
    at::Tensor e = ema_buffers[i].value(), w = live_buffers[i].value();
    if (!e.defined()) continue;
    if (e.is_floating_point() && !is_power_iteration_vector(ema_buffers[i].key()))
      e.mul_(d).add_(w, 1.0 - d);
    else
      e.copy_(w);
  }
}

void ModelEma::refresh_power_iteration(int iterations) {
  lipschitz::power_iteration_step(*model_, iterations);
}

}  // namespace lmt::train
