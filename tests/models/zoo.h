// Test helpers for lmt::models: small configurations of every registered architecture and
// randomisation of the normalisation parameters so that bounds are exercised off their init.
#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <lmt/models/model.h>

namespace lmt::models::testing {

// `name` may carry extra options after a colon: "resnet18:norm=center".
inline ModelConfig small_config(const std::string& spec, int64_t channels = 1, int64_t size = 16,
                                int64_t classes = 3) {
  const std::string name = spec.substr(0, spec.find(':'));
  ModelConfig c;
  c.name = name;
  c.num_classes = classes;
  c.channels = channels;
  c.height = size;
  c.width = size;
  c.mean.assign(size_t(channels), 0.3f);
  c.std.assign(size_t(channels), 0.4f);
  if (name == "wrn16-4") c.options = {{"depth", "10"}, {"widen", "2"}};   // projection shortcut
  if (name == "wrn28-10") c.options = {{"depth", "10"}, {"widen", "1"}};  // identity shortcut
  if (name == "resnet18" || name == "resnet50") c.options = {{"width", "4"}};
  if (name == "vit-tiny" || name == "vit-small")
    c.options = {{"patch", "4"}, {"depth", "2"}, {"width", "16"}, {"heads", "2"}};
  if (name == "lipshift")
    c.options = {
        {"depths", "1,1"}, {"width", "8"}, {"patch", "2"}, {"n_div", "4"}, {"alpha", "0.5"}};
  if (name == "lipshift-cifar")
    c.options = {{"depths", "1,1,1"}, {"width", "8"}, {"patch", "2"}, {"n_div", "4"}};
  if (name == "liresnet") c.options = {{"depth", "3"}, {"width", "8"}, {"neck_features", "16"}};
  if (spec.find(':') != std::string::npos) {
    const std::string extra = spec.substr(spec.find(':') + 1);
    c.options[extra.substr(0, extra.find('='))] = extra.substr(extra.find('=') + 1);
  }
  return c;
}

inline std::vector<std::string> bounded_models() {
  return {"wrn16-4",
          "wrn28-10",
          "lipshift",
          "lipshift-cifar",
          "resnet18",
          "resnet50",
          "lmt-mnist",
          "resnet18:norm=center",
          "resnet50:norm=center",
          "wrn16-4:norm=center",
          "wrn28-10:norm=center",
          "liresnet",
          "liresnet:head=linear"};
}

// Batch-norm statistics and affine parameters, CenterNorm gains and LipShiFT scales drawn at
// random (as after some training), so every bound rule is exercised away from its identity.
inline void randomize_normalizations(Model& model) {
  at::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    const std::string& key = p.key();
    auto ends = [&](const std::string& s) {
      return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0;
    };
    if (p.value().dim() == 4 && p.value().abs().max().item<double>() == 0.0)
      p.value().normal_(0, 0.2);  // a zero-initialised residual branch (zero_init_residual)
    else if (ends("scale"))
      p.value().uniform_(-0.8, 0.8);
    else if (p.value().dim() == 1 && ends("weight"))
      p.value().uniform_(0.5, 1.5);  // BN, CN
    else if (p.value().dim() == 1 && ends("bias") && key.find("fc") == std::string::npos)
      p.value().normal_(0, 0.1);
  }
  for (auto& b : model.named_buffers()) {
    const std::string& key = b.key();
    if (key.find("running_var") != std::string::npos) b.value().uniform_(0.3, 1.5);
    if (key.find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
  }
}

}  // namespace lmt::models::testing
