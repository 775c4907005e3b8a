// ResNet-18/34 (basic blocks) and ResNet-50 (bottlenecks) with torchvision's layout and key names;
// each conv carries the batch-norm after it folded into its bound (norm=batch), or is followed by
// a batch centring of bound 1 (norm=center). Each residual branch ends in a zero-initialised scale
// (zero_init_residual=1, the default): every block starts as the identity. CIFAR stem (3x3, no
// max-pool) below 64 px, ImageNet stem (7x7/2 + 3x3/2 max-pool) from 64 px
// (option stem=auto|cifar|imagenet).
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/lipschitz/rules.h>
#include <lmt/models/heads.h>
#include <torch/nn/modules/container/modulelist.h>

#include "builtin_models.h"
#include "model_parts.h"

namespace lmt::models {
namespace {

using lipschitz::BoundedConv2d;
using lipschitz::BoundedConv2dOptions;
using lipschitz::BoundMode;

// A conv (no bias) followed by its normalisation: a BatchNorm2d folded into the conv's bound
// (norm=batch), or a batch centring (norm=center, a shift of bound 1: the conv's own norm).
struct ConvBn {
  BoundedConv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  lipschitz::BatchCentering2d center{nullptr};
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = conv->forward(x);
    return bn ? bn->forward(y) : center->forward(y);
  }
  at::Tensor bound(BoundMode mode) { return conv->spectral_norm(mode); }
  // The block's output starts at 0 (torchvision's zero_init_residual; Fixup without BN).
  void zero_init() {
    at::NoGradGuard no_grad;
    (bn ? bn->weight : conv->weight).zero_();
  }
};

ConvBn make_conv_bn(torch::nn::Module& owner, torch::nn::Module& bn_owner,
                    const std::string& conv_name, const std::string& bn_name, int64_t in,
                    int64_t out, int64_t kernel, int64_t stride, int64_t h, int64_t w,
                    bool center) {
  ConvBn cb;
  cb.conv =
      owner.register_module(conv_name, BoundedConv2d(BoundedConv2dOptions(in, out, kernel, h, w)
                                                         .stride(stride)
                                                         .padding(kernel / 2)
                                                         .bias(false)));
  if (center) {
    cb.center = bn_owner.register_module(bn_name, lipschitz::BatchCentering2d(out));
  } else {
    cb.bn = bn_owner.register_module(bn_name, torch::nn::BatchNorm2d(out));
    cb.conv->attach_batch_norm(cb.bn);
  }
  return cb;
}

// One residual block: y = relu(F(x) + S(x)), S the identity or a strided 1x1 conv + BN.
class Block : public torch::nn::Module {
 public:
  Block(bool bottleneck, int64_t in, int64_t planes, int64_t stride, int64_t h, int64_t w,
        bool center, bool zero_init_residual) {
    const int64_t expansion = bottleneck ? 4 : 1, out = planes * expansion;
    if (bottleneck) {
      branch_.push_back(make_conv_bn(*this, *this, "conv1", "bn1", in, planes, 1, 1, h, w, center));
      branch_.push_back(
          make_conv_bn(*this, *this, "conv2", "bn2", planes, planes, 3, stride, h, w, center));
      auto& c2 = branch_.back().conv;
      branch_.push_back(make_conv_bn(*this, *this, "conv3", "bn3", planes, out, 1, 1,
                                     c2->output_height(), c2->output_width(), center));
    } else {
      branch_.push_back(
          make_conv_bn(*this, *this, "conv1", "bn1", in, planes, 3, stride, h, w, center));
      auto& c1 = branch_.back().conv;
      branch_.push_back(make_conv_bn(*this, *this, "conv2", "bn2", planes, out, 3, 1,
                                     c1->output_height(), c1->output_width(), center));
    }
    if (zero_init_residual) branch_.back().zero_init();  // block = identity, bound 1 + 0
    out_h_ = branch_.back().conv->output_height();
    out_w_ = branch_.back().conv->output_width();
    if (stride != 1 || in != out) {
      auto downsample = register_module("downsample", std::make_shared<torch::nn::Module>());
      shortcut_ =
          make_conv_bn(*downsample, *downsample, "0", "1", in, out, 1, stride, h, w, center);
    }
  }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = x;
    for (size_t i = 0; i < branch_.size(); ++i) {
      y = branch_[i].forward(y);
      if (i + 1 < branch_.size()) y = y.relu();
    }
    return (y + (shortcut_.conv ? shortcut_.forward(x) : x)).relu();
  }

