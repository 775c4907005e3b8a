// LipShiFT (Menon, Franco, Guennemann 2025): a Lipschitz ShiftViT. Patch embedding (p x p
// stride-p conv + CenterNorm), stages of blocks, patch merging (CenterNorm + 2x2 stride-2 conv,
// doubling the width) between stages, final CenterNorm, global average pool, dropout-free
// row-normalized ("LLN") linear head. Block: s = shift(x) (4/n_div of the channels move one
// pixel left/right/up/down, zero fill; no residual, as in ShiftViT);
// y = s + drop_path(b * MinMax(z + a * conv3x3(z))), z = CenterNorm(s), a and b learned
// per-channel scales (initialised to alpha). Declared once as a lipschitz::Sequential, so the
// bound is the product of the parts that run: block 1 * (1 + L_cn * (1 + L_conv max|a|) * max|b|);
// never scaled by a keep probability.
// Options: depths, width, patch, n_div, alpha, dropout (after the embedding), drop_path (max,
// linear over the blocks).
#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <torch/nn/modules/container/modulelist.h>

#include "builtin_models.h"
#include "model_parts.h"

namespace lmt::models {
namespace {

namespace lip = lmt::lipschitz;
using lip::BoundedConv2d;
using lip::BoundedConv2dOptions;
using Part = std::shared_ptr<lip::BoundedModule>;

BoundedConv2d orthogonal_conv(const BoundedConv2dOptions& options) {
  BoundedConv2d conv(options);
  orthogonal_init(conv->weight);
  if (conv->bias.defined()) {
    at::NoGradGuard no_grad;
    conv->bias.zero_();
  }
  return conv;
}

// One block, its layers registered on `names` as shift, norm, conv, conv_scale (a), act, scale
// (b): the reference layout.
Part shift_block(torch::nn::Module& names, int64_t dim, int64_t h, int64_t w, int64_t n_div,
                 double alpha, double drop_path) {
  auto shift = names.register_module("shift", lip::Shift(n_div));
  auto norm = names.register_module("norm", lip::CenterNorm(dim));
  auto conv = names.register_module(
      "conv", orthogonal_conv(BoundedConv2dOptions(dim, dim, 3, h, w).padding(1)));
  lip::ChannelScale conv_scale(at::full({dim}, alpha));
  names.register_parameter("conv_scale", conv_scale->weight);
  auto act = names.register_module("act", lip::MinMax());
  lip::ChannelScale scale(at::full({dim}, alpha));
  names.register_parameter("scale", scale->weight);
  lip::Sequential branch(norm, lip::Residual(lip::Sequential(conv, conv_scale)), act, scale);
  if (drop_path > 0) branch->push_back(lip::DropPath(drop_path));
  return lip::Sequential(shift, lip::Residual(branch)).ptr();
}

struct Preset {
  std::vector<int64_t> depths;
  int64_t width, patch;
  double dropout, drop_path;
};

class LipShift : public ComposedModel {
 public:
  LipShift(const ModelConfig& c, const Preset& preset) : ComposedModel(c) {
    const auto depths = c.option_ints("depths", preset.depths);
    const int64_t width = c.option_int("width", preset.width);
    const int64_t patch = c.option_int("patch", preset.patch);
    const int64_t n_div = c.option_int("n_div", 12);
    const double alpha = c.option_double("alpha", 0.2);
    const double dropout = c.option_double("dropout", preset.dropout);
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
    if (!(dropout >= 0 && dropout < 1) || !(drop_path >= 0 && drop_path < 1))
      throw ModelError(c.name + ": model options 'dropout' and 'drop_path' must be in [0, 1)");

    lip::Sequential net;
    if (auto normalize = make_input_normalization(*this, c)) net->push_back(normalize);
    auto embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
    auto proj = embed->register_module(
        "proj",
        orthogonal_conv(
            BoundedConv2dOptions(c.channels, width, patch, c.height, c.width).stride(patch)));
    net->push_back(proj);
    net->push_back(embed->register_module("norm", lip::CenterNorm(width)));
    if (dropout > 0) net->push_back(lip::Dropout(dropout));
    int64_t h = proj->output_height(), w = proj->output_width(), dim = width, index = 0;
    auto layers = register_module("layers", torch::nn::ModuleList());
    for (size_t stage = 0; stage < depths.size(); ++stage) {
      auto layer = std::make_shared<torch::nn::Module>();
      auto list = layer->register_module("blocks", torch::nn::ModuleList());
      for (int64_t i = 0; i < depths[stage]; ++i, ++index) {
        const double rate = total > 1 ? drop_path * double(index) / double(total - 1) : 0.0;
        auto names = std::make_shared<torch::nn::Module>();
        net->push_back(shift_block(*names, dim, h, w, n_div, alpha, rate));
        list->push_back(names);
      }
      if (stage + 1 < depths.size()) {  // patch merging: CenterNorm, 2x2 stride-2 conv
        if (h < 2 || w < 2)
          throw ModelError(c.name + ": the input is too small for " +
                           std::to_string(depths.size()) + " stages with patch " +
                           std::to_string(patch) + " (use --pad-to or fewer 'depths')");
        auto merge = layer->register_module("downsample", std::make_shared<torch::nn::Module>());
        net->push_back(merge->register_module("norm", lip::CenterNorm(dim)));
        auto reduction = merge->register_module(
            "reduction",
            orthogonal_conv(BoundedConv2dOptions(dim, 2 * dim, 2, h, w).stride(2).bias(false)));
        net->push_back(reduction);
        h = reduction->output_height();
        w = reduction->output_width();
        dim *= 2;
      }
      layers->push_back(layer);
    }
    net->push_back(register_module("norm", lip::CenterNorm(dim)));
    net->push_back(register_module("avgpool", lip::GlobalAvgPool(h, w)));
    net->push_back(register_module("head", NormalizedLinear(dim, c.num_classes)));
    set_network(net);
  }
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
