// Model files: configuration, metadata, a digest of the weights, parameters and buffers in one
// torch archive. Serialized in memory and written by the one checked atomic write (io/); checked
// as a zip archive (CRC-32 of every entry) before LibTorch parses it, and by the digest after.
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <lmt/io/atomic_file.h>
#include <lmt/io/digest.h>
#include <lmt/io/zip_check.h>
#include <lmt/models/model.h>

namespace lmt::models {
namespace {

constexpr const char* kConfigKey = "lmt_model_config";
constexpr const char* kMetadataKey = "lmt_model_metadata";
constexpr const char* kFormatKey = "lmt_model_format";
constexpr const char* kDigestKey = "lmt_weights_fnv1a64";  // absent in files before the digest
constexpr int64_t kFormatVersion = 1;

std::string encode_metadata(const std::map<std::string, std::string>& metadata) {
  std::ostringstream out;
  for (const auto& [k, v] : metadata) out << k << "=" << v << "\n";
  return out.str();
}

std::map<std::string, std::string> decode_metadata(const std::string& text) {
  std::map<std::string, std::string> metadata;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) metadata[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return metadata;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// The first non-finite element's kind: "NaN", "+inf" or "-inf" (t holds at least one).
std::string non_finite_kind(const at::Tensor& t) {
  if (at::isnan(t).any().item<bool>()) return "NaN";
  return at::isposinf(t).any().item<bool>() ? "+inf" : "-inf";
}

}  // namespace

std::string weights_digest(torch::nn::Module& model) {
  uint64_t hash = io::kFnv1a64Offset;
  auto add = [&](const std::string& name, const at::Tensor& value) {
    if (!value.defined()) return;
    at::Tensor t = value.detach().cpu().contiguous();
    std::string head = name + '\0' + std::string(c10::toString(t.scalar_type()));
    for (int64_t d : t.sizes()) head += ',' + std::to_string(d);
    hash = io::fnv1a64(head.data(), head.size() + 1, hash);
    hash = io::fnv1a64(t.data_ptr(), size_t(t.numel()) * t.element_size(), hash);
  };
  for (const auto& item : model.named_parameters()) add(item.key(), item.value());
  for (const auto& item : model.named_buffers()) add(item.key(), item.value());
  return io::hex64(hash);
}

void require_finite(torch::nn::Module& model, const std::string& what) {
  at::NoGradGuard no_grad;
  auto check = [&](const std::string& kind, const std::string& name, const at::Tensor& t) {
    if (!t.defined() || !at::isFloatingType(t.scalar_type())) return;
    if (at::isfinite(t).all().item<bool>()) return;
    throw ModelError(what + ": " + kind + " '" + name + "' holds " + non_finite_kind(t) +
                     " (a diverged or damaged model; lmt refuses non-finite weights)");
  };
  for (const auto& item : model.named_parameters()) check("parameter", item.key(), item.value());
  for (const auto& item : model.named_buffers()) check("buffer", item.key(), item.value());
}

namespace {
// The file holds CPU tensors whatever the model's device, so a model trained on a GPU loads
// anywhere: a model elsewhere is written from the CPU and moved back (Module::to keeps the
// tensors' identity, so an optimizer holding them still does). A CPU model is not touched.
class OnCpu {
 public:
  explicit OnCpu(Model& model) : model_(model) {
    for (const auto& p : model.parameters())
      if (!p.is_cpu()) {
        back_ = p.device();
        model.to(at::kCPU);
      }
  }
  ~OnCpu() {
    if (back_) model_.to(*back_);
  }

 private:
  Model& model_;
  std::optional<at::Device> back_;
};
}  // namespace

std::string serialize_model_file(Model& model, const std::map<std::string, std::string>& metadata) {
  OnCpu on_cpu(model);
  torch::serialize::OutputArchive archive;
  archive.write(kFormatKey, c10::IValue(kFormatVersion));
  archive.write(kConfigKey, c10::IValue(model.config().serialize()));
  archive.write(kMetadataKey, c10::IValue(encode_metadata(metadata)));
  archive.write(kDigestKey, c10::IValue(weights_digest(model)));
  model.save(archive);
  // In memory: LibTorch's file writer throws from its destructor when a write fails (a full disk
  // aborted the process); a writer into a string cannot fail.
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) -> size_t {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  return bytes;
}

void save_model_file(const std::string& path, Model& model,
                     const std::map<std::string, std::string>& metadata) {
  std::string bytes;
  try {
    bytes = serialize_model_file(model, metadata);
  } catch (const std::exception& e) {
    throw ModelError(path + ": cannot serialize model: " + first_line(e.what()));
  }
  try {
    io::write_file_atomic(path, bytes);
  } catch (const io::IoError& e) {
    throw ModelError(e.what());
  }
}

LoadedModel load_model_file(const std::string& path, const ModelFileChecks& checks) {
  if (!std::filesystem::exists(path)) throw ModelError(path + ": model file not found");
  std::string bytes;
  try {
    bytes = io::read_file(path);
    if (checks.verify) io::verify_zip_archive(bytes.data(), bytes.size(), path);
  } catch (const io::IoError& e) {
    throw ModelError(e.what());
  }
  torch::serialize::InputArchive archive;
  c10::IValue config_value, metadata_value, digest_value;
  try {
    // On the CPU whatever device the file's tensors name (device-independent files).
    archive.load_from(bytes.data(), bytes.size(), at::Device(at::kCPU));
    if (!archive.try_read(kConfigKey, config_value) || !config_value.isString())
      throw ModelError("field '" + std::string(kConfigKey) + "' missing");
    archive.try_read(kMetadataKey, metadata_value);
    archive.try_read(kDigestKey, digest_value);
  } catch (const ModelError& e) {
    throw ModelError(path + ": not an lmt model file: " + e.what());
  } catch (const std::exception& e) {
    throw ModelError(path +
                     ": cannot read model file (truncated or corrupt?): " + first_line(e.what()));
  }
  LoadedModel loaded;
  try {
    loaded.model = make_model(ModelConfig::deserialize(config_value.toStringRef()),
                              /*strict_options=*/false);
  } catch (const std::exception& e) {
    throw ModelError(path + ": " + first_line(e.what()));
  }
  if (metadata_value.isString()) loaded.metadata = decode_metadata(metadata_value.toStringRef());
  try {
    loaded.model->load(archive);
  } catch (const std::exception& e) {
    throw ModelError(path + ": weights do not match model '" + loaded.model->config().name +
                     "': " + first_line(e.what()));
  }
  if (checks.verify && digest_value.isString()) {
    const std::string actual = weights_digest(*loaded.model);
    if (actual != digest_value.toStringRef())
      throw ModelError(path + ": weights digest " + actual + " differs from the stored " +
                       digest_value.toStringRef() + " (corrupted weights)");
  }
  if (checks.finite) require_finite(*loaded.model, path);
  return loaded;
}

}  // namespace lmt::models
