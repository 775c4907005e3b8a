// The model zoo against published facts: parameter counts (torchvision ResNets, WRN-28-10,
// DeiT), forward shapes from the config, ViT's refusal of a bound, model-file round trips.
#include <gtest/gtest.h>

#include <filesystem>

#include <lmt/lipschitz/bounded_module.h>
#include <lmt/models/model.h>
#include <torch/nn/modules/batchnorm.h>

#include "zoo.h"

namespace lm = lmt::models;
namespace lip = lmt::lipschitz;
using lm::testing::small_config;

namespace {

lm::ModelConfig imagenet(const std::string& name, int64_t size = 224) {
  lm::ModelConfig c;
  c.name = name;
  c.num_classes = 1000;
  c.channels = 3;
  c.height = c.width = size;
  return c;
}

int64_t count(const lm::ModelConfig& c) { return lm::parameter_count(*lm::make_model(c)); }

std::vector<std::string> all_models() {
  return {"wrn16-4",        "wrn28-10", "vit-tiny", "vit-small", "lipshift",
          "lipshift-cifar", "resnet18", "resnet50", "lmt-mnist"};
}

// make_model(c) throws a ModelError whose message names `option`.
void expect_error_naming(const lm::ModelConfig& c, const std::string& option) {
  try {
    lm::make_model(c);
    ADD_FAILURE() << option << ": a bad value was accepted";
  } catch (const lm::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(option), std::string::npos) << e.what();
  }
}

}  // namespace

// Published: torchvision resnet18 / resnet50 (ImageNet, 1000 classes).
TEST(ModelZoo, ResNetParameterCountsMatchTorchvision) {
  EXPECT_EQ(count(imagenet("resnet18")), 11689512);
  EXPECT_EQ(count(imagenet("resnet50")), 25557032);
}

// Published: DeiT-Ti 5.72 M (5,717,416) and DeiT-S 22.05 M (22,050,664), patch 16 at 224 px.
TEST(ModelZoo, DeiTParameterCountsMatchPublished) {
  EXPECT_EQ(count(imagenet("vit-small")), 22050664);
  EXPECT_EQ(count(imagenet("vit-tiny")), 5717416);
}

// Published: WRN-28-10 on CIFAR-10 has 36.5 M parameters; the reference implementation has
// 36,479,194. WRN-16-4 (the LMT paper's SVHN model) 2.75 M (2,748,890).
TEST(ModelZoo, WideResNetParameterCountsMatchPublished) {
  lm::ModelConfig c;
  c.name = "wrn28-10";
  c.num_classes = 10;
  c.channels = 3;
  c.height = c.width = 32;
  const int64_t n = count(c);
  EXPECT_NEAR(double(n) / 1e6, 36.5, 0.05);
  EXPECT_EQ(n, 36479194);
  c.name = "wrn16-4";
  EXPECT_EQ(count(c), 2748890);
}

TEST(ModelZoo, ForwardShapesFollowTheConfig) {
  for (const auto& name : all_models()) {
    SCOPED_TRACE(name);
    for (int64_t channels : {1, 3}) {
      auto config = small_config(name, channels, 16, 7);
      auto model = lm::make_model(config);
      model->eval();
      at::Tensor logits = model->forward(at::rand({5, channels, 16, 16}));
      EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{5, 7}));
      EXPECT_TRUE(logits.isfinite().all().item<bool>());
    }
  }
}

TEST(ModelZoo, VitRefusesABound) {
  for (const std::string name : {"vit-tiny", "vit-small"}) {
    auto model = lm::make_model(small_config(name));
    EXPECT_FALSE(model->has_bound());
    try {
      model->lipschitz_bound(lmt::lipschitz::BoundMode::kSound);
      ADD_FAILURE() << name << ": lipschitz_bound did not throw";
    } catch (const lmt::lipschitz::BoundError& e) {
      EXPECT_NE(std::string(e.what()).find(name + " has no finite global Lipschitz bound"),
                std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("certification is refused"), std::string::npos);
    }
    EXPECT_THROW(model->head_split(lmt::lipschitz::BoundMode::kTrain), lmt::lipschitz::BoundError);
  }
}

