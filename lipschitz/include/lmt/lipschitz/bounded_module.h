// lmt::lipschitz: the interface every Lipschitz-bounded network part implements.
// A BoundedModule maps its input to its output and answers an upper bound of its l2 Lipschitz
// constant; SpectralOperator is the layer that carries a persistent power-iteration vector.
#pragma once

#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>

namespace lmt::lipschitz {

// Errors of this room: a bound that cannot be computed, a shape that does not fit.
class BoundError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How a bound is computed.
//  kTrain:    sigma = ||A u|| with the current persistent vectors u held constant; differentiable
//             in the weights; no iteration (call power_iteration_step() first). float32.
//  kEstimate: power iteration run to convergence on a copy of u; no grad. A lower estimate of the
//             true norm, for logging and for comparison with kSound.
//  kSound:    a provable upper bound computed in float64 (SVD for dense layers, the circulant
//             spectrum for convolutions); no grad. The only mode a certificate may use.
enum class BoundMode { kTrain, kEstimate, kSound };

const char* to_string(BoundMode mode);

// A module with a known upper bound of its l2 Lipschitz constant (input -> output).
class BoundedModule : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;
  virtual at::Tensor forward(const at::Tensor& x) = 0;
  // Scalar tensor: an upper bound of the l2 Lipschitz constant of forward().
  virtual at::Tensor lipschitz_bound(BoundMode mode) = 0;
};

// The last layer split off as W h(x) + b, for the tighter pairwise ("lmt-fc") margin:
// body_bound bounds h, head_weight is W [classes, features]. Both undefined when the model does
// not end in a plain linear layer.
struct HeadSplit {
  at::Tensor body_bound;
  at::Tensor head_weight;
  bool defined() const { return body_bound.defined() && head_weight.defined(); }
};

// An operator's sound bound and what it rests on, for reports (lmt certify's per-layer table).
struct SoundBound {
  double bound = 0;  // spectral_norm(kSound)
  // The exact norm when `exact`, else a converged power-iteration estimate (from below).
  double reference = std::numeric_limits<double>::quiet_NaN();
  bool exact = false;
  // "svd" (dense), "explicit" (conv: its explicit matrix), "banded" (conv: a Cholesky
  // certificate of its banded Gram matrix), "circulant" (conv: the circulant spectrum);
  // docs/methods.md#sound-bounds.
  std::string method;
  double seconds = 0;  // to compute `bound`
};

// Which tight sound bound a BoundedConv2d tries besides the circulant one
// (docs/methods.md#sound-bounds, which has the measured costs behind the defaults).
struct SoundBoundLimits {
  // Neither tight bound (the circulant bound alone).
  static SoundBoundLimits circulant_only() {
    return SoundBoundLimits().exact_size(0).banded_flops(0);
  }
  // The exact norm from the explicit matrix when min(in*H*W, out*Ho*Wo) <= exact_size: eigvalsh
  // of the smaller Gram, O(n^3) (n = 1024: 0.15 s on an idle core, 1-3 s on 2 loaded ones).
  TORCH_ARG(int64_t, exact_size) = 1024;
  // Otherwise the banded Cholesky certificate when its estimated cost is <= this many flops
  // (1e11: ~15 s on 2 loaded cores; every conv of a width-8 ResNet-18 on 28x28 fits).
  TORCH_ARG(double, banded_flops) = 1e11;
};

// A linear operator whose spectral norm is tracked by power iteration with a persistent vector
// stored as a module buffer (so it is checkpointed and broadcast with the model).
class SpectralOperator {
 public:
  virtual ~SpectralOperator() = default;
  // Advances the persistent vector by `iterations` steps of u <- A^T A u / ||A^T A u|| (no grad).
  virtual void power_iteration_step(int iterations = 1) = 0;
  // The operator's spectral norm in the given mode (see BoundMode).
  virtual at::Tensor spectral_norm(BoundMode mode) = 0;
  // The persistent vector (the module buffer itself, shared storage).
  virtual at::Tensor power_iteration_vector() = 0;
  // The kSound bound with its reference value; by default the kEstimate value as reference.
  virtual SoundBound sound_bound();
};

namespace detail {
struct BoundMemoEntries;
}
// While one is alive on a thread, each operator's kSound and kEstimate norms and sound_bound()
// are computed once there and then reused (lmt certify asks through the model's bound, its head
// split and the per-layer report), the convs' with `limits`. Only for a scope in which no weight
// or statistic changes.
class BoundMemo {
 public:
  explicit BoundMemo(const SoundBoundLimits& limits = SoundBoundLimits());
  ~BoundMemo();
  BoundMemo(const BoundMemo&) = delete;
  BoundMemo& operator=(const BoundMemo&) = delete;

 private:
  std::unique_ptr<detail::BoundMemoEntries> entries_;
  detail::BoundMemoEntries* previous_;
};

struct NamedOperator {
  std::string name;  // the submodule path, e.g. "layer2.0.conv1"
  SpectralOperator* op;
};

// Every SpectralOperator inside `module` (recursively), in registration order.
std::vector<NamedOperator> spectral_operators(torch::nn::Module& module);

// One power-iteration step on every operator of `module`.
void power_iteration_step(torch::nn::Module& module, int iterations = 1);

// The persistent vectors of every operator of `module`, in registration order (shared storage:
// writing into them updates the model).
std::vector<at::Tensor> power_iteration_vectors(torch::nn::Module& module);

}  // namespace lmt::lipschitz
