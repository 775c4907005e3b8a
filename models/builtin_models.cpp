// The table of built-in architectures by name (explicit, so static linking keeps them all).
#include "builtin_models.h"

namespace lmt::models {

std::map<std::string, ModelFactory> builtin_models() {
  return {
      {"lmt-mnist", make_lmt_mnist},
      {"resnet18", [](const ModelConfig& c) { return make_resnet(c, 18); }},
      {"resnet34", [](const ModelConfig& c) { return make_resnet(c, 34); }},
      {"resnet50", [](const ModelConfig& c) { return make_resnet(c, 50); }},
      {"wrn16-4", [](const ModelConfig& c) { return make_wide_resnet(c, 16, 4); }},
      {"wrn28-10", [](const ModelConfig& c) { return make_wide_resnet(c, 28, 10); }},
      {"vit-tiny", [](const ModelConfig& c) { return make_vit(c, 192, 3); }},
      {"vit-small", [](const ModelConfig& c) { return make_vit(c, 384, 6); }},
      {"lipshift", [](const ModelConfig& c) { return make_lipshift(c, false); }},
      {"lipshift-cifar", [](const ModelConfig& c) { return make_lipshift(c, true); }},
      {"liresnet", make_liresnet},
  };
}

}  // namespace lmt::models
