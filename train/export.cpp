// Export writers: safetensors (length-prefixed JSON header plus raw little-endian data) and the
// pickled state_dict that torch.load reads; both built in memory and written by io's checked
// atomic write (a full disk: one named error, the previous file kept).
#include <lmt/train/export.h>

#include <cstring>
#include <sstream>

#include <torch/csrc/jit/serialization/pickle.h>

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

std::vector<std::pair<std::string, at::Tensor>> exported_tensors(models::Model& model,
                                                                 bool lmt_internal) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
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
  std::string options = "{";
  for (const auto& [k, v] : c.options)
    options += (options.size() > 1 ? "," : "") + io::json_escape(k) + ":" + io::json_escape(v);
  meta["model_options"] = options + "}";
  meta["model_config"] = c.serialize();
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
    std::ostringstream bound;
    bound.precision(17);
    bound << model.lipschitz_bound(lipschitz::BoundMode::kSound).item<double>();
    meta["lipschitz_bound"] = bound.str();
    meta["lipschitz_bound_mode"] = "sound (l2, input pixels in [0,1] to logits)";
  }
  for (const auto& [k, v] : extra) meta["train." + k] = v;
  return meta;
}

void write_safetensors(const std::string& path, models::Model& model,
                       const std::map<std::string, std::string>& metadata) {
  auto tensors = exported_tensors(model, /*lmt_internal=*/true);
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

void write_torch_state_dict(const std::string& path, models::Model& model) {
  c10::Dict<std::string, at::Tensor> dict;
  for (auto& [name, tensor] : exported_tensors(model, /*lmt_internal=*/false))
    dict.insert(name, tensor.cpu().contiguous());
  std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
  write_export(path, {std::string_view(bytes.data(), bytes.size())});
}

}  // namespace lmt::train
