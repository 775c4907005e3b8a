// The threat model shared by every attack: the eps ball (L2/Linf) intersected with the [0,1] box,
// norms, random starts, the model-as-classifier adapter and the per-point worst case.
#include <lmt/attack/attack.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include <ATen/core/grad_mode.h>
#include <lmt/models/model.h>

#include "gradient.h"

namespace lmt::attack {

Norm parse_norm(const std::string& text) {
  std::string t;
  for (char c : text) t += char(std::tolower(static_cast<unsigned char>(c)));
  if (t == "l2") return Norm::kL2;
  if (t == "linf") return Norm::kLinf;
  throw AttackError("norm: expected L2 or Linf, got '" + text + "'");
}

const char* to_string(Norm norm) { return norm == Norm::kL2 ? "L2" : "Linf"; }

Classifier classifier_of(models::Model& model) {
  return [&model](const at::Tensor& x) { return model.forward(x); };
}

EvalMode::EvalMode(models::Model& model) : model_(model), was_training_(model.is_training()) {
  model_.eval();
}
EvalMode::~EvalMode() { model_.train(was_training_); }

at::Tensor per_point(const at::Tensor& v, const at::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  return v.reshape(shape);
}

at::Tensor perturbation_norm(const at::Tensor& delta, Norm norm) {
  at::Tensor flat = delta.detach().to(at::kDouble).flatten(1);
  return norm == Norm::kL2 ? flat.norm(2, 1) : flat.abs().amax(1);
}

at::Tensor project(const at::Tensor& x_adv, const at::Tensor& x, Norm norm, double eps) {
  if (!(eps >= 0)) throw AttackError("eps: must be >= 0, got " + std::to_string(eps));
  at::Tensor delta = x_adv - x;
  if (norm == Norm::kLinf) {
    delta = delta.clamp(-eps, eps);
  } else {
    at::Tensor n = delta.flatten(1).norm(2, 1);
    // Shrink only points outside the ball; the tiny slack keeps float rounding inside it.
    at::Tensor factor = at::clamp_max(eps * (1.0 - 1e-6) / (n + 1e-12), 1.0);
    delta = delta * per_point(factor, delta);
  }
  return (x + delta).clamp(0.0, 1.0);
}

namespace {
at::Tensor moved(at::Tensor t, const at::TensorOptions& options) {
  return options.device().is_cpu() ? t : t.to(options.device());
}
at::TensorOptions on_host(const at::TensorOptions& options) { return options.device(at::kCPU); }
}  // namespace

at::Tensor host_rand(at::IntArrayRef sizes, at::Generator& gen, const at::TensorOptions& options) {
  return moved(at::rand(sizes, gen, on_host(options)), options);
}
at::Tensor host_randn(at::IntArrayRef sizes, at::Generator& gen, const at::TensorOptions& options) {
  return moved(at::randn(sizes, gen, on_host(options)), options);
}
at::Tensor host_randint(int64_t low, int64_t high, at::IntArrayRef sizes, at::Generator& gen,
                        const at::TensorOptions& options) {
  return moved(at::randint(low, high, sizes, gen, on_host(options)), options);
}

at::Tensor random_start(const at::Tensor& x, Norm norm, double eps, at::Generator& gen) {
  if (norm == Norm::kLinf) {
    at::Tensor u = host_rand(x.sizes(), gen, x.options()) * 2 - 1;
    return project(x + eps * u, x, norm, eps);
  }
  at::Tensor g = host_randn(x.sizes(), gen, x.options());
  at::Tensor dir = g / per_point(g.flatten(1).norm(2, 1) + 1e-12, g);
  const double d = double(x[0].numel());
  at::Tensor r = host_rand({x.size(0)}, gen, x.options()).pow(1.0 / d) * eps;
  return project(x + dir * per_point(r, dir), x, norm, eps);
}

AttackResult worst_case(const std::vector<AttackResult>& results) {
  if (results.empty()) throw AttackError("worst_case: no attack results");
  AttackResult out;
  out.still_correct = results[0].still_correct.clone();
  out.adversarial = results[0].adversarial.clone();
  at::Tensor broken = out.still_correct.logical_not();
  for (size_t i = 1; i < results.size(); ++i) {
    const auto& r = results[i];
    if (!r.still_correct.sizes().equals(out.still_correct.sizes()))
      throw AttackError("worst_case: attack " + std::to_string(i) + " has " +
                        std::to_string(r.still_correct.size(0)) + " points, expected " +
                        std::to_string(out.still_correct.size(0)));
    at::Tensor newly = r.still_correct.logical_not().logical_and(broken.logical_not());
    out.adversarial.index_put_({newly}, r.adversarial.index({newly}));
    broken = broken.logical_or(r.still_correct.logical_not());
  }
  out.still_correct = broken.logical_not();
  return out;
}

at::Tensor correct_mask(const Classifier& f, const at::Tensor& x, const at::Tensor& y) {
  at::NoGradGuard no_grad;
  return f(x).argmax(1).eq(y);
}

}  // namespace lmt::attack
