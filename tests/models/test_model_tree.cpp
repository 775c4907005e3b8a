// Every built-in model is declared once as a lipschitz tree: its bound is computed from the layers
// that run forward. For every multiplicative tensor (weights, gains, scales, BN variances),
// doubling it moves the logits exactly when it moves the bound, and doubling any spectral
// operator's weight moves both the logits and the sound bound: a layer added to forward but not to
// the bound, or to the bound but not to forward, fails here. The sound bound of the changed models
// still dominates the logit-difference slopes found along steepest directions. The state-dict
// layout (names, order, shapes, dtypes) of every model is pinned, so model files written before
// keep loading.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <torch/csrc/autograd/autograd.h>

#include <lmt/lipschitz/bounded_module.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/models/model.h>

#include "zoo.h"

namespace lm = lmt::models;
namespace lip = lmt::lipschitz;
using lip::BoundMode;

namespace {

double value(const at::Tensor& t) { return t.to(at::kDouble).item<double>(); }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Every model with a bound: the zoo's list and any other registered model (a new architecture)
// whose small configuration has one and fewer than 5 M parameters (resnet34 at its default width,
// 21 M, would take minutes here; it is resnet18's code with other stage depths).
std::vector<std::string> tree_models() {
  std::vector<std::string> specs = lm::testing::bounded_models();
  for (const auto& name : lm::model_names()) {
    if (std::find(specs.begin(), specs.end(), name) != specs.end()) continue;
    auto model = lm::make_model(lm::testing::small_config(name));
    if (model->has_bound() && lm::parameter_count(*model) < 5000000) specs.push_back(name);
  }
  for (const std::string extra : {"lmt-mnist:act=softplus", "resnet18:stem=imagenet"})
    specs.push_back(extra);
  return specs;
}

// A small instance (size x size inputs) off its initialisation, in eval mode, in float64 (so that
// the forward is exact enough for the slope checks; the kSound bound reads the same values:
// float32 -> float64 is exact).
std::shared_ptr<lm::Model> small_model(const std::string& spec, uint64_t seed, int64_t size) {
  at::manual_seed(seed);
  auto model = lm::make_model(lm::testing::small_config(spec, 1, size));
  lm::testing::randomize_normalizations(*model);
  lip::power_iteration_step(*model, 5);
  model->eval();
  model->to(at::kDouble);
  return model;
}

// The multiplicative tensors: doubling one scales some layer's map (weights of convs, linears and
// heads, BN and CenterNorm gains, LipShiFT's channel scales; a BN variance scales its map by
// 1/sqrt(2)). Biases, means and power-iteration vectors are left out (a shift does not change a
// Lipschitz constant).
std::vector<std::pair<std::string, at::Tensor>> multiplicative_tensors(lm::Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : model.named_parameters())
    if (ends_with(p.key(), "weight") || ends_with(p.key(), "scale"))
      out.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers())
    if (ends_with(b.key(), "running_var")) out.emplace_back(b.key(), b.value());
  return out;
}

// How much the logits on `x` and the bound in `mode` move when `t` is doubled (then restored).
struct Moves {
  double logits = 0;  // max |change| / max |logit|
  double bound = 0;   // |change| / bound
};
Moves moves_when_doubled(lm::Model& model, at::Tensor t, const at::Tensor& x, BoundMode mode) {
  at::NoGradGuard no_grad;
  const at::Tensor logits = model.forward(x);
  const double bound = value(model.lipschitz_bound(mode));
  const at::Tensor saved = t.clone();
  t.mul_(2.0);
  Moves m;
  m.logits = value((model.forward(x) - logits).abs().max() / logits.abs().max());
  m.bound = std::abs(value(model.lipschitz_bound(mode)) - bound) / bound;
  t.copy_(saved);
  return m;
}

