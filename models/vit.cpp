// ViT in DeiT sizes (Touvron et al. 2021): patch-embedding conv, class token, learned position
// embedding, pre-norm blocks x + attn(LN(x)), x + mlp(LN(x)) with multi-head dot-product
// attention and a GELU MLP, final LayerNorm, linear head on the class token. Options: patch,
// depth, width, heads, mlp_ratio. Dot-product attention and LayerNorm have no finite global
// Lipschitz constant, so the model has no bound: lipschitz_bound() refuses.
#include <cmath>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "builtin_models.h"
#include "model_parts.h"

namespace lmt::models {
namespace {

torch::nn::Linear linear(int64_t in, int64_t out) {
  torch::nn::Linear layer(in, out);
  at::NoGradGuard no_grad;
  layer->weight.normal_(0, 0.02).clamp_(-0.04, 0.04);  // truncated normal, as timm
  layer->bias.zero_();
  return layer;
}

torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6));
}

class Attention : public torch::nn::Module {
 public:
  Attention(int64_t dim, int64_t heads)
      : heads_(heads), scale_(1.0 / std::sqrt(double(dim / heads))) {
    qkv_ = register_module("qkv", linear(dim, 3 * dim));
    proj_ = register_module("proj", linear(dim, dim));
  }
  at::Tensor forward(const at::Tensor& x) {
    const int64_t b = x.size(0), n = x.size(1), d = x.size(2);
    at::Tensor qkv =
        qkv_->forward(x).reshape({b, n, 3, heads_, d / heads_}).permute({2, 0, 3, 1, 4});
    at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
    at::Tensor attn = (at::matmul(q, k.transpose(-2, -1)) * scale_).softmax(-1);
    return proj_->forward(at::matmul(attn, v).transpose(1, 2).reshape({b, n, d}));
  }

 private:
  int64_t heads_;
  double scale_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
};

class Block : public torch::nn::Module {
 public:
  Block(int64_t dim, int64_t heads, int64_t hidden) {
    norm1_ = register_module("norm1", layer_norm(dim));
    attn_ = register_module("attn", std::make_shared<Attention>(dim, heads));
    norm2_ = register_module("norm2", layer_norm(dim));
    fc1_ = register_module("fc1", linear(dim, hidden));
    fc2_ = register_module("fc2", linear(hidden, dim));
  }
  at::Tensor forward(at::Tensor x) {
    x = x + attn_->forward(norm1_->forward(x));
    return x + fc2_->forward(at::gelu(fc1_->forward(norm2_->forward(x))));
  }

 private:
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  std::shared_ptr<Attention> attn_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};

class VisionTransformer : public Model {
 public:
  VisionTransformer(const ModelConfig& c, int64_t default_width, int64_t default_heads) : Model(c) {
    const int64_t patch = c.option_int("patch", 16), depth = c.option_int("depth", 12);
    const int64_t width = c.option_int("width", default_width);
    const int64_t heads = c.option_int("heads", default_heads);
    const double mlp_ratio = c.option_double("mlp_ratio", 4.0);
    if (patch < 1 || c.height % patch != 0 || c.width % patch != 0)
      throw ModelError(c.name + ": input " + std::to_string(c.height) + "x" +
                       std::to_string(c.width) + " is not divisible by model option 'patch' (" +
                       std::to_string(patch) + "); choose another patch or --pad-to");
    if (depth < 1 || heads < 1 || width % heads != 0)
      throw ModelError(c.name + ": model options need depth >= 1 and width (" +
                       std::to_string(width) + ") divisible by heads (" + std::to_string(heads) +
                       ")");
    const int64_t tokens = (c.height / patch) * (c.width / patch) + 1;
    normalize_ = make_input_normalization(*this, c);
    patch_embed_ = register_module(
        "patch_embed",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(c.channels, width, patch).stride(patch)));
    cls_token_ = register_parameter("cls_token", at::zeros({1, 1, width}));
    pos_embed_ = register_parameter("pos_embed", at::zeros({1, tokens, width}));
    {
      at::NoGradGuard no_grad;
      cls_token_.normal_(0, 0.02).clamp_(-0.04, 0.04);
      pos_embed_.normal_(0, 0.02).clamp_(-0.04, 0.04);
    }
    auto list = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < depth; ++i) {
      blocks_.push_back(std::make_shared<Block>(width, heads, int64_t(width * mlp_ratio)));
      list->push_back(blocks_.back());
    }
    norm_ = register_module("norm", layer_norm(width));
    head_ = register_module("head", linear(width, c.num_classes));
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = normalize_ ? normalize_->forward(input) : input;
    x = patch_embed_->forward(x).flatten(2).transpose(1, 2);  // [N, T, D]
    x = at::cat({cls_token_.expand({x.size(0), 1, x.size(2)}), x}, 1) + pos_embed_;
    for (auto& block : blocks_) x = block->forward(x);
    return head_->forward(norm_->forward(x).select(1, 0));
  }

  bool has_bound() const override { return false; }

  at::Tensor lipschitz_bound(lipschitz::BoundMode /*mode*/) override { throw refusal(); }
  lipschitz::HeadSplit head_split(lipschitz::BoundMode /*mode*/) override { throw refusal(); }

 private:
  lipschitz::BoundError refusal() const {
    return lipschitz::BoundError(
        config_.name +
        " has no finite global Lipschitz bound (dot-product attention, LayerNorm); train it "
        "with --loss ce/pgd-at/trades; certification is refused");
  }

  lipschitz::InputNormalization normalize_{nullptr};
  torch::nn::Conv2d patch_embed_{nullptr};
  at::Tensor cls_token_, pos_embed_;
  std::vector<std::shared_ptr<Block>> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};

}  // namespace

std::shared_ptr<Model> make_vit(const ModelConfig& config, int64_t width, int64_t heads) {
  return std::make_shared<VisionTransformer>(config, width, heads);
}

}  // namespace lmt::models
