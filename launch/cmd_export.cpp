// lmt export (--model-file PATH | --checkpoint DIR) --format safetensors|torch --out FILE: trained
// weights for other tools (see train/export.h for the formats; torch: metadata in FILE.json).
#include <filesystem>
#include <fstream>
#include <iostream>

#include <lmt/data/dataset_file.h>
#include <lmt/io/atomic_file.h>
#include <lmt/io/json_lines.h>
#include <lmt/train/checkpoint.h>
#include <lmt/train/export.h>

#include "cli.h"
#include "commands.h"
#include "schema_cli.h"

namespace lmt::launch {
namespace {
enum class ExportFormat { kSafetensors, kTorch };
}  // namespace
}  // namespace lmt::launch

namespace lmt::options {
template <>
struct EnumNames<launch::ExportFormat> {
  static constexpr std::pair<launch::ExportFormat, const char*> table[] = {
      {launch::ExportFormat::kSafetensors, "safetensors"}, {launch::ExportFormat::kTorch, "torch"}};
};
}  // namespace lmt::options

namespace lmt::launch {
namespace fs = std::filesystem;
namespace {

struct ExportCommandOptions {
  std::string model_file, checkpoint;                // exactly one of them
  ExportFormat format = ExportFormat::kSafetensors;  // required
  std::string out;
  std::string data;  // empty: the run's config.ini names it
  bool bound = true;
  bool torchvision_stem = false;
};

options::Schema<ExportCommandOptions> export_schema() {
  using options::Spec;
  options::Schema<ExportCommandOptions> s;
  s.add<std::string>(
      Spec("model-file", "model file written by lmt train (RUN_DIR/model.pt)").value("PATH"),
      [](auto& o) -> auto& { return o.model_file; });
  s.add<std::string>(
      Spec("checkpoint", "checkpoint directory (RUN_DIR/checkpoints/step-NNNNNN)").value("DIR"),
      [](auto& o) -> auto& { return o.checkpoint; });
  s.add<ExportFormat>(
      Spec("format",
           "safetensors (weights, buffers, metadata) or torch (state_dict for "
           "torch.load(weights_only=True), metadata beside it in FILE.json)")
          .required(),
      [](auto& o) -> auto& { return o.format; });
  s.add<std::string>(
      Spec("out", "output file").required().value("FILE"), [](auto& o) -> auto& { return o.out; });
  s.add<std::string>(
      Spec("data", "dataset for the class names (default: the run's config.ini)").value("DIR|FILE"),
      [](auto& o) -> auto& { return o.data; });
  s.add<bool>(
      Spec("bound", "compute the sound Lipschitz bound for the metadata"),
      [](auto& o) -> auto& { return o.bound; });
  s.add<bool>(
      Spec("torchvision-stem",
           "make a resnet18/34/50 with the ImageNet stem load into torchvision's: a "
           "1-channel conv1 is repeated over 3 channels / 3 (exact on grey images "
           "replicated to RGB); refused, saying why, for any other model")
          .as_switch(),
      [](auto& o) -> auto& { return o.torchvision_stem; });
  return s;
}

// The training data named by the run's config.ini ("data = DIR"), for the class names.
std::string data_from_config(const fs::path& config) {
  std::ifstream in(config);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("data = ", 0) == 0) return line.substr(7);
  return "";
}

}  // namespace

int run_export(int argc, char** argv, Session& /*session*/) {
  const auto schema = export_schema();
  ExportCommandOptions o;
  if (!parse_options(
          "export",
          "lmt export (--model-file PATH | --checkpoint DIR) --format safetensors|torch --out FILE "
          "[--torchvision-stem]",
          schema, argc, argv, o))
    return 0;
  if (o.model_file.empty() == o.checkpoint.empty())
    throw UsageError("give exactly one of '--model-file' and '--checkpoint'");
  const bool safetensors = o.format == ExportFormat::kSafetensors;

  models::LoadedModel loaded;
  fs::path config_ini;
  if (!o.checkpoint.empty()) {
    train::verify_checkpoint(o.checkpoint);
    loaded = train::read_checkpoint_model(o.checkpoint);
    config_ini = fs::path(o.checkpoint) / "config.ini";
  } else {
    loaded = models::load_model_file(o.model_file);
    config_ini = fs::path(o.model_file).parent_path() / "config.ini";
  }
  auto& model = *loaded.model;
  model.eval();
  // The torch export drops lmt's power-iteration vectors (torchvision key names, strict loads).
  auto tensors = train::exported_tensors(model, /*lmt_internal=*/safetensors);
  std::string data = !o.data.empty() ? o.data : data_from_config(config_ini);
  if (!data.empty() && fs::is_directory(data)) data += "/train.h5";
  std::vector<std::string> class_names;
  if (!data.empty() && fs::exists(data)) {
    class_names = data::read_dataset_info(data).class_names;
  } else {
    std::cerr << "export: no dataset found for class names (give --data)\n";
  }
  // The bound is of the unconverted network: --torchvision-stem drops it, so skip its cost.
  auto metadata =
      train::export_metadata(model, class_names, loaded.metadata, o.bound && !o.torchvision_stem);
  if (o.torchvision_stem) train::convert_to_torchvision_stem(model, tensors, &metadata);
  const std::string metadata_file = o.out + ".json";
  if (safetensors) {
    train::write_safetensors(o.out, tensors, metadata);
  } else {
    // A state_dict holds tensors only: the metadata (for python/lmt_models.py) goes beside it.
    io::JsonLine json;
    for (const auto& [k, v] : metadata) json.add(k, v);
    train::write_torch_state_dict(o.out, tensors);
    io::write_file_atomic(metadata_file, json.str() + "\n");  // IoError names the file
  }
  io::JsonLine line;
  line.add("command", "export")
      .add("model", model.config().name)
      .add("format", options::to_string(o.format))
      .add("out", o.out)
      .add("tensors", int64_t(tensors.size()));
  if (!safetensors) line.add("metadata", metadata_file);
  std::cout << line.str() << std::endl;
  return 0;
}

}  // namespace lmt::launch
