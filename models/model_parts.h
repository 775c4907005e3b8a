// Private to models/: what the architectures share (the base of a model declared once as a
// composed tree, input normalization from the config, orthogonal initialisation, a
// weight-normalized linear head).
#pragma once

#include <ATen/ATen.h>
#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/models/model.h>
#include <torch/nn/module.h>

namespace lmt::models {

// A model declared ONCE as a lipschitz::Sequential: forward, lipschitz_bound and head_split all
// read that tree, so the bound is derived from the layers that run (models/README.md, "Bounds").
// The layers are registered on the model in its published layout (torchvision's key names and
// order, which model files and their weights digest pin); the tree is an unregistered member
// over the same module objects. set_network checks that both hold the same tensors
// (lipschitz::require_same_tensors), and train()/eval() reach the tree's parts (dropout,
// drop-path) even where the layout does not register them.
class ComposedModel : public Model {
 public:
  using Model::Model;
  at::Tensor forward(const at::Tensor& x) override { return network_->forward(x); }
  at::Tensor lipschitz_bound(lipschitz::BoundMode mode) override {
    return network_->lipschitz_bound(mode);
  }
  lipschitz::HeadSplit head_split(lipschitz::BoundMode mode) override {
    return network_->head_split(mode);
  }
  bool has_bound() const override { return bounded_; }
  void train(bool on = true) override;

 protected:
  // `bounded` false: a part of the tree has no bound (its lipschitz_bound throws).
  void set_network(lipschitz::Sequential network, bool bounded = true);

 private:
  lipschitz::Sequential network_{nullptr};
  bool bounded_ = true;
};

// Registers "normalize" on `owner` when the config has mean/std; an empty holder otherwise.
lipschitz::InputNormalization make_input_normalization(torch::nn::Module& owner,
                                                       const ModelConfig& config);

// The model option `norm` of ResNet/WRN: true for "center" (BatchCentering2d), false for
// "batch" (the default, BatchNorm2d); ModelError naming the option otherwise.
bool uses_batch_centering(const ModelConfig& config);

// Fills `weight` (any shape, dim 0 = outputs) with a (semi-)orthogonal matrix of shape
// [dim0, rest], as torch.nn.init.orthogonal_ does.
void orthogonal_init(at::Tensor& weight);

// A linear head whose rows are normalized to unit l2 norm in the forward pass ("last-layer
// normalization", LLN): F = W~ h + b with W~_i = W_i / ||W_i||. Parameters `weight`, `bias`.
// As the last part of a lipschitz::Sequential, its head_split reads W~.
class NormalizedLinearImpl : public lipschitz::BoundedModule, public lipschitz::LinearHead {
 public:
  NormalizedLinearImpl(int64_t in_features, int64_t out_features);
  at::Tensor forward(const at::Tensor& x) override;
  // sigma_max(W~): an exact SVD (differentiable in kTrain; float64 plus a rounding allowance
  // in kSound).
  at::Tensor lipschitz_bound(lipschitz::BoundMode mode) override;
  // W~ as the certificate needs it: float64 and detached in kSound, detached in kEstimate.
  at::Tensor normalized_weight(lipschitz::BoundMode mode) const;
  at::Tensor head_weight(lipschitz::BoundMode mode) override { return normalized_weight(mode); }
  at::Tensor weight, bias;
};
TORCH_MODULE(NormalizedLinear);

}  // namespace lmt::models
