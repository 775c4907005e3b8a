// Private to models/: the factories of the built-in architectures, gathered by the registry.
#pragma once

#include <map>
#include <string>

#include <lmt/models/model.h>

namespace lmt::models {

std::map<std::string, ModelFactory> builtin_models();

std::shared_ptr<Model> make_lmt_mnist(const ModelConfig& config);
std::shared_ptr<Model> make_resnet(const ModelConfig& config, int depth);
std::shared_ptr<Model> make_wide_resnet(const ModelConfig& config, int depth, int widen);
std::shared_ptr<Model> make_vit(const ModelConfig& config, int64_t width, int64_t heads);
std::shared_ptr<Model> make_lipshift(const ModelConfig& config, bool cifar_preset);
std::shared_ptr<Model> make_liresnet(const ModelConfig& config);

}  // namespace lmt::models
