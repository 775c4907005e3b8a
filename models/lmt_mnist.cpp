// The network of the LMT paper's MNIST experiment (after Wong & Kolter 2018): two 4x4 stride-2
// convolutions (16, 32 channels), a 100-unit hidden layer and the class layer, ReLU between.
// Model option act=softplus swaps ReLU for softplus (also 1-Lipschitz, and smooth: the
// data-parallel equivalence tests use it, since a ReLU whose input sits at ~0 can flip between
// two reduction orders and make two runs different runs). Declared once as a lipschitz::Sequential:
// forward and bound come from the same tree.
#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/models/heads.h>

#include "builtin_models.h"
#include "model_parts.h"

namespace lmt::models {
namespace {

class LmtMnist : public ComposedModel {
 public:
  explicit LmtMnist(const ModelConfig& c) : ComposedModel(c) {
    namespace lip = lmt::lipschitz;
    const int64_t hidden = c.option_int("hidden", 100);
    const std::string act = c.option_string("act", "relu");
    if (act != "relu" && act != "softplus")
      throw ModelError("model option act: expected relu or softplus, got '" + act + "'");
    auto activation = [&]() -> std::shared_ptr<lip::BoundedModule> {
      if (act == "softplus") return lip::Softplus().ptr();
      return lip::ReLU().ptr();
    };
    lip::Sequential net;
    if (auto normalize = make_input_normalization(*this, c)) net->push_back(normalize);
    auto conv1 = register_module(
        "conv1",
        lip::BoundedConv2d(
            lip::BoundedConv2dOptions(c.channels, 16, 4, c.height, c.width).stride(2).padding(1)));
    auto conv2 = register_module(
        "conv2", lip::BoundedConv2d(lip::BoundedConv2dOptions(16, 32, 4, conv1->output_height(),
                                                              conv1->output_width())
                                        .stride(2)
                                        .padding(1)));
    const int64_t flat = 32 * conv2->output_height() * conv2->output_width();
    auto fc1 = register_module("fc1", lip::BoundedLinear(flat, hidden));
    net->push_back(conv1);
    net->push_back(activation());
    net->push_back(conv2);
    net->push_back(activation());
    net->push_back(lip::Flatten());
    net->push_back(fc1);
    net->push_back(activation());
    const bool he = uses_hypersphere_head(c);
    if (he)
      net->push_back(
          register_module("he_head", HypersphereHead(hidden, c.num_classes, hypersphere_scale(c))));
    else
      net->push_back(register_module("fc2", lip::BoundedLinear(hidden, c.num_classes)));
    set_network(net, /*bounded=*/!he);
  }
};

}  // namespace

std::shared_ptr<Model> make_lmt_mnist(const ModelConfig& config) {
  return std::make_shared<LmtMnist>(config);
}

}  // namespace lmt::models
