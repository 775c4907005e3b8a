// LipShiFT (Menon, Franco, Guennemann 2025): a Lipschitz ShiftViT. Patch embedding (p x p
// stride-p conv + CenterNorm), stages of blocks, patch merging (CenterNorm + 2x2 stride-2 conv,
// doubling the width) between stages, final CenterNorm, global average pool, dropout-free
// row-normalized ("LLN") linear head. Block: s = shift(x) (4/n_div of the channels move one
// pixel left/right/up/down, zero fill; no residual, as in ShiftViT);
// y = s + drop_path(b * MinMax(z + a * conv3x3(z))), z = CenterNorm(s), a and b learned
// per-channel scales (initialised to alpha). Bound = product of the parts:
// block 1 * (1 + L_cn * (1 + max|a| L_conv) * max|b|); never scaled by a keep probability.
// Options: depths, width, patch, n_div, alpha, dropout (after the embedding), drop_path (max,
// linear over the blocks).
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/lipschitz/rules.h>
#include <torch/nn/modules/container/modulelist.h>

#include "builtin_models.h"
#include "model_parts.h"

namespace lmt::models {
namespace {

using lipschitz::BoundedConv2d;
using lipschitz::BoundedConv2dOptions;
using lipschitz::BoundMode;

BoundedConv2d orthogonal_conv(const BoundedConv2dOptions& options) {
  BoundedConv2d conv(options);
  orthogonal_init(conv->weight);
  if (conv->bias.defined()) {
    at::NoGradGuard no_grad;
    conv->bias.zero_();
  }
  return conv;
}

class ShiftBlock : public torch::nn::Module {
 public:
  ShiftBlock(int64_t dim, int64_t h, int64_t w, int64_t n_div, double alpha, double drop_path)
      : drop_path_(drop_path) {
    shift_ = register_module("shift", lipschitz::Shift(n_div));
    norm_ = register_module("norm", lipschitz::CenterNorm(dim));
    conv_ = register_module("conv",
                            orthogonal_conv(BoundedConv2dOptions(dim, dim, 3, h, w).padding(1)));
    conv_scale_ = register_parameter("conv_scale", at::full({dim}, alpha));
    act_ = register_module("act", lipschitz::MinMax());
    scale_ = register_parameter("scale", at::full({dim}, alpha));
  }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor s = shift_->forward(x);
    at::Tensor z = norm_->forward(s);
    at::Tensor y = act_->forward(z + conv_scale_.view({1, -1, 1, 1}) * conv_->forward(z));
    y = scale_.view({1, -1, 1, 1}) * y;
    if (is_training() && drop_path_ > 0) {
      const double keep = 1.0 - drop_path_;
      y = y * at::bernoulli(at::full({y.size(0), 1, 1, 1}, keep, y.options())) / keep;
    }
    return s + y;
  }

  at::Tensor bound(BoundMode mode) {
    at::Tensor mlp = 1.0 + max_abs_bound(conv_scale_, mode) * conv_->spectral_norm(mode);
    at::Tensor branch = norm_->lipschitz_bound(mode) * mlp * act_->lipschitz_bound(mode) *
                        max_abs_bound(scale_, mode);
    return shift_->lipschitz_bound(mode) * (1.0 + branch);
  }

 private:
  double drop_path_;
  lipschitz::Shift shift_{nullptr};
  lipschitz::CenterNorm norm_{nullptr};
  BoundedConv2d conv_{nullptr};
  at::Tensor conv_scale_, scale_;
  lipschitz::MinMax act_{nullptr};
};

// CenterNorm followed by a 2x2 stride-2 conv that doubles the width.
class PatchMerging : public torch::nn::Module {
 public:
  PatchMerging(int64_t dim, int64_t h, int64_t w) {
    norm_ = register_module("norm", lipschitz::CenterNorm(dim));
    reduction_ = register_module(
        "reduction",
        orthogonal_conv(BoundedConv2dOptions(dim, 2 * dim, 2, h, w).stride(2).bias(false)));
  }
  at::Tensor forward(const at::Tensor& x) { return reduction_->forward(norm_->forward(x)); }
  at::Tensor bound(BoundMode mode) {
    return norm_->lipschitz_bound(mode) * reduction_->spectral_norm(mode);
  }
  int64_t out_h() const { return reduction_->output_height(); }
  int64_t out_w() const { return reduction_->output_width(); }

