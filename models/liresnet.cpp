// LiResNet (Hu et al., NeurIPS 2023, "Unlocking Deep Lipschitz Certified Robustness"): a stem,
// `depth` linear residual blocks y = MinMax(x + alpha W x + b) at one width, each bounded as ONE
// operator I + alpha W (lipschitz::BoundedConv2d with residual_scale), a neck (a strided conv and
// a dense layer) and a last-layer-normalized head. Declared once as a lipschitz::Sequential, so
// forward and bound come from the same tree.
//
// Choices (the paper and its reference code, where they are silent or differ, see
// models/README.md): alpha = 1/sqrt(depth) fixed (the reference code's `depth**-.5`), W drawn
// N(0, 1) / (9 width) as there; the batch centring (a shift, bound 1) follows the merged conv,
// i.e. it centres x + alpha W x rather than alpha W x alone (the same function class: in eval
// both are a fixed bias); stem, neck and dense layers are initialised orthogonally.
#include <cmath>

#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>

#include "builtin_models.h"
#include "model_parts.h"

namespace lmt::models {
namespace {

using lipschitz::BoundedConv2d;
using lipschitz::BoundedConv2dOptions;
using lipschitz::BoundMode;

int64_t positive_even(const ModelConfig& c, const std::string& key, int64_t fallback) {
  const int64_t v = c.option_int(key, fallback);
  if (v < 2 || v % 2 != 0)
    throw ModelError(c.name + ": model option '" + key +
                     "' must be even and >= 2 (MinMax pairs channels), got " + std::to_string(v));
  return v;
}

class LiResNet : public Model {
 public:
  explicit LiResNet(const ModelConfig& c) : Model(c) {
    const int64_t depth = c.option_int("depth", 12);
    if (depth < 1) throw ModelError(c.name + ": model option 'depth' must be >= 1");
    const int64_t width = positive_even(c, "width", 32);
    std::string stem = c.option_string("stem", "auto");
    if (stem == "auto") stem = c.height >= 64 ? "patch" : "conv";
    c.resolve_option("stem", stem);  // exports record the stem chosen
    if (stem != "conv" && stem != "patch")
      throw ModelError(c.name + ": model option 'stem': expected auto, conv or patch, got '" +
                       stem + "'");
    const double alpha = c.option_double("alpha", 1.0 / std::sqrt(double(depth)));
    if (!(alpha > 0) || !std::isfinite(alpha))
      throw ModelError(c.name + ": model option 'alpha' must be positive");
    const bool center = c.option_int("center", 1) != 0;
    const std::string head = c.option_string("head", "lln");
    if (head != "lln" && head != "linear")
      throw ModelError(c.name + ": model option 'head': expected lln or linear, got '" + head +
                       "'");

    body_ = register_module("body", lipschitz::Sequential());
    if (!c.mean.empty())
      body_->push_back("normalize", lipschitz::InputNormalization(
                                        std::vector<double>(c.mean.begin(), c.mean.end()),
                                        std::vector<double>(c.std.begin(), c.std.end())));
    BoundedConv2dOptions stem_options(c.channels, width, 3, c.height, c.width);
    if (stem == "patch") {
      const int64_t patch = c.option_int("patch", c.height >= 64 ? 4 : 2);
      if (patch < 1 || c.height < patch || c.width < patch)
        throw ModelError(c.name + ": model option 'patch' (" + std::to_string(patch) +
                         ") does not fit the input " + std::to_string(c.height) + "x" +
                         std::to_string(c.width));
      stem_options =
          BoundedConv2dOptions(c.channels, width, patch, c.height, c.width).stride(patch);
    } else {
      stem_options.padding(1);
    }
    auto stem_conv = orthogonal(BoundedConv2d(stem_options));
    int64_t h = stem_conv->output_height(), w = stem_conv->output_width();
    body_->push_back("stem", stem_conv);
    body_->push_back("stem_act", lipschitz::MinMax());

    for (int64_t i = 0; i < depth; ++i) {
      lipschitz::Sequential block;
      BoundedConv2d conv(BoundedConv2dOptions(width, width, 3, h, w)
                             .padding(1)
                             .bias(!center)
                             .residual_scale(alpha));
      {
        at::NoGradGuard no_grad;
        conv->weight.normal_().div_(double(9 * width));
        if (conv->bias.defined()) conv->bias.zero_();
      }
      block->push_back("conv", conv);
      if (center) block->push_back("center", lipschitz::BatchCentering2d(width));
      block->push_back("act", lipschitz::MinMax());
      body_->push_back("block" + std::to_string(i), block);
    }

    // Neck: a strided conv to a map of about 7x7 (kernel = stride), flatten, a dense layer.
    const int64_t neck_width = positive_even(c, "neck_width", 2 * width);
    const int64_t neck_stride = c.option_int("neck_stride", std::max<int64_t>(1, h / 7));
    if (neck_stride < 1 || neck_stride > h || neck_stride > w)
      throw ModelError(c.name + ": model option 'neck_stride' (" + std::to_string(neck_stride) +
                       ") does not fit the " + std::to_string(h) + "x" + std::to_string(w) +
                       " feature map");
    auto neck = orthogonal(BoundedConv2d(
        BoundedConv2dOptions(width, neck_width, neck_stride, h, w).stride(neck_stride)));
    body_->push_back("neck_conv", neck);
    body_->push_back("neck_act", lipschitz::MinMax());
    body_->push_back("flatten", lipschitz::Flatten());
    const int64_t flat = neck_width * neck->output_height() * neck->output_width();
    const int64_t features = positive_even(c, "neck_features", 512);
    lipschitz::BoundedLinear dense(flat, features);
    orthogonal_init(dense->weight);
    body_->push_back("dense", dense);
    body_->push_back("dense_act", lipschitz::MinMax());

    if (head == "lln")
      lln_ = register_module("head", NormalizedLinear(features, c.num_classes));
    else
      linear_ = register_module("head", lipschitz::BoundedLinear(features, c.num_classes));
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor features = body_->forward(input);
    return lln_ ? lln_->forward(features) : linear_->forward(features);
  }

  at::Tensor lipschitz_bound(BoundMode mode) override {
    return body_->lipschitz_bound(mode) *
           (lln_ ? lln_->lipschitz_bound(mode) : linear_->lipschitz_bound(mode));
  }

  lipschitz::HeadSplit head_split(BoundMode mode) override {
    at::Tensor w;
    if (lln_) {
      w = lln_->normalized_weight(mode);
    } else {
      w = linear_->weight;
      if (mode != BoundMode::kTrain) w = w.detach();
      if (mode == BoundMode::kSound) w = w.to(at::kDouble);
    }
    return {body_->lipschitz_bound(mode), w};
  }

 private:
  static BoundedConv2d orthogonal(BoundedConv2d conv) {
    orthogonal_init(conv->weight);
    if (conv->bias.defined()) {
      at::NoGradGuard no_grad;
      conv->bias.zero_();
    }
    return conv;
  }

  lipschitz::Sequential body_{nullptr};
  NormalizedLinear lln_{nullptr};
  lipschitz::BoundedLinear linear_{nullptr};
};

}  // namespace

std::shared_ptr<Model> make_liresnet(const ModelConfig& config) {
  return std::make_shared<LiResNet>(config);
}

}  // namespace lmt::models
