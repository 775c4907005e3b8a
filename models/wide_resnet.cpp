// WideResNet-d-k (Zagoruyko & Komodakis 2016), CIFAR layout with pre-activation blocks:
// conv3x3(16) -> 3 groups of (d-4)/6 blocks of widths 16k, 32k, 64k (strides 1, 2, 2) ->
// BN-ReLU -> global average pool -> linear. Block: a = relu(bn1(x));
// y = conv2(dropout(relu(bn2(conv1(a))))) + (x, or conv1x1(a) when the shape changes).
// Batch-norm bounds: bn2 directly follows conv1 and is folded into conv1's operator; the first
// block's bn1 directly follows the stem conv when nothing else reads the stem output, and is
// folded there; every other bn1 and the final bn follow a residual sum and are bounded by the
// rule max|gamma|/sqrt(var+eps). norm=center replaces every BN by a batch centring (bound 1).
// conv2 starts at zero (zero_init_residual=1, the default): every block starts as its shortcut.
// Options: depth, widen, dropout, norm (batch|center), zero_init_residual (1|0).
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/lipschitz/rules.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>

#include "builtin_models.h"
#include "model_parts.h"

namespace lmt::models {
namespace {

using lipschitz::BoundedConv2d;
using lipschitz::BoundedConv2dOptions;
using lipschitz::BoundMode;

BoundedConv2d conv3x3(int64_t in, int64_t out, int64_t stride, int64_t h, int64_t w) {
  return BoundedConv2d(
      BoundedConv2dOptions(in, out, 3, h, w).stride(stride).padding(1).bias(false));
}

class WideBlock : public torch::nn::Module {
 public:
  WideBlock(int64_t in, int64_t out, int64_t stride, int64_t h, int64_t w, double dropout,
            bool center, bool zero_init_residual)
      : dropout_(dropout) {
    conv1_ = register_module("conv1", conv3x3(in, out, stride, h, w));
    if (center) {
      center1 = register_module("bn1", lipschitz::BatchCentering2d(in));
      center2_ = register_module("bn2", lipschitz::BatchCentering2d(out));
    } else {
      bn1 = register_module("bn1", torch::nn::BatchNorm2d(in));
      bn2_ = register_module("bn2", torch::nn::BatchNorm2d(out));
      conv1_->attach_batch_norm(bn2_);
    }
    out_h = conv1_->output_height();
    out_w = conv1_->output_width();
    conv2_ = register_module("conv2", conv3x3(out, out, 1, out_h, out_w));
    if (zero_init_residual) {  // the branch starts at 0 (Fixup; bound 0 until it learns)
      at::NoGradGuard no_grad;
      conv2_->weight.zero_();
    }
    if (in != out || stride != 1)
      shortcut_ = register_module(
          "shortcut",
          BoundedConv2d(BoundedConv2dOptions(in, out, 1, h, w).stride(stride).bias(false)));
  }

  // True when the shortcut reads relu(bn1(x)) too, so x only enters through bn1.
  bool preactivation_shared() const { return !shortcut_.is_empty(); }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor a = (bn1 ? bn1->forward(x) : center1->forward(x)).relu();
    at::Tensor y = conv1_->forward(a);
    y = (bn2_ ? bn2_->forward(y) : center2_->forward(y)).relu();
    if (dropout_ > 0) y = at::dropout(y, dropout_, is_training());
    y = conv2_->forward(y);
    return y + (preactivation_shared() ? shortcut_->forward(a) : x);
  }

  at::Tensor bound(BoundMode mode) {
    at::Tensor bn1_bound = (bn1_folded || !bn1) ? lipschitz::constant_bound(1.0, mode)
                                                : lipschitz::batch_norm_bound(bn1, mode);
    at::Tensor branch = conv1_->spectral_norm(mode) * conv2_->spectral_norm(mode);
    if (preactivation_shared()) return bn1_bound * (branch + shortcut_->spectral_norm(mode));
    return bn1_bound * branch + 1.0;
  }

  torch::nn::BatchNorm2d bn1{nullptr};           // norm=batch
  lipschitz::BatchCentering2d center1{nullptr};  // norm=center (bound 1)
  bool bn1_folded = false;                       // bn1 is part of the stem conv's operator
  int64_t out_h = 0, out_w = 0;

