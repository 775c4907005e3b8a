// The figures of the training steps kept on the training device: a step adds its loss, correct
// count and bound to device tensors and checks for divergence there (at::where), and the host
// reads them back only at a step line, an epoch's end or a checkpoint (read_figures: one
// read_to_host), so a GPU step never waits for the device to report its scalars.
#include <cmath>
#include <cstdio>

#include "trainer_state.h"

namespace lmt::train {

// A step whose loss is non-finite, whose logits exceed kExplodedLogit in magnitude, or whose
// bound is non-finite ends the run naming the step. The logits, not the loss, are the measure:
// the LMT loss adds sqrt(2) c L to the logits and L can legitimately start at 1e6 (a batch-norm
// ResNet), while a logit of 1e6 means weights that have blown up (Adam at lr 1e4 gives 1e22 at
// chance accuracy within two steps); a softmax classifier that still learns never needs one.
constexpr double kExplodedLogit = 1e6;

void Trainer::State::reset_device_sums() {
  sums = at::tensor(std::vector<double>{loss_sum, correct, window_loss_sum, window_correct},
                    at::kDouble)
             .to(device);
  first_diverged = at::full({5}, -1.0, at::TensorOptions(at::kDouble).device(device));
}

void Trainer::State::record_step(const ObjectiveOutput& out, const at::Tensor& labels, double lr) {
  at::NoGradGuard no_grad;
  const auto opts = at::TensorOptions(at::kDouble).device(device);
  if (!sums.defined()) reset_device_sums();
  const double n = double(labels.size(0));
  // The host version's figures: the loss read as a double (float -> double is exact), times n,
  // added to the running sums -- the same IEEE double operations, in the same order.
  const at::Tensor loss = out.loss.detach().to(at::kDouble);
  const at::Tensor hits = out.logits.detach().argmax(1).eq(labels).sum().to(at::kDouble);
  const at::Tensor weighted = loss * n;
  sums.add_(at::stack({weighted, hits, weighted, hits}));
  const at::Tensor largest = out.logits.detach().abs().max().to(at::kDouble);
  at::Tensor bad = at::logical_not(at::isfinite(loss)) | at::logical_not(largest <= kExplodedLogit);
  at::Tensor bound = at::full({}, std::nan(""), opts);
  if (out.bound.defined()) {
    bound = step_bound = out.bound.detach().to(at::kDouble);
    bad = bad | at::logical_not(at::isfinite(bound));
  }
  const at::Tensor here = at::stack(
      {at::full({}, double(global_step + 1), opts), loss, largest, bound, at::full({}, lr, opts)});
  first_diverged = at::where(bad & (first_diverged[0] < 0), here, first_diverged);
  ++unread_steps;
}

static std::string divergence_message(const std::vector<double>& d, int64_t read_at) {
  const auto step = (long long)d[0];
  const double loss = d[1], largest = d[2], bound = d[3], lr = d[4];
  char what[128], text[512];
  if (!std::isfinite(loss))
    std::snprintf(what, sizeof what, "the loss is %g", loss);
  else if (!(largest <= kExplodedLogit))
    std::snprintf(what, sizeof what, "the largest logit is %g (above 1e6)", largest);
  else
    std::snprintf(what, sizeof what, "the Lipschitz bound is %g (a weight overflowed)", bound);
  std::snprintf(text, sizeof text,
                "training diverged at step %lld: %s (learning rate %g: lower it, or check the "
                "data and the model options)",
                step, what, lr);
  std::string message = text;
  if (read_at != step)
    message += "; seen at step " + std::to_string(read_at) +
               " (the step figures are read at each --log-every step line)";
  return message;
}

bool Trainer::State::read_figures() {
  if (unread_steps == 0) return false;
  const bool has_bound = step_bound.defined(), has_norm = step_grad_norm.defined();
  std::vector<at::Tensor> parts{sums, first_diverged};
  if (has_bound) parts.push_back(step_bound.reshape({1}));
  if (has_norm) parts.push_back(step_grad_norm.to(at::kDouble).reshape({1}));
  const std::vector<double> v = read_to_host(at::cat(parts));  // the one host read
  loss_sum = v[0];
  correct = v[1];
  window_loss_sum = v[2];
  window_correct = v[3];
  if (has_bound) last_bound = v[9];
  if (has_norm) last_grad_norm = v.back();
  step_bound = step_grad_norm = at::Tensor();
  unread_steps = 0;
  const std::vector<double> diverged(v.begin() + 4, v.begin() + 9);
  if (diverged[0] >= 0) throw TrainError(divergence_message(diverged, global_step));
  return true;
}

}  // namespace lmt::train
