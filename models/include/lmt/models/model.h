// lmt::models: the Model base every architecture derives from, its configuration, the registry
// that builds a model by name, and the model file that carries weights plus configuration.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <lmt/lipschitz/bounded_module.h>

namespace lmt::models {

class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a model is built from: its name, the input geometry and classes (from the dataset file),
// the input normalization (part of the model and of its bound) and architecture options.
struct ModelConfig {
  std::string name;
  int64_t num_classes = 10;
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  std::vector<float> mean;  // empty: no input normalization
  std::vector<float> std;
  std::map<std::string, std::string> options;  // architecture options ("depths", "width", ...)

  // Option lookups with a default; a malformed value throws ModelError naming the option.
  // Every key looked up is recorded (shared by copies of this config), so make_model can refuse
  // options the architecture never read.
  int64_t option_int(const std::string& key, int64_t fallback) const;
  double option_double(const std::string& key, double fallback) const;
  std::string option_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> option_ints(const std::string& key, std::vector<int64_t> fallback) const;
  // The keys looked up so far by this config and its copies.
  std::shared_ptr<std::set<std::string>> read_options = std::make_shared<std::set<std::string>>();
  // The value each option read took, defaults included, as JSON (4, 0.2, "cifar", [2,2]), shared
  // like read_options: what an export records, so a reader needs no knowledge of the defaults.
  std::shared_ptr<std::map<std::string, std::string>> resolved_options =
      std::make_shared<std::map<std::string, std::string>>();
  // Records the value an architecture chose itself for `key` (stem=auto -> "imagenet").
  void resolve_option(const std::string& key, const std::string& value) const;

  // Line-oriented "key=value" text, stored inside model files and checkpoints.
  std::string serialize() const;
  static ModelConfig deserialize(const std::string& text);
};

// A trainable image classifier: pixels in [0,1], shape [N,C,H,W] -> logits [N,classes].
class Model : public lipschitz::BoundedModule {
 public:
  explicit Model(ModelConfig config) : config_(std::move(config)) {}
  const ModelConfig& config() const { return config_; }

  // False for models without a finite global bound (ViT): certification refuses them.
  virtual bool has_bound() const { return true; }
  // The last linear layer split off, for the pairwise margin; undefined when not applicable.
  virtual lipschitz::HeadSplit head_split(lipschitz::BoundMode /*mode*/) { return {}; }

 protected:
  ModelConfig config_;
};

using ModelFactory = std::function<std::shared_ptr<Model>(const ModelConfig&)>;

// Builds a registered model; an unknown name throws ModelError listing the known ones. With
// `strict_options`, an option the architecture does not read (a typo, or one that only applies
// with another option) throws ModelError naming it and the options the model read; model files
// are loaded without it, so a file saved with an ignored option (before this check) still loads.
std::shared_ptr<Model> make_model(const ModelConfig& config, bool strict_options = true);
std::vector<std::string> model_names();
// Adds a model to the registry (used by the built-in models and by plugins).
void register_model(const std::string& name, ModelFactory factory);

int64_t parameter_count(const torch::nn::Module& module);

// A model file: configuration, a digest of the weights, parameters and buffers in one torch
// archive, serialized in memory and written by io::write_file_atomic (a full disk: ModelError
// "PATH: cannot write: No space left on device", the previous file kept). `metadata` holds extra
// key=value facts (bound, accuracy) for tools.
void save_model_file(const std::string& path, Model& model,
                     const std::map<std::string, std::string>& metadata = {});
// The bytes save_model_file writes (for writers that place them themselves: checkpoints).
std::string serialize_model_file(Model& model,
                                 const std::map<std::string, std::string>& metadata = {});
struct LoadedModel {
  std::shared_ptr<Model> model;
  std::map<std::string, std::string> metadata;
};
struct ModelFileChecks {
  // The archive's structure and every entry's CRC-32 (io::verify_zip_archive) before LibTorch
  // parses it, and the weights' digest after. Measured with the finite check on a 45 MB
  // resnet18 file: 190 ms per load against 65 ms without (model_file_tool time), small beside
  // any command that uses the model, so the CLI has no flag to skip them.
  bool verify = true;
  // require_finite() on the loaded weights (eval, certify, attack, export and resume need it).
  bool finite = true;
};
// Throws ModelError naming `path` on one line: missing, damaged (zip or digest), not an lmt model
// file, weights that do not fit the configuration, or a non-finite tensor.
LoadedModel load_model_file(const std::string& path, const ModelFileChecks& checks = {});

// FNV-1a-64 over every defined parameter and buffer (name, dtype, shape, bytes) in registration
// order, as 16 hex digits: what a model file stores and checks at load.
std::string weights_digest(torch::nn::Module& model);
// Throws ModelError "WHAT: parameter 'fc.bias' holds +inf (...)" for the first parameter or
// buffer with a NaN or infinite element.
void require_finite(torch::nn::Module& model, const std::string& what);

}  // namespace lmt::models
