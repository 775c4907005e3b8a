// The network of the LMT paper's MNIST experiment (after Wong & Kolter 2018): two 4x4 stride-2
// convolutions (16, 32 channels), a 100-unit hidden layer and the class layer, ReLU between.
// Model option act=softplus swaps ReLU for softplus (also 1-Lipschitz, and smooth: the
// data-parallel equivalence tests use it, since a ReLU whose input sits at ~0 can flip between
// two reduction orders and make two runs different runs).
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/models/heads.h>

#include "builtin_models.h"

namespace lmt::models {
namespace {

class LmtMnist : public Model {
 public:
  explicit LmtMnist(const ModelConfig& c) : Model(c) {
    const int64_t hidden = c.option_int("hidden", 100);
    const std::string act = c.option_string("act", "relu");
    if (act != "relu" && act != "softplus")
      throw ModelError("model option act: expected relu or softplus, got '" + act + "'");
    softplus_ = act == "softplus";
    if (!c.mean.empty())
      normalize_ = register_module(
          "normalize",
          lipschitz::InputNormalization(std::vector<double>(c.mean.begin(), c.mean.end()),
                                        std::vector<double>(c.std.begin(), c.std.end())));
    conv1_ =
        register_module("conv1", lipschitz::BoundedConv2d(lipschitz::BoundedConv2dOptions(
                                                              c.channels, 16, 4, c.height, c.width)
                                                              .stride(2)
                                                              .padding(1)));
    conv2_ = register_module(
        "conv2",
        lipschitz::BoundedConv2d(lipschitz::BoundedConv2dOptions(16, 32, 4, conv1_->output_height(),
                                                                 conv1_->output_width())
                                     .stride(2)
                                     .padding(1)));
    const int64_t flat = 32 * conv2_->output_height() * conv2_->output_width();
    fc1_ = register_module("fc1", lipschitz::BoundedLinear(flat, hidden));
    if (uses_hypersphere_head(c))
      he_ =
          register_module("he_head", HypersphereHead(hidden, c.num_classes, hypersphere_scale(c)));
    else
      fc2_ = register_module("fc2", lipschitz::BoundedLinear(hidden, c.num_classes));
  }

  at::Tensor features(const at::Tensor& input) {
    at::Tensor x = normalize_ ? normalize_->forward(input) : input;
    x = activation(conv1_->forward(x));
    x = activation(conv2_->forward(x));
    return activation(fc1_->forward(x.flatten(1)));
  }

  // Both are 1-Lipschitz (softplus' slope is the logistic function, in (0, 1)): bound 1.
  at::Tensor activation(const at::Tensor& x) const {
    return softplus_ ? at::softplus(x) : x.relu();
  }

  at::Tensor forward(const at::Tensor& input) override {
    return he_ ? he_->forward(features(input)) : fc2_->forward(features(input));
  }

  bool has_bound() const override { return !he_; }

  at::Tensor body_bound(lipschitz::BoundMode mode) {
    at::Tensor bound =
        conv1_->spectral_norm(mode) * conv2_->spectral_norm(mode) * fc1_->spectral_norm(mode);
    return normalize_ ? bound * normalize_->lipschitz_bound(mode) : bound;
  }

  at::Tensor lipschitz_bound(lipschitz::BoundMode mode) override {
    if (he_) throw ModelError("lmt-mnist with head=he has no finite Lipschitz bound");
    return body_bound(mode) * fc2_->spectral_norm(mode);
  }

  lipschitz::HeadSplit head_split(lipschitz::BoundMode mode) override {
    if (he_) return {};
    return {body_bound(mode), mode == lipschitz::BoundMode::kSound
                                  ? fc2_->weight.detach().to(at::kDouble)
                                  : fc2_->weight};
  }

 private:
  lipschitz::InputNormalization normalize_{nullptr};
  lipschitz::BoundedConv2d conv1_{nullptr}, conv2_{nullptr};
  lipschitz::BoundedLinear fc1_{nullptr}, fc2_{nullptr};
  HypersphereHead he_{nullptr};  // replaces fc2 when the model option head=he
  bool softplus_ = false;
};

}  // namespace

std::shared_ptr<Model> make_lmt_mnist(const ModelConfig& config) {
  return std::make_shared<LmtMnist>(config);
}

}  // namespace lmt::models
