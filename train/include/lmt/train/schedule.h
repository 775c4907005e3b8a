// lmt::train: the learning-rate schedule as a pure function of training progress.
#pragma once

#include <lmt/train/options.h>

namespace lmt::train {

// The learning rate for optimizer step `step` (0-based) of a run of `total_steps` steps with
// `steps_per_epoch` steps per epoch: optional linear warm-up, then constant, cosine to 0, or
// step decay by lr_gamma at each epoch in lr_steps.
double learning_rate_at(const TrainOptions& options, int64_t step, int64_t total_steps,
                        int64_t steps_per_epoch);

}  // namespace lmt::train
