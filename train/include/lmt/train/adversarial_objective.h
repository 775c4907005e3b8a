// lmt::train: the empirical-robustness objectives (docs/methods.md#adversarial-training): PGD
// adversarial training, TRADES, the hypersphere-embedding margin, linear eps warm-up, and the
// batch augmentations.
#pragma once

#include <memory>

#include <ATen/ATen.h>

#include <lmt/train/objective.h>

namespace lmt::train {

// The objective for `options` when it is one of these, else nullptr (make_objective then builds
// ce/lmt):
//  - loss pgd-at: CE on PGD examples (adv_norm, adv_eps, attack_steps, attack_step_size) generated
//    with the model in EVAL mode (batch-norm statistics are not updated by the attack's forward
//    passes and the attacked function is the one evaluated), then a train-mode forward on them;
//  - loss trades: CE(f(x), y) + beta KL(softmax f(x) || softmax f(x')), x' maximizing that KL by
//    PGD from x + 0.001 N(0,1), also generated in eval mode;
//  - loss ce with the HE head or any augmentation.
// With the model option head=he the label term is CE(s (cos theta - m onehot(y)), y), m =
// he_margin; the attack itself sees the plain logits s cos theta (no margin). eps ramps linearly
// from 0 over eps_warmup_epochs. Throws TrainError for combinations it cannot honour (lmt with
// augmentations or the HE head).
std::unique_ptr<Objective> make_robust_objective(const TrainOptions& options);

// eps * min(1, epoch_progress / warmup_epochs) (eps when warmup <= 0).
double eps_at(double eps, double warmup_epochs, double epoch_progress);

// Training logits with the HE margin: logits - s * m * onehot(labels).
at::Tensor hypersphere_margin_logits(const at::Tensor& logits, const at::Tensor& labels,
                                     double scale, double margin);

}  // namespace lmt::train
