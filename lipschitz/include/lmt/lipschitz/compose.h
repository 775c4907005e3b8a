// lmt::lipschitz: composing BoundedModules into a network whose bound is derived from its parts:
// Sequential (product), Residual (1 + L_f, or L_g + L_f) and Parallel (sum of branches), the
// conv + folded batch-norm part, and the check a model with its own key layout runs on its tree.
//
// Usage (a small certifiable CNN on 28x28 grey images):
//   namespace lip = lmt::lipschitz;
//   lip::Sequential net(
//       lip::InputNormalization(std::vector<double>{0.286}, std::vector<double>{0.353}),
//       lip::BoundedConv2d(lip::BoundedConv2dOptions(1, 16, 3, 28, 28).padding(1)), lip::ReLU(),
//       lip::Residual(lip::Sequential(
//           lip::BoundedConv2d(lip::BoundedConv2dOptions(16, 16, 3, 28, 28).padding(1)),
//           lip::ReLU())),
//       lip::AvgPool2d(2, 2), lip::Flatten(), lip::BoundedLinear(16 * 14 * 14, 10));
//   at::Tensor logits = net->forward(x);
//   lip::power_iteration_step(*net);                                   // once per step
//   at::Tensor L = net->lipschitz_bound(lip::BoundMode::kTrain);       // differentiable
//   at::Tensor loss = lip::lmt_loss(logits, y, L, /*c=*/0.1);
//   at::Tensor L_cert = net->lipschitz_bound(lip::BoundMode::kSound);  // for certificates
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/pimpl.h>

#include <lmt/lipschitz/bounded_module.h>
#include <lmt/lipschitz/layers.h>

namespace lmt::lipschitz {

namespace detail {
template <typename T>
std::shared_ptr<BoundedModule> as_bounded(const std::shared_ptr<T>& module) {
  static_assert(std::is_base_of_v<BoundedModule, T>, "needs a lmt::lipschitz::BoundedModule");
  return module;
}
template <typename T>
std::shared_ptr<BoundedModule> as_bounded(const torch::nn::ModuleHolder<T>& module) {
  return as_bounded(module.ptr());
}
}  // namespace detail

// A last layer F = W h + b other than BoundedLinear whose W the pairwise margin reads (e.g. a
// row-normalized "LLN" head, whose W is the normalized matrix): see Sequential::head_split.
class LinearHead {
 public:
  virtual ~LinearHead() = default;
  // W [classes, features] as the certificate reads it: float64 and detached in kSound, detached
  // in kEstimate, differentiable in kTrain.
  virtual at::Tensor head_weight(BoundMode mode) = 0;
};

// Modules applied in order, registered as "0", "1", ...; bound = product of the parts' bounds.
class SequentialImpl : public BoundedModule {
 public:
  SequentialImpl() = default;
  template <typename First, typename... Rest,
            typename = std::enable_if_t<!std::is_same_v<std::decay_t<First>, SequentialImpl>>>
  explicit SequentialImpl(First&& first, Rest&&... rest) {
    push_back(std::forward<First>(first));
    (push_back(std::forward<Rest>(rest)), ...);
  }
  template <typename M>
  void push_back(M&& module) {
    push_back(std::to_string(parts_.size()), std::forward<M>(module));
  }
  template <typename M>
  void push_back(const std::string& name, M&& module) {
    parts_.push_back(register_module(name, detail::as_bounded(module)));
  }

  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  // When the last part is a BoundedLinear or a LinearHead: body_bound = product of the other
  // parts' bounds and head_weight = its weight (float64 and detached in kSound, detached in
  // kEstimate); when it is a Sequential, that one's split with the other parts' bounds multiplied
  // into body_bound. Undefined otherwise (e.g. a head without a bound).
  HeadSplit head_split(BoundMode mode);

  size_t size() const { return parts_.size(); }
  const std::shared_ptr<BoundedModule>& operator[](size_t i) const { return parts_.at(i); }

 private:
  std::vector<std::shared_ptr<BoundedModule>> parts_;
};
TORCH_MODULE(Sequential);

// y = x + f(x) (bound 1 + L_f), or y = g(x) + f(x) (bound L_g + L_f). Registered as "branch"
// and, when given, "shortcut".
class ResidualImpl : public BoundedModule {
 public:
  template <typename F>
  explicit ResidualImpl(F&& branch)
      : branch_(register_module("branch", detail::as_bounded(branch))) {}
  template <typename G, typename F>
  ResidualImpl(G&& shortcut, F&& branch)
      : branch_(register_module("branch", detail::as_bounded(branch))),
        shortcut_(register_module("shortcut", detail::as_bounded(shortcut))) {}

  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;

 private:
  std::shared_ptr<BoundedModule> branch_;
  std::shared_ptr<BoundedModule> shortcut_;  // null: identity
};
TORCH_MODULE(Residual);

// Branches applied to the same input, outputs summed; bound = sum of the branches' bounds.
class ParallelImpl : public BoundedModule {
 public:
  template <typename... Branches>
  explicit ParallelImpl(Branches&&... branches) {
    (push_back(std::forward<Branches>(branches)), ...);
  }
  template <typename M>
  void push_back(M&& module) {
    branches_.push_back(
        register_module(std::to_string(branches_.size()), detail::as_bounded(module)));
  }

  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;

 private:
  std::vector<std::shared_ptr<BoundedModule>> branches_;
};
TORCH_MODULE(Parallel);

// A conv followed by a BatchNorm2d, bounded as ONE operator: the constructor attaches bn to conv
// (BoundedConv2d::attach_batch_norm), so the bound is that of the conv with each output channel
// scaled by gamma_c / sqrt(running_var_c + eps) (eval statistics), tighter than the product of
// the two; forward is bn(conv(x)). Being one part, the fold cannot be separated from the conv it
// belongs to. Registered as "conv" and "bn".
class ConvBatchNorm2dImpl : public BoundedModule {
 public:
  ConvBatchNorm2dImpl(BoundedConv2d conv, torch::nn::BatchNorm2d bn);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  BoundedConv2d conv;
  torch::nn::BatchNorm2d bn;
};
TORCH_MODULE(ConvBatchNorm2d);

// For a model that registers its layers in a layout of its own (state-dict key names and order,
// e.g. torchvision's, which model files and their weights digest pin) and runs them through a
// composed tree kept OUTSIDE that layout (an unregistered member whose parts are the same module
// objects): throws BoundError "WHAT: ..." naming the first parameter or buffer that the tree holds
// and `owner` does not, or the reverse (compared by tensor identity). So every tensor the tree runs
// and bounds is saved, loaded, moved and trained with the model, and every tensor the model saves
// runs (and is bounded). The owner must also pass train()/eval() on to the tree.
void require_same_tensors(torch::nn::Module& tree, torch::nn::Module& owner,
                          const std::string& what);

}  // namespace lmt::lipschitz
