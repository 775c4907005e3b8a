// Model configuration parsing, the registry of architectures, parameter counting.
#include <lmt/models/model.h>

#include <cmath>
#include <mutex>
#include <sstream>

#include <lmt/io/json_lines.h>
#include <lmt/options/schema.h>

#include "builtin_models.h"

namespace lmt::models {
namespace {

std::string join_floats(const std::vector<float>& v) {
  std::ostringstream out;
  out.precision(9);
  for (size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
  return out.str();
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

std::map<std::string, ModelFactory>& registry() {
  static std::map<std::string, ModelFactory> models = builtin_models();
  return models;
}
std::mutex registry_mutex;

}  // namespace

// A model option read with the option schema's codecs (lmt/options/schema.h: the same integer,
// number and list syntax as every flag), or `fallback` when it is not given.
namespace {
std::string json_value(int64_t v) { return std::to_string(v); }
std::string json_value(double v) {
  if (!std::isfinite(v)) return io::json_escape(std::to_string(v));  // JSON has no inf/nan
  for (int digits = 15;; ++digits) {  // the shortest text that reads back as v (0.2, not 0.2000...1)
    std::ostringstream out;
    out.precision(digits);
    out << v;
    if (digits == 17 || std::stod(out.str()) == v) return out.str();
  }
}
std::string json_value(const std::vector<int64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out + "]";
}

template <class V>
V option_value(const ModelConfig& config, const std::string& key, V fallback,
               const char* expected) {
  config.read_options->insert(key);
  auto it = config.options.find(key);
  V value = std::move(fallback);
  if (it != config.options.end()) {
    try {
      value = options::Codec<V>::parse(options::Spec(key, ""), {it->second});
    } catch (const options::OptionError&) {
      throw ModelError("model option '" + key + "': expected " + expected + ", got '" +
                       it->second + "'");
    }
  }
  (*config.resolved_options)[key] = json_value(value);
  return value;
}
}  // namespace

int64_t ModelConfig::option_int(const std::string& key, int64_t fallback) const {
  return option_value<int64_t>(*this, key, fallback, "an integer");
}

double ModelConfig::option_double(const std::string& key, double fallback) const {
  return option_value<double>(*this, key, fallback, "a number");
}

std::string ModelConfig::option_string(const std::string& key, const std::string& fallback) const {
  read_options->insert(key);
  auto it = options.find(key);
  const std::string value = it == options.end() ? fallback : it->second;
  resolve_option(key, value);
  return value;
}

void ModelConfig::resolve_option(const std::string& key, const std::string& value) const {
  (*resolved_options)[key] = io::json_escape(value);
}

std::vector<int64_t> ModelConfig::option_ints(const std::string& key,
                                              std::vector<int64_t> fallback) const {
  return option_value<std::vector<int64_t>>(*this, key, std::move(fallback),
                                            "comma-separated integers");
}

std::string ModelConfig::serialize() const {
  std::ostringstream out;
  out << "name=" << name << "\n"
      << "num_classes=" << num_classes << "\n"
      << "channels=" << channels << "\n"
      << "height=" << height << "\n"
      << "width=" << width << "\n"
      << "mean=" << join_floats(mean) << "\n"
      << "std=" << join_floats(std) << "\n";
  for (const auto& [key, value] : options) out << "option." << key << "=" << value << "\n";
  return out.str();
}

ModelConfig ModelConfig::deserialize(const std::string& text) {
  ModelConfig config;
  auto floats = [](const std::string& value) {
    std::vector<float> v;
    for (const auto& part : split(value, ',')) v.push_back(std::stof(part));
    return v;
  };
  for (const auto& line : split(text, '\n')) {
    if (line.empty()) continue;
    auto eq = line.find('=');
    if (eq == std::string::npos)
      throw ModelError("model configuration: malformed line '" + line + "'");
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    try {
      if (key == "name")
        config.name = value;
      else if (key == "num_classes")
        config.num_classes = std::stoll(value);
      else if (key == "channels")
        config.channels = std::stoll(value);
      else if (key == "height")
        config.height = std::stoll(value);
      else if (key == "width")
        config.width = std::stoll(value);
      else if (key == "mean")
        config.mean = floats(value);
      else if (key == "std")
        config.std = floats(value);
      else if (key.rfind("option.", 0) == 0)
        config.options[key.substr(7)] = value;
      else
        throw ModelError("model configuration: unknown field '" + key + "'");
    } catch (const std::invalid_argument&) {
      throw ModelError("model configuration: field '" + key + "' has malformed value '" + value +
                       "'");
    }
  }
  if (config.name.empty()) throw ModelError("model configuration: field 'name' missing");
  return config;
}

std::shared_ptr<Model> make_model(const ModelConfig& config, bool strict_options) {
  ModelFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry().find(config.name);
    if (it == registry().end()) {
      std::string known;
      for (const auto& [name, f] : registry()) known += (known.empty() ? "" : ", ") + name;
      throw ModelError("unknown model '" + config.name + "' (known: " + known + ")");
    }
    factory = it->second;
  }
  if (config.num_classes < 2) throw ModelError("model: num_classes must be >= 2");
  if (!config.mean.empty() &&
      (config.mean.size() != size_t(config.channels) || config.std.size() != config.mean.size()))
    throw ModelError("model: mean/std must have one value per input channel");
  ModelConfig checked = config;
  checked.read_options = std::make_shared<std::set<std::string>>();
  checked.resolved_options = std::make_shared<std::map<std::string, std::string>>();
  auto model = factory(checked);
  for (const auto& [key, value] : checked.options) {
    if (!strict_options || checked.read_options->count(key)) continue;
    std::string read;
    for (const auto& k : *checked.read_options) read += (read.empty() ? "" : ", ") + k;
    throw ModelError("model option '" + key + "' is not used by model '" + config.name +
                     "' with these options (it reads: " + (read.empty() ? "none" : read) + ")");
  }
  return model;
}

std::vector<std::string> model_names() {
  std::lock_guard<std::mutex> lock(registry_mutex);
  std::vector<std::string> names;
  for (const auto& [name, f] : registry()) names.push_back(name);
  return names;
}

void register_model(const std::string& name, ModelFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry()[name] = std::move(factory);
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.parameters()) count += p.numel();
  return count;
}

}  // namespace lmt::models
