// Projected gradient descent (Madry et al. 2018): sign steps (Linf) or normalized-gradient steps
// (L2), projection onto the ball and the box, random start and restarts.
#include <lmt/attack/attack.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/functional/loss.h>

#include "gradient.h"

namespace lmt::attack {

at::Tensor input_gradient(const PointLoss& loss, const at::Tensor& x_adv, at::Tensor* values) {
  at::AutoGradMode enable(true);
  at::Tensor v = x_adv.detach().requires_grad_(true);
  at::Tensor l = loss(v);
  at::Tensor g = torch::autograd::grad({l.sum()}, {v})[0];
  if (values) *values = l.detach();
  return g.detach();
}

at::Tensor ascent_step(const at::Tensor& grad, Norm norm) {
  if (norm == Norm::kLinf) return grad.sign();
  std::vector<int64_t> shape(grad.dim(), 1);
  shape[0] = grad.size(0);
  return grad / (grad.flatten(1).norm(2, 1) + 1e-12).reshape(shape);
}

at::Tensor pgd_maximize(const PointLoss& loss, const at::Tensor& x, const at::Tensor& start,
                        Norm norm, double eps, int steps, double step_size) {
  at::Tensor x_adv = project(start.defined() ? start.detach() : x, x, norm, eps);
  for (int i = 0; i < steps; ++i) {
    at::Tensor g = input_gradient(loss, x_adv);
    at::NoGradGuard no_grad;
    x_adv = project(x_adv + step_size * ascent_step(g, norm), x, norm, eps);
  }
  return x_adv.detach();
}

at::Tensor cross_entropy_per_point(const at::Tensor& logits, const at::Tensor& y) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().reduction(torch::kNone));
}

AttackResult pgd(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                 const PgdOptions& o) {
  if (o.steps() < 1 || o.restarts() < 1) throw AttackError("pgd: steps and restarts must be >= 1");
  const double step = o.step_size() > 0 ? o.step_size() : 2.5 * o.eps() / o.steps();
  at::Generator gen = at::detail::createCPUGenerator(o.seed());
  AttackResult out;
  out.still_correct = correct_mask(f, x, y);
  out.adversarial = x.clone();
  for (int r = 0; r < o.restarts(); ++r) {
    at::Tensor idx = out.still_correct.nonzero().flatten();
    if (idx.numel() == 0) break;
    at::Tensor xs = x.index_select(0, idx), ys = y.index_select(0, idx);
    at::Tensor x_adv = o.random_start() ? random_start(xs, o.norm(), o.eps(), gen) : xs.clone();
    at::Tensor alive = at::ones({xs.size(0)}, at::kBool);
    at::Tensor best = x_adv.clone();
    for (int i = 0; i <= o.steps(); ++i) {
      at::Tensor logits;
      at::Tensor g = input_gradient(
          [&](const at::Tensor& v) {
            logits = f(v);
            return cross_entropy_per_point(logits, ys);
          },
          x_adv);
      at::NoGradGuard no_grad;
      at::Tensor fooled = logits.argmax(1).ne(ys).logical_and(alive);
      best.index_put_({fooled}, x_adv.index({fooled}));
      alive = alive.logical_and(fooled.logical_not());
      if (i == o.steps() || !alive.any().item<bool>()) break;
      x_adv = project(x_adv + step * ascent_step(g, o.norm()), xs, o.norm(), o.eps());
    }
    at::Tensor broken = alive.logical_not();
    at::Tensor broken_idx = idx.index({broken});
    out.adversarial.index_copy_(0, broken_idx, best.index({broken}));
    out.still_correct.index_fill_(0, broken_idx, false);
    // Points never broken keep the last iterate of the first restart as their example.
    if (r == 0) out.adversarial.index_copy_(0, idx.index({alive}), x_adv.index({alive}));
  }
  return out;
}

}  // namespace lmt::attack
