// Model files: configuration, metadata, parameters and buffers in one torch archive, written
// atomically so a reader never sees a half-written file.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <lmt/models/model.h>

namespace lmt::models {
namespace {

constexpr const char* kConfigKey = "lmt_model_config";
constexpr const char* kMetadataKey = "lmt_model_metadata";
constexpr const char* kFormatKey = "lmt_model_format";
constexpr int64_t kFormatVersion = 1;

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw ModelError(path + ": cannot reopen for fsync");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw ModelError(path + ": fsync failed");
}

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

}  // namespace

void save_model_file(const std::string& path, Model& model,
                     const std::map<std::string, std::string>& metadata) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    torch::serialize::OutputArchive archive;
    archive.write(kFormatKey, c10::IValue(kFormatVersion));
    archive.write(kConfigKey, c10::IValue(model.config().serialize()));
    archive.write(kMetadataKey, c10::IValue(encode_metadata(metadata)));
    model.save(archive);
    archive.save_to(tmp);
    fsync_path(tmp);
    std::filesystem::rename(tmp, path);
  } catch (const std::exception& e) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw ModelError(path + ": cannot write model file: " + e.what());
  }
}

LoadedModel load_model_file(const std::string& path) {
  if (!std::filesystem::exists(path)) throw ModelError(path + ": model file not found");
  torch::serialize::InputArchive archive;
  c10::IValue config_value, metadata_value;
  try {
    archive.load_from(path);
    if (!archive.try_read(kConfigKey, config_value) || !config_value.isString())
      throw ModelError("field '" + std::string(kConfigKey) + "' missing");
    archive.try_read(kMetadataKey, metadata_value);
  } catch (const ModelError& e) {
    throw ModelError(path + ": not an lmt model file: " + e.what());
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw ModelError(path + ": cannot read model file (truncated or corrupt?): " +
                     what.substr(0, what.find('\n')));
  }
  LoadedModel loaded;
  loaded.model = make_model(ModelConfig::deserialize(config_value.toStringRef()));
  if (metadata_value.isString()) loaded.metadata = decode_metadata(metadata_value.toStringRef());
  try {
    loaded.model->load(archive);
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw ModelError(path + ": weights do not match model '" + loaded.model->config().name +
                     "': " + what.substr(0, what.find('\n')));
  }
  return loaded;
}

}  // namespace lmt::models
