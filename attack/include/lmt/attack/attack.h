// lmt::attack: adversarial attacks on any classifier (logits = f(x), pixels in [0,1]) under an
// L2 or Linf budget: PGD, APGD-CE, APGD-T (targeted DLR), FAB-T, Square, and their per-point
// worst case.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <lmt/options/schema.h>
#include <torch/arg.h>

namespace lmt::models {
class Model;
}

namespace lmt::attack {

// Errors of this room: a bad budget, an attack that does not fit the classifier.
class AttackError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Norm { kL2, kLinf };
Norm parse_norm(const std::string& text);  // "L2" | "Linf" (case-insensitive); else AttackError
const char* to_string(Norm norm);

// Any differentiable classifier: images [N,C,H,W] in [0,1] -> logits [N,K].
using Classifier = std::function<at::Tensor(const at::Tensor&)>;

// The model's forward as a Classifier. The caller puts the model in eval mode (EvalMode below).
Classifier classifier_of(models::Model& model);

// Puts a module in eval mode for its lifetime and restores the previous mode.
class EvalMode {
 public:
  explicit EvalMode(models::Model& model);
  ~EvalMode();
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  models::Model& model_;
  bool was_training_;
};

// What every attack returns: the adversarial inputs (inside the eps ball around x and inside
// [0,1]) and, per point, whether the classifier still predicts the label on them (false for
// points already misclassified clean).
struct AttackResult {
  at::Tensor adversarial;    // [N,C,H,W]
  at::Tensor still_correct;  // bool [N]
};

// ---- the threat model -----------------------------------------------------------------------
// Projects x_adv onto the eps ball around x, then clamps to [0,1] (which only shrinks |x_adv-x|).
at::Tensor project(const at::Tensor& x_adv, const at::Tensor& x, Norm norm, double eps);
// Per-point norm of delta [N,...]: L2 or Linf, float64 [N].
at::Tensor perturbation_norm(const at::Tensor& delta, Norm norm);
// A random point of the ball (Linf: uniform per pixel; L2: uniform direction, radius eps*U^(1/d)),
// projected into the box.
at::Tensor random_start(const at::Tensor& x, Norm norm, double eps, at::Generator& gen);

// Random tensors for `options` (any device) drawn from `gen`, the default CPU generator of the
// attacks and of training, on the host and then moved: a CUDA kernel refuses a CPU generator, and
// drawn this way the same seed gives the same draws on every device, and the CPU generator's
// state, which checkpoints keep, covers them.
at::Tensor host_rand(at::IntArrayRef sizes, at::Generator& gen, const at::TensorOptions& options);
at::Tensor host_randn(at::IntArrayRef sizes, at::Generator& gen, const at::TensorOptions& options);
at::Tensor host_randint(int64_t low, int64_t high, at::IntArrayRef sizes, at::Generator& gen,
                        const at::TensorOptions& options);

// ---- PGD ------------------------------------------------------------------------------------
struct PgdOptions {
  TORCH_ARG(Norm, norm) = Norm::kLinf;
  TORCH_ARG(double, eps) = 0.0;
  TORCH_ARG(int, steps) = 10;
  TORCH_ARG(double, step_size) = 0.0;  // 0: 2.5 * eps / steps (Madry et al.)
  TORCH_ARG(int, restarts) = 1;
  TORCH_ARG(bool, random_start) = true;
  TORCH_ARG(uint64_t, seed) = 0;
};

// Per-point losses [N] of candidate inputs; PGD ascends their sum.
using PointLoss = std::function<at::Tensor(const at::Tensor& x_adv)>;

// Plain projected gradient ascent of `loss` from `start` (undefined: x itself), the building
// block of adversarial training. Returns the last iterate (detached).
at::Tensor pgd_maximize(const PointLoss& loss, const at::Tensor& x, const at::Tensor& start,
                        Norm norm, double eps, int steps, double step_size);

// Untargeted PGD on the cross-entropy with random start and restarts; a point counts as broken
// as soon as any iterate of any restart is misclassified.
AttackResult pgd(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                 const PgdOptions& options);

// ---- APGD (Croce & Hein 2020), AutoAttack "standard" defaults -------------------------------
struct ApgdOptions {
  TORCH_ARG(Norm, norm) = Norm::kLinf;
  TORCH_ARG(double, eps) = 0.0;
  TORCH_ARG(int, iterations) = 100;
  TORCH_ARG(int, restarts) = 1;
  // APGD-T: attack the 2nd .. (target_classes+1)-th most likely classes
  TORCH_ARG(int, target_classes) = 9;
  // step-size halving when < rho of the steps since the last checkpoint increased the loss
  TORCH_ARG(double, rho) = 0.75;
  TORCH_ARG(double, momentum) = 0.75;
  TORCH_ARG(uint64_t, seed) = 0;
};

// APGD on the cross-entropy.
AttackResult apgd_ce(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                     const ApgdOptions& options);
// APGD on the targeted DLR loss, one run per target class (needs >= 4 classes).
AttackResult apgd_t(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                    const ApgdOptions& options);

// Targeted DLR loss per point: -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2 + 1e-12), z_(k) the
// k-th largest logit. [N]
at::Tensor dlr_targeted_loss(const at::Tensor& logits, const at::Tensor& y,
                             const at::Tensor& target);

// ---- FAB-T (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive
// boundary attack"), AutoAttack "standard" defaults (fab_pt.py) ---------------------------------
struct FabOptions {
  TORCH_ARG(Norm, norm) = Norm::kLinf;
  TORCH_ARG(double, eps) = 0.0;  // a point is broken when FAB finds an adversarial within eps
  TORCH_ARG(int, iterations) = 100;
  // per target class; every restart after the first starts at a random point of the eps/2 ball
  TORCH_ARG(int, restarts) = 1;
  TORCH_ARG(int, target_classes) = 9;  // the 2nd .. (target_classes+1)-th most likely classes
  TORCH_ARG(double, alpha_max) = 0.1;  // largest weight of the step from the original point
  TORCH_ARG(double, eta) = 1.05;       // overshoot past the linearized boundary
  TORCH_ARG(double, beta) = 0.9;       // backward step toward x after each success
  TORCH_ARG(uint64_t, seed) = 0;
};

// Targeted FAB: per target class, `iterations` steps toward the projection of the iterate (and
// of x) onto the linearized boundary z_t = z_y within [0,1], keeping the smallest misclassified
// iterate; each target class attacks the points not yet broken within eps. `distance`, when
// given, receives per point the norm of the smallest adversarial found (float64 [N]; 0 for points
// misclassified clean, inf where none was found), which may exceed eps.
AttackResult fab_t(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                   const FabOptions& options, at::Tensor* distance = nullptr);

// FAB's building block: per row of t [M,D], the smallest d in `norm` (L2 or Linf) with
// w.(t + d) = b and t + d in [0,1]^D (w [M,D], b [M]); where the box cannot reach the plane, the
// box corner nearest to it. Float64.
at::Tensor hyperplane_box_projection(const at::Tensor& t, const at::Tensor& w, const at::Tensor& b,
                                     Norm norm);

// ---- Square (Andriushchenko et al. 2020): black-box, forward passes only ---------------------
struct SquareOptions {
  TORCH_ARG(Norm, norm) = Norm::kLinf;
  TORCH_ARG(double, eps) = 0.0;
  TORCH_ARG(int, queries) = 5000;
  TORCH_ARG(double, p_init) = 0.8;
  // false (AutoAttack's resc_schedule=False): p halves at iterations 10, 50, 200, ... whatever the
  // budget; true (the paper's square-attack code): the schedule is stretched to `queries`.
  TORCH_ARG(bool, rescale_schedule) = false;
  TORCH_ARG(uint64_t, seed) = 0;
};
AttackResult square(const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                    const SquareOptions& options);

// ---- ensembles -------------------------------------------------------------------------------
// Per point the minimum of robustness: still correct only if correct under every attack; the
// adversarial example is the first attack's one that broke the point (else the first attack's).
AttackResult worst_case(const std::vector<AttackResult>& results);

// Clean correctness [N] bool (no grad).
at::Tensor correct_mask(const Classifier& f, const at::Tensor& x, const at::Tensor& y);

}  // namespace lmt::attack

// The threat models' names in option schemas (--norm L2|Linf).
namespace lmt::options {
template <>
struct EnumNames<attack::Norm> {
  static constexpr std::pair<attack::Norm, const char*> table[] = {{attack::Norm::kL2, "L2"},
                                                                   {attack::Norm::kLinf, "Linf"}};
};
}  // namespace lmt::options
