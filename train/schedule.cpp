// Learning-rate schedules: warm-up, constant, cosine, step.
#include <lmt/train/schedule.h>

#include <algorithm>
#include <cmath>

namespace lmt::train {

double learning_rate_at(const TrainOptions& options, int64_t step, int64_t total_steps,
                        int64_t steps_per_epoch) {
  const double epoch = double(step) / double(std::max<int64_t>(steps_per_epoch, 1));
  double factor = 1.0;
  if (options.warmup_epochs() > 0 && epoch < options.warmup_epochs())
    factor = (epoch + 1.0 / std::max<int64_t>(steps_per_epoch, 1)) / options.warmup_epochs();
  if (options.schedule() == Schedule::kCosine) {
    const double progress = double(step) / double(std::max<int64_t>(total_steps, 1));
    factor *= 0.5 * (1.0 + std::cos(M_PI * std::min(progress, 1.0)));
  } else if (options.schedule() == Schedule::kStep) {
    for (int64_t boundary : options.lr_steps())
      if (epoch >= double(boundary)) factor *= options.lr_gamma();
  }
  return options.lr() * factor;
}

}  // namespace lmt::train