TEST(ModelZoo, ModelFileRoundTripGivesIdenticalLogits) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("lmt_models_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const auto& name : all_models()) {
    SCOPED_TRACE(name);
    auto model = lm::make_model(small_config(name));
    lm::testing::randomize_normalizations(*model);
    lmt::lipschitz::power_iteration_step(*model, 3);
    model->eval();
    const std::string path = (dir / (name + ".pt")).string();
    lm::save_model_file(path, *model, {{"note", "round trip"}});
    auto loaded = lm::load_model_file(path);
    loaded.model->eval();
    EXPECT_EQ(loaded.model->config().serialize(), model->config().serialize());
    EXPECT_EQ(loaded.metadata.at("note"), "round trip");
    at::Tensor x = at::rand({4, 1, 16, 16});
    at::NoGradGuard no_grad;
    EXPECT_TRUE(at::equal(loaded.model->forward(x), model->forward(x)));
    if (model->has_bound()) {
      EXPECT_EQ(loaded.model->lipschitz_bound(lmt::lipschitz::BoundMode::kTrain).item<double>(),
                model->lipschitz_bound(lmt::lipschitz::BoundMode::kTrain).item<double>());
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(ModelZoo, BadOptionsNameTheOption) {
  auto c = small_config("wrn16-4");
  c.options["depth"] = "11";
  EXPECT_THROW(lm::make_model(c), lm::ModelError);
  c = small_config("lipshift");
  c.options["width"] = "7";
  EXPECT_THROW(lm::make_model(c), lm::ModelError);
  c = small_config("vit-small");
  c.options["patch"] = "5";
  expect_error_naming(c, "patch");
}

// zero_init_residual (default 1): each residual branch ends in a zero scale, so every block starts
// as its shortcut and the bound at initialisation is far below the one of the same weights with
// the branches switched on. norm=center swaps every BatchNorm2d for a batch centring (bound 1)
// without changing the parameter layout of the convs.
TEST(ModelZoo, ResidualBranchesStartAtZeroAndNormCenterReplacesBatchNorm) {
  struct Case {
    std::string spec, zero_key;
  };
  for (const Case& k : {Case{"resnet18", "layer1.0.bn2.weight"},
                        Case{"resnet18:norm=center", "layer1.0.conv2.weight"},
                        Case{"wrn16-4", "block1.0.conv2.weight"},
                        Case{"wrn28-10:norm=center", "block1.0.conv2.weight"}}) {
    SCOPED_TRACE(k.spec);
    at::manual_seed(5);
    auto zero = lm::make_model(small_config(k.spec));
    auto params = zero->named_parameters();
    ASSERT_TRUE(params.contains(k.zero_key));
    EXPECT_EQ(params[k.zero_key].abs().max().item<double>(), 0.0);
    auto c = small_config(k.spec);
    c.options["zero_init_residual"] = "0";
    at::manual_seed(5);
    auto plain = lm::make_model(c);
    EXPECT_GT(plain->named_parameters()[k.zero_key].abs().max().item<double>(), 0.0);
    zero->eval();
    plain->eval();
    EXPECT_LT(zero->lipschitz_bound(lip::BoundMode::kSound).item<double>(),
              plain->lipschitz_bound(lip::BoundMode::kSound).item<double>());
    const bool center = k.spec.find("center") != std::string::npos;
    bool has_batch_norm = false;
    for (const auto& m : zero->named_modules())
      if (dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.value().get())) has_batch_norm = true;
    EXPECT_EQ(has_batch_norm, !center);
  }
  auto c = small_config("resnet18");
  c.options["norm"] = "layer";
  expect_error_naming(c, "norm");
}