// The largest secant slope |d(y) - d(x)| / ||y - x|| of a logit difference d = F_i - F_j over
// random points x in [0,1] (8 per class pair), y one step of 0.1 along the input gradient of d at
// x (float64): a finite-difference probe of the steepest direction.
double steepest_secant_slope(lm::Model& model, at::IntArrayRef shape, int64_t classes) {
  double best = 0;
  for (int64_t i = 0; i < classes; ++i) {
    for (int64_t j = i + 1; j < classes; ++j) {
      for (int point = 0; point < 8; ++point) {
        at::Tensor x = at::rand(shape, at::kDouble).requires_grad_(true);
        at::Tensor fx = model.forward(x);
        at::Tensor dx = (fx.select(1, i) - fx.select(1, j)).sum();
        at::Tensor g = torch::autograd::grad({dx}, {x})[0];
        at::NoGradGuard no_grad;
        at::Tensor y = x + 0.1 * g / g.norm().clamp_min(1e-12);
        at::Tensor fy = model.forward(y);
        at::Tensor dy = (fy.select(1, i) - fy.select(1, j)).sum();
        best = std::max(best, value((dy - dx).abs() / (y - x).norm()));
      }
    }
  }
  return best;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (auto& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

class ModelTree : public ::testing::TestWithParam<std::string> {};

// Thresholds: a doubled tensor that is part of the network changes the logits and the bound by a
// clear fraction (the smallest measured: 1.1e-4 of the logits for a ResNet-50 bottleneck's BN
// variance, 2.8e-3 of the bound for a LiResNet block, whose merged operator I + aW moves little);
// one that is not part of it changes them by exactly 0 (the same float64 operations on the same
// values). 1e-7 separates the two with room on both sides.
constexpr double kMoved = 1e-7;

TEST_P(ModelTree, EveryTensorMovesTheLogitsExactlyWhenItMovesTheTrainBound) {
  auto model = small_model(GetParam(), 31, 16);
  ASSERT_TRUE(model->has_bound());
  at::manual_seed(32);
  const at::Tensor x = at::rand({8, 1, 16, 16}, at::kDouble);
  for (auto& [name, t] : multiplicative_tensors(*model)) {
    SCOPED_TRACE(name);
    const Moves m = moves_when_doubled(*model, t, x, BoundMode::kTrain);
    EXPECT_EQ(m.logits > kMoved, m.bound > kMoved)
        << "logits moved by " << m.logits << ", the kTrain bound by " << m.bound;
    // Only a row-normalized head's weight may move neither (W / ||W|| is scale-free).
    if (m.bound <= kMoved) {
      EXPECT_EQ(name, "head.weight");
    }
  }
}

TEST_P(ModelTree, EverySpectralOperatorMovesTheLogitsAndTheSoundBound) {
  // 8x8 inputs: the sound bound of a small conv comes from its explicit matrix; a WRN's bound
  // then takes ~2 s (24 s for its 12 operators on an idle machine), at 16x16 ~30 s.
  auto model = small_model(GetParam(), 33, 8);
  at::manual_seed(34);
  const at::Tensor x = at::rand({8, 1, 8, 8}, at::kDouble);
  const auto ops = lip::spectral_operators(*model);
  ASSERT_FALSE(ops.empty());
  for (const auto& op : ops) {
    SCOPED_TRACE(op.name);
    auto* module = dynamic_cast<torch::nn::Module*>(op.op);
    ASSERT_NE(module, nullptr);
    at::Tensor weight = module->named_parameters(/*recurse=*/false)["weight"];
    const Moves m = moves_when_doubled(*model, weight, x, BoundMode::kSound);
    EXPECT_GT(m.logits, kMoved);
    EXPECT_GT(m.bound, kMoved);
  }
  // With every operator doubled the bound still dominates the secant slopes along steepest
  // directions: a logit difference (e_i - e_j)^T F is sqrt(2) L-Lipschitz. No tolerance: the
  // float64 forward's rounding (~1e-15 |F| per evaluation, over ||y - x|| = 0.1) is far below the
  // rounding allowance (1e-9 relative) the sound bound already carries.
  {
    at::NoGradGuard no_grad;
    for (const auto& op : ops)
      dynamic_cast<torch::nn::Module*>(op.op)->named_parameters(false)["weight"].mul_(2.0);
  }
  const double sound = value(model->lipschitz_bound(BoundMode::kSound));
  const double slope = steepest_secant_slope(*model, {1, 1, 8, 8}, 3);
  EXPECT_GT(slope, 0.0);
  EXPECT_GE(std::sqrt(2.0) * sound, slope);
}

INSTANTIATE_TEST_SUITE_P(Zoo, ModelTree, ::testing::ValuesIn(tree_models()), test_name);

// The check above on a model written the old way, forward and bound by hand, whose bound forgets
// its second layer: doubling that layer moves the logits and not the bound.
TEST(ModelTreeCheck, CatchesALayerThatRunsButIsNotBounded) {
  struct Drifted : lm::Model {
    Drifted() : lm::Model(lm::ModelConfig{}) {
      fc1 = register_module("fc1", lip::BoundedLinear(4, 4));
      fc2 = register_module("fc2", lip::BoundedLinear(4, 3));
    }
    at::Tensor forward(const at::Tensor& x) override {
      return fc2->forward(fc1->forward(x.flatten(1)).relu());
    }
    at::Tensor lipschitz_bound(BoundMode mode) override { return fc1->lipschitz_bound(mode); }
    lip::BoundedLinear fc1{nullptr}, fc2{nullptr};
  };
  at::manual_seed(35);
  Drifted model;
  model.to(at::kDouble);
  const at::Tensor x = at::rand({8, 1, 2, 2}, at::kDouble);
  const Moves first = moves_when_doubled(model, model.fc1->weight, x, BoundMode::kSound);
  EXPECT_TRUE(first.logits > kMoved && first.bound > kMoved);
  const Moves second = moves_when_doubled(model, model.fc2->weight, x, BoundMode::kSound);
  EXPECT_GT(second.logits, kMoved);
  EXPECT_EQ(second.bound, 0.0);
}

// The digest of the state-dict layout (every name, dtype and shape in registration order, values
// zeroed) of each built-in model, as the models wrote it before they were declared as trees: model
// files store the digest of the same walk and refuse a mismatch, so a renamed, reordered or
// reshaped tensor would make every existing file unloadable.
TEST(ModelLayout, StateDictNamesOrderAndShapesAreUnchanged) {
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"wrn16-4", "55bf21a10a546761"},
      {"wrn28-10", "7b26620b40cc0da6"},
      {"lipshift", "25b127a691004b44"},
      {"lipshift-cifar", "2ea8a2bbe5e4323f"},
      {"resnet18", "ec2a7df68bf20774"},
      {"resnet50", "a06c885b92df8a4b"},
      {"lmt-mnist", "cc58f983b6f394ad"},
      {"resnet18:norm=center", "b72e72180c8fbb6c"},
      {"resnet50:norm=center", "8ab2380db26faf33"},
      {"wrn16-4:norm=center", "db6d5cd136e864c5"},
      {"wrn28-10:norm=center", "9b17dffe95a970c2"},
      {"lmt-mnist:head=he", "2e8f352bd956fc86"},
      {"resnet18:head=he", "5aeb633f3f4cf7a9"},
      {"resnet18:stem=imagenet", "2d14d3c2e2b345e8"},
  };
  for (const auto& [spec, digest] : expected) {
    SCOPED_TRACE(spec);
    auto model = lm::make_model(lm::testing::small_config(spec));
    at::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) p.value().zero_();
    for (auto& b : model->named_buffers()) b.value().zero_();
    EXPECT_EQ(lm::weights_digest(*model), digest);
  }
}

