// lmt::lipschitz: the interface every Lipschitz-bounded network part implements.
// A BoundedModule maps its input to its output and answers an upper bound of its l2 Lipschitz
// constant; SpectralOperator is the layer that carries a persistent power-iteration vector.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
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
