// Export writers: safetensors (length-prefixed JSON header plus raw little-endian data) and the
// pickled state_dict that torch.load reads; both built in memory and written by io's checked
// atomic write (a full disk: one named error, the previous file kept).
#include <lmt/train/export.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <lmt/io/atomic_file.h>
#include <lmt/io/json_lines.h>
#include <lmt/train/options.h>

namespace lmt::train {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

const char* safetensors_dtype(at::ScalarType type, const std::string& name) {
  switch (type) {
    case at::kFloat:
      return "F32";
    case at::kDouble:
      return "F64";
    case at::kHalf:
      return "F16";
    case at::kBFloat16:
      return "BF16";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kShort:
      return "I16";
    case at::kChar:
      return "I8";
    case at::kByte:
      return "U8";
    case at::kBool:
      return "BOOL";
    default:
      throw TrainError("export: tensor '" + name + "' has dtype " +
                       std::string(c10::toString(type)) + ", which safetensors cannot hold");
  }
}

void write_export(const std::string& path, const std::vector<std::string_view>& parts) {
  try {
    io::write_file_atomic(path, parts);
  } catch (const io::IoError& e) {
    throw TrainError(e.what());
  }
}

std::string json_floats(const std::vector<float>& values) {
  std::ostringstream out;
  out.precision(9);
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? "," : "") << values[i];
  return out.str() + "]";
}

bool is_lmt_internal(const std::string& name) {
  const std::string suffix = ".pi_u";
  return name == "pi_u" || (name.size() > suffix.size() &&
                            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0);
}

}  // namespace

NamedTensors exported_tensors(models::Model& model, bool lmt_internal) {
  NamedTensors tensors;
  for (const auto& item : model.named_parameters())
    if (item.value().defined()) tensors.emplace_back(item.key(), item.value().detach());
  for (const auto& item : model.named_buffers())
    if (item.value().defined() && (lmt_internal || !is_lmt_internal(item.key())))
      tensors.emplace_back(item.key(), item.value().detach());
  return tensors;
}

std::map<std::string, std::string> export_metadata(models::Model& model,
                                                   const std::vector<std::string>& class_names,
                                                   const std::map<std::string, std::string>& extra,
                                                   bool with_bound) {
  const auto& c = model.config();
  std::map<std::string, std::string> meta;
  meta["format"] = "pt";  // the tensor layout convention (safetensors' own key)
  meta["producer"] = "lmt";
  meta["architecture"] = c.name;
  meta["num_classes"] = std::to_string(c.num_classes);
  meta["input_shape"] = "[" + std::to_string(c.channels) + "," + std::to_string(c.height) + "," +
                        std::to_string(c.width) + "]";
  io::JsonLine resolved, given;
  for (const auto& [k, v] : *c.resolved_options) resolved.add_raw(k, v);
  for (const auto& [k, v] : c.options) given.add(k, v);
  meta["model_options"] = resolved.str();
  io::JsonLine config;
  config.add("name", c.name)
      .add("num_classes", c.num_classes)
      .add("channels", c.channels)
      .add("height", c.height)
      .add("width", c.width)
      .add_raw("mean", json_floats(c.mean))
      .add_raw("std", json_floats(c.std))
      .add_raw("options", given.str());
  meta["model_config"] = config.str();
  if (!c.mean.empty()) {
    meta["normalization_mean"] = json_floats(c.mean);
    meta["normalization_std"] = json_floats(c.std);
  }
  if (!class_names.empty()) {
    std::string names = "[";
    for (size_t i = 0; i < class_names.size(); ++i)
      names += (i ? "," : "") + io::json_escape(class_names[i]);
    meta["class_names"] = names + "]";
  }
  if (with_bound && model.has_bound()) {
    at::NoGradGuard no_grad;
    const double value = model.lipschitz_bound(lipschitz::BoundMode::kSound).item<double>();
    std::ostringstream bound;
    bound.precision(17);
    bound << value;
    // A JSON number; an overflowed bound as the JSON string "inf".
    meta["lipschitz_bound"] = std::isfinite(value) ? bound.str() : io::json_escape(bound.str());
    meta["lipschitz_bound_mode"] = "sound (l2, input pixels in [0,1] to logits)";
  }
  for (const auto& [k, v] : extra) meta["train." + k] = v;
  return meta;
}

