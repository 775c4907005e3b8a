// The table of built-in architectures by name (explicit, so static linking keeps them all).
#include "builtin_models.h"

namespace lmt::models {

std::map<std::string, ModelFactory> builtin_models() {
  return {
      {"lmt-mnist", make_lmt_mnist},
      {"resnet18", [](const ModelConfig& c) { return make_resnet(c, 18); }},
      {"resnet34", [](const ModelConfig& c) { return make_resnet(c, 34); }},
      {"resnet50", [](const ModelConfig& c) { return make_resnet(c, 50); }},
  };
}

}  // namespace lmt::models