// torchvision's resnet18 state dict, in its order (the export and the interop test rely on it):
// the names lmt's parameters must have, and after each conv and linear its power-iteration vector.
TEST(ModelLayout, ResNet18ParametersAreTorchvisionsInOrder) {
  lm::ModelConfig c;
  c.name = "resnet18";
  c.num_classes = 10;
  c.channels = 3;
  c.height = c.width = 64;  // the ImageNet stem (7x7/2 conv, max-pool)
  c.options = {{"width", "8"}};
  std::vector<std::string> params, buffers;
  auto conv = [&](const std::string& name) {
    params.push_back(name + ".weight");
    buffers.push_back(name + ".pi_u");
  };
  auto bn = [&](const std::string& name) {
    params.push_back(name + ".weight");
    params.push_back(name + ".bias");
    for (const char* b : {".running_mean", ".running_var", ".num_batches_tracked"})
      buffers.push_back(name + b);
  };
  conv("conv1");
  bn("bn1");
  for (int layer = 1; layer <= 4; ++layer) {
    for (int block = 0; block < 2; ++block) {
      const std::string p = "layer" + std::to_string(layer) + "." + std::to_string(block) + ".";
      conv(p + "conv1");
      bn(p + "bn1");
      conv(p + "conv2");
      bn(p + "bn2");
      if (layer > 1 && block == 0) {
        conv(p + "downsample.0");
        bn(p + "downsample.1");
      }
    }
  }
  params.push_back("fc.weight");
  params.push_back("fc.bias");
  buffers.push_back("fc.pi_u");
  auto model = lm::make_model(c);
  EXPECT_EQ(model->named_parameters().keys(), params);
  EXPECT_EQ(model->named_buffers().keys(), buffers);
}

}  // namespace