  at::Tensor bound(BoundMode mode) {
    at::Tensor branch = branch_[0].bound(mode);
    for (size_t i = 1; i < branch_.size(); ++i) branch = branch * branch_[i].bound(mode);
    return shortcut_.conv ? branch + shortcut_.bound(mode) : branch + 1.0;
  }

  int64_t out_h_ = 0, out_w_ = 0;

 private:
  std::vector<ConvBn> branch_;
  ConvBn shortcut_;
};

class ResNet : public Model {
 public:
  ResNet(const ModelConfig& c, bool bottleneck, std::vector<int64_t> layers) : Model(c) {
    std::string stem = c.option_string("stem", "auto");
    if (stem == "auto") stem = c.height >= 64 ? "imagenet" : "cifar";
    if (stem != "imagenet" && stem != "cifar")
      throw ModelError("model option 'stem': expected auto, cifar or imagenet, got '" + stem + "'");
    const int64_t base = c.option_int("width", 64);
    const bool center = uses_batch_centering(c);
    const bool zero_init_residual = c.option_int("zero_init_residual", 1) != 0;
    if (!c.mean.empty())
      normalize_ = register_module(
          "normalize",
          lipschitz::InputNormalization(std::vector<double>(c.mean.begin(), c.mean.end()),
                                        std::vector<double>(c.std.begin(), c.std.end())));
    const bool imagenet = stem == "imagenet";
    stem_ = make_conv_bn(*this, *this, "conv1", "bn1", c.channels, base, imagenet ? 7 : 3,
                         imagenet ? 2 : 1, c.height, c.width, center);
    int64_t h = stem_.conv->output_height(), w = stem_.conv->output_width();
    if (imagenet) {
      maxpool_ = register_module("maxpool", lipschitz::MaxPool2d(3, 2, 1));
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
        auto block = std::make_shared<Block>(bottleneck, in, planes, stride, h, w, center,
                                             zero_init_residual);
        list->push_back(block);
        blocks_.push_back(block);
        h = block->out_h_;
        w = block->out_w_;
        in = planes * expansion;
      }
    }
    pool_ = register_module("avgpool", lipschitz::GlobalAvgPool(h, w));
    if (uses_hypersphere_head(c))
      he_ = register_module("he_head", HypersphereHead(in, c.num_classes, hypersphere_scale(c)));
    else
      fc_ = register_module("fc", lipschitz::BoundedLinear(in, c.num_classes));
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = normalize_ ? normalize_->forward(input) : input;
    x = stem_.forward(x).relu();
    if (maxpool_) x = maxpool_->forward(x);
    for (auto& block : blocks_) x = block->forward(x);
    x = pool_->forward(x);
    return he_ ? he_->forward(x) : fc_->forward(x);
  }

  bool has_bound() const override { return !he_; }

  at::Tensor body_bound(BoundMode mode) {
    at::Tensor bound = stem_.bound(mode);
    if (normalize_) bound = bound * normalize_->lipschitz_bound(mode);
    if (maxpool_) bound = bound * maxpool_->lipschitz_bound(mode);
    for (auto& block : blocks_) bound = bound * block->bound(mode);
    return bound * pool_->lipschitz_bound(mode);
  }

  at::Tensor lipschitz_bound(BoundMode mode) override {
    if (he_) throw ModelError("resnet with head=he has no finite Lipschitz bound");
    return body_bound(mode) * fc_->spectral_norm(mode);
  }

  lipschitz::HeadSplit head_split(BoundMode mode) override {
    if (he_) return {};
    return {body_bound(mode),
            mode == BoundMode::kSound ? fc_->weight.detach().to(at::kDouble) : fc_->weight};
  }

 private:
  lipschitz::InputNormalization normalize_{nullptr};
  ConvBn stem_;
  lipschitz::MaxPool2d maxpool_{nullptr};
  std::vector<std::shared_ptr<Block>> blocks_;
  lipschitz::GlobalAvgPool pool_{nullptr};
  lipschitz::BoundedLinear fc_{nullptr};
  HypersphereHead he_{nullptr};  // replaces fc when the model option head=he
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
