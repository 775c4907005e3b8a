// APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
// diverse parameter-free attacks"), following the reference autopgd_base.py: step size 2*eps,
// momentum 0.75, checkpoints at 22% of the budget then shrinking by 3% (at least 6%), step
// halving with a restart from the best point when fewer than rho of the steps since the last
// checkpoint increased the loss, or when the step was not halved and the best loss did not improve.
#include <lmt/attack/attack.h>

#include <algorithm>
#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include "gradient.h"

namespace lmt::attack {
namespace {

// The reference start: x + eps * (a unit random direction), then the box.
at::Tensor apgd_start(const at::Tensor& x, Norm norm, double eps, at::Generator& gen) {
  return project(x + eps * unit_random_direction(x, norm, gen), x, norm, eps);
}

// One APGD run on points that all start correct; the objective maps logits to per-point losses.
// Returns the best misclassified iterate (else the start) and the still-correct mask.
AttackResult apgd_run(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                      const std::function<at::Tensor(const at::Tensor&)>& objective,
                      const ApgdOptions& o, at::Generator& gen) {
  const int n_iter = o.iterations();
  const int n_iter_2 = std::max(int(0.22 * n_iter), 1);
  const int n_iter_min = std::max(int(0.06 * n_iter), 1);
  const int size_decr = std::max(int(0.03 * n_iter), 1);
  const int64_t n = x.size(0);

  at::Tensor x_adv = apgd_start(x, o.norm(), o.eps(), gen);
  at::Tensor logits, loss;
  auto loss_of = [&](const at::Tensor& v) {
    logits = f(v);
    return objective(logits);
  };
  at::Tensor grad = input_gradient(loss_of, x_adv, &loss);
  at::NoGradGuard no_grad;
  at::Tensor correct = logits.argmax(1).eq(y);
  at::Tensor x_best_adv = x_adv.clone(), x_best = x_adv.clone(), grad_best = grad.clone();
  at::Tensor loss_best = loss.clone();
  at::Tensor loss_steps = at::zeros({n_iter, n}, loss.options());
  at::Tensor step_size = at::full({n}, 2.0 * o.eps(), x.options());
  at::Tensor x_adv_old = x_adv.clone();
  at::Tensor loss_best_last_check = loss_best.clone();
  at::Tensor reduced_last_check = at::ones({n}, at::kBool);
  int k = n_iter_2, counter = 0;

  for (int i = 0; i < n_iter; ++i) {
    at::Tensor momentum_term = x_adv - x_adv_old;
    x_adv_old = x_adv;
    const double a = i > 0 ? o.momentum() : 1.0;
    at::Tensor z = project(x_adv + per_point(step_size, x_adv) * ascent_step(grad, o.norm()), x,
                           o.norm(), o.eps());
    x_adv = project(x_adv + (z - x_adv) * a + momentum_term * (1 - a), x, o.norm(), o.eps());

    grad = input_gradient(loss_of, x_adv, &loss);
    at::Tensor pred_ok = logits.argmax(1).eq(y);
    at::Tensor fooled = pred_ok.logical_not();
    x_best_adv.index_put_({fooled}, x_adv.index({fooled}));
    correct = correct.logical_and(pred_ok);
    loss_steps[i] = loss;
    at::Tensor improved = loss.gt(loss_best);
    x_best.index_put_({improved}, x_adv.index({improved}));
    grad_best.index_put_({improved}, grad.index({improved}));
    loss_best = at::where(improved, loss, loss_best);

    if (++counter == k) {
      // Condition 1: at most rho * k of the last k steps increased the loss.
      at::Tensor increases = at::zeros({n}, loss.options());
      for (int c = 0; c < k; ++c)
        increases += loss_steps[i - c].gt(loss_steps[i - c - 1]).to(loss.scalar_type());
      at::Tensor oscillating = increases.le(k * o.rho());
      // Condition 2: the step was not reduced at the last checkpoint and the best loss is unchanged.
      at::Tensor stalled =
          reduced_last_check.logical_not().logical_and(loss_best_last_check.ge(loss_best));
      at::Tensor reduce = oscillating.logical_or(stalled);
      reduced_last_check = reduce;
      loss_best_last_check = loss_best.clone();
      if (reduce.any().item<bool>()) {
        step_size = at::where(reduce, step_size / 2.0, step_size);
        x_adv.index_put_({reduce}, x_best.index({reduce}));
        grad.index_put_({reduce}, grad_best.index({reduce}));
      }
      k = std::max(k - size_decr, n_iter_min);
      counter = 0;
    }
  }
  return {x_best_adv, correct};
}

// Runs `single` over restarts on the still-correct points and merges the broken ones.
void merge_run(AttackResult& out, const at::Tensor& idx, const AttackResult& run) {
  at::Tensor broken = run.still_correct.logical_not();
  at::Tensor broken_idx = idx.index({broken});
  out.adversarial.index_copy_(0, broken_idx, run.adversarial.index({broken}));
  out.still_correct.index_fill_(0, broken_idx, false);
}

void check(const ApgdOptions& o, const char* name) {
  if (!(o.eps() >= 0)) throw AttackError(std::string(name) + ": eps must be >= 0");
  if (o.iterations() < 1 || o.restarts() < 1)
    throw AttackError(std::string(name) + ": iterations and restarts must be >= 1");
}

}  // namespace

at::Tensor unit_random_direction(const at::Tensor& x, Norm norm, at::Generator& gen) {
  if (norm == Norm::kLinf) {
    at::Tensor t = host_rand(x.sizes(), gen, x.options()) * 2 - 1;
    return t / per_point(t.flatten(1).abs().amax(1) + 1e-12, t);
  }
  at::Tensor t = host_randn(x.sizes(), gen, x.options());
  return t / per_point(t.flatten(1).norm(2, 1) + 1e-12, t);
}

at::Tensor dlr_targeted_loss(const at::Tensor& logits, const at::Tensor& y,
                             const at::Tensor& target) {
  if (logits.size(1) < 4)
    throw AttackError("APGD-T: the targeted DLR loss needs >= 4 classes, the classifier has " +
                      std::to_string(logits.size(1)));
  at::Tensor sorted = std::get<0>(logits.sort(1, /*descending=*/true));
  at::Tensor z_y = logits.gather(1, y.unsqueeze(1)).squeeze(1);
  at::Tensor z_t = logits.gather(1, target.unsqueeze(1)).squeeze(1);
  at::Tensor scale = sorted.select(1, 0) - 0.5 * (sorted.select(1, 2) + sorted.select(1, 3));
  return -(z_y - z_t) / (scale + 1e-12);
}

AttackResult apgd_ce(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                     const ApgdOptions& o) {
  check(o, "APGD-CE");
  at::Generator gen = at::detail::createCPUGenerator(o.seed());
  AttackResult out{x.clone(), correct_mask(f, x, y)};
  for (int r = 0; r < o.restarts(); ++r) {
    at::Tensor idx = out.still_correct.nonzero().flatten();
    if (idx.numel() == 0) break;
    at::Tensor ys = y.index_select(0, idx);
    auto run = apgd_run(
        f, x.index_select(0, idx), ys,
        [&](const at::Tensor& logits) { return cross_entropy_per_point(logits, ys); }, o, gen);
    merge_run(out, idx, run);
    if (r == 0) {  // unbroken points keep a ball point as their example
      at::Tensor kept = run.still_correct;
      out.adversarial.index_copy_(0, idx.index({kept}), run.adversarial.index({kept}));
    }
  }
  return out;
}

AttackResult apgd_t(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                    const ApgdOptions& o) {
  check(o, "APGD-T");
  at::Generator gen = at::detail::createCPUGenerator(o.seed());
  AttackResult out{x.clone(), correct_mask(f, x, y)};
  at::Tensor ranking;
  {
    at::NoGradGuard no_grad;
    ranking = std::get<1>(f(x).sort(1, /*descending=*/true));
  }
  const int64_t classes = ranking.size(1);
  if (classes < 4)
    throw AttackError("APGD-T: the targeted DLR loss needs >= 4 classes, the classifier has " +
                      std::to_string(classes));
  const int targets = int(std::min<int64_t>(o.target_classes(), classes - 1));
  bool first = true;
  for (int t = 1; t <= targets; ++t) {
    for (int r = 0; r < o.restarts(); ++r) {
      at::Tensor idx = out.still_correct.nonzero().flatten();
      if (idx.numel() == 0) return out;
      at::Tensor ys = y.index_select(0, idx);
      at::Tensor target = ranking.index_select(0, idx).select(1, t).contiguous();
      auto run = apgd_run(
          f, x.index_select(0, idx), ys,
          [&](const at::Tensor& logits) { return dlr_targeted_loss(logits, ys, target); }, o,
          gen);
      merge_run(out, idx, run);
      if (first) {
        at::Tensor kept = run.still_correct;
        out.adversarial.index_copy_(0, idx.index({kept}), run.adversarial.index({kept}));
        first = false;
      }
    }
  }
  return out;
}

}  // namespace lmt::attack
