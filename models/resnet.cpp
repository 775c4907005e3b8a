// ResNet-18/34 (basic blocks) and ResNet-50 (bottlenecks) with torchvision's layout and key names,
// declared once as a lipschitz::Sequential (forward and bound from the same tree). Each conv
// carries the batch-norm after it folded into its bound (lipschitz::ConvBatchNorm2d, norm=batch),
// or is followed by a batch centring of bound 1 (norm=center). Each residual branch ends in a
// zero-initialised scale (zero_init_residual=1, the default): every block starts as the identity.
// CIFAR stem (3x3, no max-pool) below 64 px, ImageNet stem (7x7/2 + 3x3/2 max-pool) from 64 px
// (option stem=auto|cifar|imagenet).
#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/models/heads.h>
#include <torch/nn/modules/container/modulelist.h>

#include "builtin_models.h"
#include "model_parts.h"

namespace lmt::models {
namespace {

namespace lip = lmt::lipschitz;
using lip::BoundedConv2d;
using lip::BoundedConv2dOptions;
using Part = std::shared_ptr<lip::BoundedModule>;

// A conv (no bias) on an h x w input followed by its normalisation, registered on `names` as
// `conv_name` and `bn_name` (torchvision's keys); h and w become the output size. The part is the
// pair with the BN folded into the conv (norm=batch) or conv then batch centring (norm=center).
// `zero_init`: the pair starts as 0 (torchvision's zero_init_residual; Fixup without BN).
Part conv_norm(torch::nn::Module& names, const std::string& conv_name, const std::string& bn_name,
               int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t& h, int64_t& w,
               bool center, bool zero_init = false) {
  auto conv =
      names.register_module(conv_name, BoundedConv2d(BoundedConv2dOptions(in, out, kernel, h, w)
                                                         .stride(stride)
                                                         .padding(kernel / 2)
                                                         .bias(false)));
  h = conv->output_height();
  w = conv->output_width();
  auto zero = [&](at::Tensor t) {
    at::NoGradGuard no_grad;
    if (zero_init) t.zero_();
  };
  if (center) {
    auto centring = names.register_module(bn_name, lip::BatchCentering2d(out));
    zero(conv->weight);
    return lip::Sequential(conv, centring).ptr();
  }
  auto bn = names.register_module(bn_name, torch::nn::BatchNorm2d(out));
  zero(bn->weight);
  return lip::ConvBatchNorm2d(conv, bn).ptr();
}

// One residual block relu(F(x) + S(x)), S the identity or a strided 1x1 conv + BN registered as
// "downsample" ("downsample.0", "downsample.1"). h and w become the output size.
Part block(torch::nn::Module& names, bool bottleneck, int64_t in, int64_t planes, int64_t stride,
           int64_t& h, int64_t& w, bool center, bool zero_init_residual) {
  const int64_t out = planes * (bottleneck ? 4 : 1);
  int64_t bh = h, bw = w;
  lip::Sequential branch;
  if (bottleneck) {
    branch->push_back(conv_norm(names, "conv1", "bn1", in, planes, 1, 1, bh, bw, center));
    branch->push_back(lip::ReLU());
    branch->push_back(conv_norm(names, "conv2", "bn2", planes, planes, 3, stride, bh, bw, center));
    branch->push_back(lip::ReLU());
    branch->push_back(
        conv_norm(names, "conv3", "bn3", planes, out, 1, 1, bh, bw, center, zero_init_residual));
  } else {
    branch->push_back(conv_norm(names, "conv1", "bn1", in, planes, 3, stride, bh, bw, center));
    branch->push_back(lip::ReLU());
    branch->push_back(
        conv_norm(names, "conv2", "bn2", planes, out, 3, 1, bh, bw, center, zero_init_residual));
  }
  lip::Residual residual{nullptr};
  if (stride != 1 || in != out) {
    auto downsample = names.register_module("downsample", std::make_shared<torch::nn::Module>());
    residual =
        lip::Residual(conv_norm(*downsample, "0", "1", in, out, 1, stride, h, w, center), branch);
  } else {
    residual = lip::Residual(branch);
  }
  h = bh;
  w = bw;
  return lip::Sequential(residual, lip::ReLU()).ptr();
}

class ResNet : public ComposedModel {
 public:
  ResNet(const ModelConfig& c, bool bottleneck, std::vector<int64_t> layers) : ComposedModel(c) {
    std::string stem = c.option_string("stem", "auto");
    if (stem == "auto") stem = c.height >= 64 ? "imagenet" : "cifar";
    c.resolve_option("stem", stem);  // exports record the stem chosen
    if (stem != "imagenet" && stem != "cifar")
      throw ModelError("model option 'stem': expected auto, cifar or imagenet, got '" + stem + "'");
    const int64_t base = c.option_int("width", 64);
    const bool center = uses_batch_centering(c);
    const bool zero_init_residual = c.option_int("zero_init_residual", 1) != 0;
    lip::Sequential net;
    if (auto normalize = make_input_normalization(*this, c)) net->push_back(normalize);
    const bool imagenet = stem == "imagenet";
    int64_t h = c.height, w = c.width;
    net->push_back(conv_norm(*this, "conv1", "bn1", c.channels, base, imagenet ? 7 : 3,
                             imagenet ? 2 : 1, h, w, center));
    net->push_back(lip::ReLU());
    if (imagenet) {
      net->push_back(register_module("maxpool", lip::MaxPool2d(3, 2, 1)));
      h = (h + 2 - 3) / 2 + 1;
      w = (w + 2 - 3) / 2 + 1;
    }
    int64_t in = base;
    const int64_t expansion = bottleneck ? 4 : 1;
    for (size_t stage = 0; stage < layers.size(); ++stage) {
      auto list = register_module("layer" + std::to_string(stage + 1), torch::nn::ModuleList());
      const int64_t planes = base << stage;
      for (int64_t i = 0; i < layers[stage]; ++i) {
        const int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
        auto names = std::make_shared<torch::nn::Module>();
        net->push_back(
            block(*names, bottleneck, in, planes, stride, h, w, center, zero_init_residual));
        list->push_back(names);
        in = planes * expansion;
      }
    }
    net->push_back(register_module("avgpool", lip::GlobalAvgPool(h, w)));
    const bool he = uses_hypersphere_head(c);
    if (he)
      net->push_back(
          register_module("he_head", HypersphereHead(in, c.num_classes, hypersphere_scale(c))));
    else
      net->push_back(register_module("fc", lip::BoundedLinear(in, c.num_classes)));
    set_network(net, /*bounded=*/!he);
  }
};

}  // namespace

std::shared_ptr<Model> make_resnet(const ModelConfig& config, int depth) {
  switch (depth) {
    case 18:
      return std::make_shared<ResNet>(config, false, std::vector<int64_t>{2, 2, 2, 2});
    case 34:
      return std::make_shared<ResNet>(config, false, std::vector<int64_t>{3, 4, 6, 3});
    case 50:
      return std::make_shared<ResNet>(config, true, std::vector<int64_t>{3, 4, 6, 3});
    default:
      throw ModelError("resnet: unsupported depth " + std::to_string(depth));
  }
}

}  // namespace lmt::models
