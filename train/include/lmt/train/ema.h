// lmt::train: an exponential moving average of a model's weights (--ema-decay, timm's
// ModelEmaV2), updated after every optimizer step; evaluation, certification, RUN_DIR/model.pt
// and exports use it. Every rank holds the same weights after a step, so every rank's EMA is
// the same too: it needs no communication.
#pragma once

#include <cstdint>
#include <memory>

#include <lmt/models/model.h>

namespace lmt::train {

class ModelEma {
 public:
  // A copy of `live` (same architecture, every parameter and buffer copied); the default CPU
  // generator is left as it was, so an EMA does not change the training run it watches.
  // `decay` in [0, 1); `warmup`: see decay_at().
  ModelEma(models::Model& live, double decay, bool warmup);

  // The decay of the update after `updates` earlier ones: `decay`, or with warm-up
  // min(decay, (1 + updates) / (10 + updates)) (TensorFlow's ExponentialMovingAverage
  // num_updates), which lets the EMA follow the fast early training: 0.1 at the first update.
  double decay_at(int64_t updates) const;

  // After an optimizer step (the `updates`-th, 0-based), with d = decay_at(updates):
  //   parameters and floating-point buffers (batch-norm running statistics): e = d e + (1 - d) w
  //   integer buffers (num_batches_tracked): copied
  //   power-iteration vectors (*.pi_u): copied (the live ones are the ranks' agreed vectors)
  void update(models::Model& live, int64_t updates);

  // Power iteration on the EMA's own vectors (warm-started from the live model's copies), run
  // before a training-mode bound (BoundMode::kTrain) of the EMA weights is used; the sound bound
  // does not depend on the vectors.
  void refresh_power_iteration(int iterations = kRefreshIterations);
  // 10 steps from the live vectors: the EMA weights are an average of recent live weights, so
  // their top singular vectors are close to the live ones already.
  static constexpr int kRefreshIterations = 10;

  models::Model& model() { return *model_; }
  double decay() const { return decay_; }

 private:
  std::shared_ptr<models::Model> model_;
  double decay_;
  bool warmup_;
};

// "*.pi_u" (or "pi_u"): a power-iteration vector, lmt's own buffer.
bool is_power_iteration_vector(const std::string& name);

}  // namespace lmt::train