void convert_to_torchvision_stem(models::Model& model, NamedTensors& tensors,
                                 std::map<std::string, std::string>* metadata) {
  const auto& c = model.config();
  const auto& resolved = *c.resolved_options;
  auto option = [&](const std::string& key) {
    auto it = resolved.find(key);
    return it == resolved.end() ? std::string("?") : it->second;
  };
  const std::string why = "--torchvision-stem: " + c.name + " ";
  if (c.name != "resnet18" && c.name != "resnet34" && c.name != "resnet50")
    throw TrainError(why + "has no torchvision twin (only resnet18/34/50 do); " +
                     "python/lmt_models.py defines it for PyTorch");
  const std::pair<const char*, const char*> needed[] = {
      {"stem", "\"imagenet\""}, {"width", "64"}, {"norm", "\"batch\""}, {"head", "\"linear\""}};
  for (const auto& [key, value] : needed)
    if (option(key) != value)
      throw TrainError(why + "has model option " + key + "=" + option(key) + " but torchvision's " +
                       c.name + " has " + key + "=" + value +
                       " (7x7/2 conv + max-pool stem, 64 channels, batch norm, linear fc); " +
                       "python/lmt_models.py loads this model as it is");
  if (c.channels == 3) return;  // already torchvision's stem
  if (c.channels != 1)
    throw TrainError(why + "takes " + std::to_string(c.channels) +
                     " input channels; the conversion is defined for 1 (grey) and 3 only");
  bool converted = false;
  NamedTensors kept;
  for (auto& [name, tensor] : tensors) {
    if (is_lmt_internal(name)) continue;  // the 1-channel operators' vectors
    if (name == "conv1.weight") {
      tensor = tensor.repeat({1, 3, 1, 1}) / 3.0;
      converted = true;
    }
    kept.emplace_back(name, tensor);
  }
  if (!converted) throw TrainError(why + "has no tensor 'conv1.weight' to convert");
  tensors = std::move(kept);
  if (!metadata) return;
  auto& meta = *metadata;
  meta["input_shape"] = "[3," + std::to_string(c.height) + "," + std::to_string(c.width) + "]";
  if (!c.mean.empty()) {
    meta["normalization_mean"] = json_floats(std::vector<float>(3, c.mean[0]));
    meta["normalization_std"] = json_floats(std::vector<float>(3, c.std[0]));
  }
  meta.erase("lipschitz_bound");
  meta.erase("lipschitz_bound_mode");
  meta["torchvision_stem"] =
      "conv1.weight repeated from 1 to 3 input channels and divided by 3: feed the grey image "
      "replicated to RGB; the lmt model's bound is not recorded (it is for 1 channel)";
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::string header = "{\"__metadata__\":{";
  bool first = true;
  for (const auto& [k, v] : metadata) {
    header += (first ? "" : ",") + io::json_escape(k) + ":" + io::json_escape(v);
    first = false;
  }
  header += "}";
  std::vector<at::Tensor> data;
  int64_t offset = 0;
  for (auto& [name, tensor] : tensors) {
    at::Tensor t = tensor.cpu().contiguous();
    const int64_t bytes = int64_t(t.numel() * t.element_size());
    std::string shape = "[";
    for (int64_t d = 0; d < t.dim(); ++d) shape += (d ? "," : "") + std::to_string(t.size(d));
    header += "," + io::json_escape(name) + ":{\"dtype\":\"" +
              safetensors_dtype(t.scalar_type(), name) + "\",\"shape\":" + shape +
              "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
    data.push_back(t);
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  uint64_t length = header.size();
  char prefix[8];
  std::memcpy(prefix, &length, 8);
  std::vector<std::string_view> parts{std::string_view(prefix, 8), header};
  for (const auto& t : data)
    parts.emplace_back(static_cast<const char*>(t.data_ptr()),
                       size_t(t.numel() * t.element_size()));
  write_export(path, parts);
}

void write_torch_state_dict(const std::string& path, const NamedTensors& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : tensors) dict.insert(name, tensor.cpu().contiguous());
  // The pickle: without aggregate tags the dict is a plain EMPTY_DICT/SETITEMS; each tensor is
  // a _rebuild_tensor_v2 call on a persistent storage id whose key indexes tensorData().
  std::string pickle;
  torch::jit::Pickler pickler([&](const char* data, size_t size) { pickle.append(data, size); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr,
                              /*memoized_class_types=*/nullptr, /*get_tensor_id=*/nullptr,
                              /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(dict));
  pickler.stop();
  std::string archive;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    archive.append(static_cast<const char*>(data), size);
    return size;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  writer.writeRecord("byteorder", "little", 6);  // as torch.save writes since 2.0
  const auto& storages = pickler.tensorData();
  for (size_t i = 0; i < storages.size(); ++i) {
    auto data = torch::jit::getWriteableTensorData(storages[i]);
    writer.writeRecord("data/" + std::to_string(i), data.data(), data.sizeInBytes());
  }
  writer.writeEndOfFile();
  write_export(path, {archive});
}

}  // namespace lmt::train
