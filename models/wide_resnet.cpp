// WideResNet-d-k (Zagoruyko & Komodakis 2016), CIFAR layout with pre-activation blocks:
// conv3x3(16) -> 3 groups of (d-4)/6 blocks of widths 16k, 32k, 64k (strides 1, 2, 2) ->
// BN-ReLU -> global average pool -> linear. Block: a = relu(bn1(x));
// y = conv2(dropout(relu(bn2(conv1(a))))) + (x, or conv1x1(a) when the shape changes).
// Declared once as a lipschitz::Sequential (forward and bound from the same tree).
// Batch-norm bounds: bn2 directly follows conv1 and is folded into conv1's operator
// (lipschitz::ConvBatchNorm2d); the first block's bn1 directly follows the stem conv when nothing
// else reads the stem output, and is folded there; every other bn1 and the final bn follow a
// residual sum and are bounded by the rule max|gamma|/sqrt(var+eps)
// (lipschitz::BoundedBatchNorm2d). norm=center replaces every BN by a batch centring (bound 1).
// conv2 starts at zero (zero_init_residual=1, the default): every block starts as its shortcut.
// Options: depth, widen, dropout, norm (batch|center), zero_init_residual (1|0).
#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>

#include "builtin_models.h"
#include "model_parts.h"

namespace lmt::models {
namespace {

namespace lip = lmt::lipschitz;
using lip::BoundedConv2d;
using lip::BoundedConv2dOptions;
using Part = std::shared_ptr<lip::BoundedModule>;

BoundedConv2d conv3x3(int64_t in, int64_t out, int64_t stride, int64_t h, int64_t w) {
  return BoundedConv2d(
      BoundedConv2dOptions(in, out, 3, h, w).stride(stride).padding(1).bias(false));
}

// One pre-activation block, its layers registered on `names` (conv1, bn1, bn2, conv2, shortcut:
// the reference layout and order). h and w become the output size. When `stem` (the part of
// `stem_conv`) is given, the block has a projection shortcut (so x only enters through bn1) and
// norm=batch, bn1 is folded into the stem conv: *stem becomes that pair and the block starts at
// relu(bn1(x)).
Part wide_block(torch::nn::Module& names, int64_t in, int64_t out, int64_t stride, int64_t& h,
                int64_t& w, double dropout, bool center, bool zero_init_residual,
                const BoundedConv2d& stem_conv, Part* stem) {
  auto conv1 = names.register_module("conv1", conv3x3(in, out, stride, h, w));
  Part norm1;
  torch::nn::BatchNorm2d bn1{nullptr};
  lip::Sequential branch;
  if (center) {
    norm1 = names.register_module("bn1", lip::BatchCentering2d(in));
    auto center2 = names.register_module("bn2", lip::BatchCentering2d(out));
    branch->push_back(lip::Sequential(conv1, center2));
  } else {
    bn1 = names.register_module("bn1", torch::nn::BatchNorm2d(in));
    auto bn2 = names.register_module("bn2", torch::nn::BatchNorm2d(out));
    norm1 = lip::BoundedBatchNorm2d(bn1).ptr();
    branch->push_back(lip::ConvBatchNorm2d(conv1, bn2));
  }
  branch->push_back(lip::ReLU());
  if (dropout > 0) branch->push_back(lip::Dropout(dropout));
  const int64_t out_h = conv1->output_height(), out_w = conv1->output_width();
  auto conv2 = names.register_module("conv2", conv3x3(out, out, 1, out_h, out_w));
  if (zero_init_residual) {  // the branch starts at 0 (Fixup; bound 0 until it learns)
    at::NoGradGuard no_grad;
    conv2->weight.zero_();
  }
  branch->push_back(conv2);
  lip::Sequential result;
  if (in != out || stride != 1) {  // the shortcut reads relu(bn1(x)) too
    auto shortcut = names.register_module(
        "shortcut",
        BoundedConv2d(BoundedConv2dOptions(in, out, 1, h, w).stride(stride).bias(false)));
    if (stem && bn1)
      *stem = lip::ConvBatchNorm2d(stem_conv, bn1).ptr();
    else
      result->push_back(norm1);
    result->push_back(lip::ReLU());
    result->push_back(lip::Parallel(branch, shortcut));
  } else {
    result->push_back(lip::Residual(lip::Sequential(norm1, lip::ReLU(), branch)));
  }
  h = out_h;
  w = out_w;
  return result.ptr();
}

class WideResNet : public ComposedModel {
 public:
  WideResNet(const ModelConfig& c, int64_t default_depth, int64_t default_widen)
      : ComposedModel(c) {
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
    lip::Sequential net;
    if (auto normalize = make_input_normalization(*this, c)) net->push_back(normalize);
    auto stem_conv = register_module("conv1", conv3x3(c.channels, 16, 1, c.height, c.width));
    Part stem = stem_conv;
    int64_t h = stem_conv->output_height(), w = stem_conv->output_width(), in = 16;
    std::vector<Part> blocks;
    for (int64_t group = 0; group < 3; ++group) {
      auto list = register_module("block" + std::to_string(group + 1), torch::nn::ModuleList());
      const int64_t out = (16 << group) * widen;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t stride = (group > 0 && i == 0) ? 2 : 1;
        auto names = std::make_shared<torch::nn::Module>();
        blocks.push_back(wide_block(*names, in, out, stride, h, w, dropout, center,
                                    zero_init_residual, stem_conv,
                                    blocks.empty() ? &stem : nullptr));
        list->push_back(names);
        in = out;
      }
    }
    net->push_back(stem);
    for (auto& b : blocks) net->push_back(b);
    if (center)
      net->push_back(register_module("bn", lip::BatchCentering2d(in)));
    else
      net->push_back(lip::BoundedBatchNorm2d(register_module("bn", torch::nn::BatchNorm2d(in))));
    net->push_back(lip::ReLU());
    net->push_back(register_module("avgpool", lip::GlobalAvgPool(h, w)));
    net->push_back(register_module("fc", lip::BoundedLinear(in, c.num_classes)));
    set_network(net);
  }
};

}  // namespace

std::shared_ptr<Model> make_wide_resnet(const ModelConfig& config, int depth, int widen) {
  return std::make_shared<WideResNet>(config, depth, widen);
}

}  // namespace lmt::models