 private:
  lipschitz::CenterNorm norm_{nullptr};
  BoundedConv2d reduction_{nullptr};
};

struct Preset {
  std::vector<int64_t> depths;
  int64_t width, patch;
  double dropout, drop_path;
};

class LipShift : public Model {
 public:
  LipShift(const ModelConfig& c, const Preset& preset) : Model(c) {
    const auto depths = c.option_ints("depths", preset.depths);
    const int64_t width = c.option_int("width", preset.width);
    const int64_t patch = c.option_int("patch", preset.patch);
    const int64_t n_div = c.option_int("n_div", 12);
    const double alpha = c.option_double("alpha", 0.2);
    dropout_ = c.option_double("dropout", preset.dropout);
    const double drop_path = c.option_double("drop_path", preset.drop_path);
    if (depths.empty())
      throw ModelError(c.name + ": model option 'depths' needs at least one stage");
    int64_t total = 0;
    for (int64_t d : depths) {
      if (d < 1) throw ModelError(c.name + ": model option 'depths': every stage needs >= 1 block");
      total += d;
    }
    if (width < 2 || width % 2 != 0)
      throw ModelError(c.name +
                       ": model option 'width' must be even (MinMax pairs channels), got " +
                       std::to_string(width));
    if (patch < 1 || c.height / patch < 1 || c.width / patch < 1)
      throw ModelError(c.name + ": model option 'patch' (" + std::to_string(patch) +
                       ") does not fit the input " + std::to_string(c.height) + "x" +
                       std::to_string(c.width));
    if (!(dropout_ >= 0 && dropout_ < 1) || !(drop_path >= 0 && drop_path < 1))
      throw ModelError(c.name + ": model options 'dropout' and 'drop_path' must be in [0, 1)");

    normalize_ = make_input_normalization(*this, c);
    auto embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
    embed_ = embed->register_module(
        "proj",
        orthogonal_conv(
            BoundedConv2dOptions(c.channels, width, patch, c.height, c.width).stride(patch)));
    embed_norm_ = embed->register_module("norm", lipschitz::CenterNorm(width));
    int64_t h = embed_->output_height(), w = embed_->output_width(), dim = width, index = 0;
    auto layers = register_module("layers", torch::nn::ModuleList());
    for (size_t stage = 0; stage < depths.size(); ++stage) {
      auto layer = std::make_shared<torch::nn::Module>();
      auto list = layer->register_module("blocks", torch::nn::ModuleList());
      for (int64_t i = 0; i < depths[stage]; ++i, ++index) {
        const double rate = total > 1 ? drop_path * double(index) / double(total - 1) : 0.0;
        blocks_.push_back(std::make_shared<ShiftBlock>(dim, h, w, n_div, alpha, rate));
        list->push_back(blocks_.back());
        stage_of_.push_back(stage);
      }
      if (stage + 1 < depths.size()) {
        if (h < 2 || w < 2)
          throw ModelError(c.name + ": the input is too small for " +
                           std::to_string(depths.size()) + " stages with patch " +
                           std::to_string(patch) + " (use --pad-to or fewer 'depths')");
        merges_.push_back(
            layer->register_module("downsample", std::make_shared<PatchMerging>(dim, h, w)));
        h = merges_.back()->out_h();
        w = merges_.back()->out_w();
        dim *= 2;
      }
      layers->push_back(layer);
    }
    norm_ = register_module("norm", lipschitz::CenterNorm(dim));
    pool_ = register_module("avgpool", lipschitz::GlobalAvgPool(h, w));
    head_ = register_module("head", NormalizedLinear(dim, c.num_classes));
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = normalize_ ? normalize_->forward(input) : input;
    x = embed_norm_->forward(embed_->forward(x));
    if (dropout_ > 0) x = at::dropout(x, dropout_, is_training());
    for (size_t i = 0; i < blocks_.size(); ++i) {
      x = blocks_[i]->forward(x);
      if (i + 1 == blocks_.size() || stage_of_[i + 1] != stage_of_[i])
        if (stage_of_[i] < merges_.size()) x = merges_[stage_of_[i]]->forward(x);
    }
    return head_->forward(pool_->forward(norm_->forward(x)));
  }

  at::Tensor body_bound(BoundMode mode) {
    at::Tensor bound = embed_->spectral_norm(mode) * embed_norm_->lipschitz_bound(mode);
    if (normalize_) bound = bound * normalize_->lipschitz_bound(mode);
    for (auto& block : blocks_) bound = bound * block->bound(mode);
    for (auto& merge : merges_) bound = bound * merge->bound(mode);
    return bound * norm_->lipschitz_bound(mode) * pool_->lipschitz_bound(mode);
  }

  at::Tensor lipschitz_bound(BoundMode mode) override {
    return body_bound(mode) * head_->lipschitz_bound(mode);
  }

  lipschitz::HeadSplit head_split(BoundMode mode) override {
    return {body_bound(mode), head_->normalized_weight(mode)};
  }

 private:
  double dropout_ = 0;
  lipschitz::InputNormalization normalize_{nullptr};
  BoundedConv2d embed_{nullptr};
  lipschitz::CenterNorm embed_norm_{nullptr};
  std::vector<std::shared_ptr<ShiftBlock>> blocks_;
  std::vector<size_t> stage_of_;
  std::vector<std::shared_ptr<PatchMerging>> merges_;
  lipschitz::CenterNorm norm_{nullptr};
  lipschitz::GlobalAvgPool pool_{nullptr};
  NormalizedLinear head_{nullptr};
};

}  // namespace

std::shared_ptr<Model> make_lipshift(const ModelConfig& config, bool cifar_preset) {
  // `lipshift`: the reference code's class defaults (width 96, depths 2,2,6,2, patch 4) without
  // dropout; `lipshift-cifar`: the published CIFAR setting and its dropout / drop-path rates.
  const Preset preset = cifar_preset ? Preset{{6, 6, 10, 6}, 192, 2, 0.4, 0.2}
                                     : Preset{{2, 2, 6, 2}, 96, 4, 0.0, 0.0};
  return std::make_shared<LipShift>(config, preset);
}

}  // namespace lmt::models