 private:
  double dropout_;
  BoundedConv2d conv1_{nullptr}, conv2_{nullptr}, shortcut_{nullptr};
  torch::nn::BatchNorm2d bn2_{nullptr};
  lipschitz::BatchCentering2d center2_{nullptr};
};

class WideResNet : public Model {
 public:
  WideResNet(const ModelConfig& c, int64_t default_depth, int64_t default_widen) : Model(c) {
    const int64_t depth = c.option_int("depth", default_depth);
    const int64_t widen = c.option_int("widen", default_widen);
    const double dropout = c.option_double("dropout", 0.0);
    const bool center = uses_batch_centering(c);
    const bool zero_init_residual = c.option_int("zero_init_residual", 1) != 0;
    if (depth < 10 || (depth - 4) % 6 != 0)
      throw ModelError(c.name + ": model option 'depth' must be 6n+4 with n >= 1, got " +
                       std::to_string(depth));
    if (widen < 1)
      throw ModelError(c.name + ": model option 'widen' must be >= 1, got " +
                       std::to_string(widen));
    if (!(dropout >= 0 && dropout < 1))
      throw ModelError(c.name + ": model option 'dropout' must be in [0, 1)");
    const int64_t n = (depth - 4) / 6;
    normalize_ = make_input_normalization(*this, c);
    stem_ = register_module("conv1", conv3x3(c.channels, 16, 1, c.height, c.width));
    int64_t h = stem_->output_height(), w = stem_->output_width(), in = 16;
    for (int64_t group = 0; group < 3; ++group) {
      auto list = register_module("block" + std::to_string(group + 1), torch::nn::ModuleList());
      const int64_t out = (16 << group) * widen;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t stride = (group > 0 && i == 0) ? 2 : 1;
        auto block =
            std::make_shared<WideBlock>(in, out, stride, h, w, dropout, center, zero_init_residual);
        list->push_back(block);
        blocks_.push_back(block);
        h = block->out_h;
        w = block->out_w;
        in = out;
      }
    }
    if (!center && blocks_.front()->preactivation_shared()) {
      stem_->attach_batch_norm(blocks_.front()->bn1);
      blocks_.front()->bn1_folded = true;
    }
    if (center)
      center_ = register_module("bn", lipschitz::BatchCentering2d(in));
    else
      bn_ = register_module("bn", torch::nn::BatchNorm2d(in));
    pool_ = register_module("avgpool", lipschitz::GlobalAvgPool(h, w));
    fc_ = register_module("fc", lipschitz::BoundedLinear(in, c.num_classes));
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = normalize_ ? normalize_->forward(input) : input;
    x = stem_->forward(x);
    for (auto& block : blocks_) x = block->forward(x);
    x = bn_ ? bn_->forward(x) : center_->forward(x);
    return fc_->forward(pool_->forward(x.relu()));
  }

  at::Tensor body_bound(BoundMode mode) {
    at::Tensor bound = stem_->spectral_norm(mode);
    if (normalize_) bound = bound * normalize_->lipschitz_bound(mode);
    for (auto& block : blocks_) bound = bound * block->bound(mode);
    if (bn_) bound = bound * lipschitz::batch_norm_bound(bn_, mode);
    return bound * pool_->lipschitz_bound(mode);
  }

  at::Tensor lipschitz_bound(BoundMode mode) override {
    return body_bound(mode) * fc_->spectral_norm(mode);
  }

  lipschitz::HeadSplit head_split(BoundMode mode) override {
    at::Tensor w = fc_->weight;
    if (mode != BoundMode::kTrain) w = w.detach();
    if (mode == BoundMode::kSound) w = w.to(at::kDouble);
    return {body_bound(mode), w};
  }

 private:
  lipschitz::InputNormalization normalize_{nullptr};
  BoundedConv2d stem_{nullptr};
  std::vector<std::shared_ptr<WideBlock>> blocks_;
  torch::nn::BatchNorm2d bn_{nullptr};
  lipschitz::BatchCentering2d center_{nullptr};
  lipschitz::GlobalAvgPool pool_{nullptr};
  lipschitz::BoundedLinear fc_{nullptr};
};

}  // namespace

std::shared_ptr<Model> make_wide_resnet(const ModelConfig& config, int depth, int widen) {
  return std::make_shared<WideResNet>(config, depth, widen);
}

}  // namespace lmt::models
