// lmt::train: training objectives. Each turns a batch into a scalar loss (mean over the batch)
// plus the logits it saw, so the loop can count accuracy without a second forward pass.
#pragma once

#include <memory>
#include <string>

#include <ATen/ATen.h>
#include <lmt/models/model.h>
#include <lmt/train/options.h>

namespace lmt::train {

struct ObjectiveOutput {
  at::Tensor loss;    // scalar, differentiable
  at::Tensor logits;  // [b, classes] on the clean inputs (for train accuracy)
  at::Tensor bound;   // the Lipschitz bound used (undefined when the objective needs none)
};

class Objective {
 public:
  virtual ~Objective() = default;
  // epoch_progress: fractional epochs done (for warm-ups of c or eps).
  virtual ObjectiveOutput compute(models::Model& model, const at::Tensor& images,
                                  const at::Tensor& labels, double epoch_progress) = 0;
  // True when the objective uses the Lipschitz bound (the loop then advances power iteration).
  virtual bool needs_bound() const { return false; }
};

// Cross-entropy ("ce") or the Lipschitz-margin loss ("lmt", global or pairwise head).
std::unique_ptr<Objective> make_objective(const TrainOptions& options);

}  // namespace lmt::train
