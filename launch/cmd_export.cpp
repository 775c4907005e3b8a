// lmt export (--model-file PATH | --checkpoint DIR) --format safetensors|torch --out FILE: trained
// weights for other tools (see train/export.h for the formats).
#include <filesystem>
#include <fstream>
#include <iostream>

#include <lmt/data/dataset_file.h>
#include <lmt/train/checkpoint.h>
#include <lmt/train/export.h>
#include <lmt/train/metrics.h>

#include "cli.h"
#include "commands.h"

namespace lmt::launch {
namespace fs = std::filesystem;

// The training data named by the run's config.ini ("data = DIR"), for the class names.
static std::string data_from_config(const fs::path& config) {
  std::ifstream in(config);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("data = ", 0) == 0) return line.substr(7);
  return "";
}

int run_export(int argc, char** argv, Session& /*session*/) {
  CommandLine cli;
  cli.command = "export";
  cli.usage =
      "lmt export (--model-file PATH | --checkpoint DIR) --format safetensors|torch --out FILE";
  cli.options.add_options()("model-file", po::value<std::string>()->value_name("PATH"),
                            "model file written by lmt train (RUN_DIR/model.pt)")(
      "checkpoint", po::value<std::string>()->value_name("DIR"),
      "checkpoint directory (RUN_DIR/checkpoints/step-NNNNNN)")(
      "format", po::value<std::string>()->required(),
      "safetensors (weights, buffers, metadata) or torch (state_dict for torch.load)")(
      "out", po::value<std::string>()->required()->value_name("FILE"), "output file")(
      "data", po::value<std::string>()->value_name("DIR|FILE"),
      "dataset for the class names (default: the run's config.ini)")(
      "bound", po::value<bool>()->default_value(true),
      "compute the sound Lipschitz bound for the safetensors metadata");
  po::variables_map vm;
  if (!parse(cli, argc, argv, vm)) return 0;
  require_choice(vm, "format", {"safetensors", "torch"});
  if (vm.count("model-file") == vm.count("checkpoint"))
    throw UsageError("give exactly one of '--model-file' and '--checkpoint'");

  models::LoadedModel loaded;
  fs::path config_ini;
  if (vm.count("checkpoint")) {
    const std::string dir = vm["checkpoint"].as<std::string>();
    train::verify_checkpoint(dir);
    loaded = train::read_checkpoint_model(dir);
    config_ini = fs::path(dir) / "config.ini";
  } else {
    const std::string file = vm["model-file"].as<std::string>();
    loaded = models::load_model_file(file);
    config_ini = fs::path(file).parent_path() / "config.ini";
  }
  auto& model = *loaded.model;
  model.eval();
  const std::string out = vm["out"].as<std::string>();
  if (vm["format"].as<std::string>() == "torch") {
    train::write_torch_state_dict(out, model);
  } else {
    std::string data =
        vm.count("data") ? vm["data"].as<std::string>() : data_from_config(config_ini);
    if (!data.empty() && fs::is_directory(data)) data += "/train.h5";
    std::vector<std::string> class_names;
    if (!data.empty() && fs::exists(data)) {
      class_names = data::read_dataset_info(data).class_names;
    } else {
      std::cerr << "export: no dataset found for class names (give --data)\n";
    }
    auto metadata =
        train::export_metadata(model, class_names, loaded.metadata, vm["bound"].as<bool>());
    train::write_safetensors(out, model, metadata);
  }
  train::JsonLine line;
  line.add("command", "export")
      .add("model", model.config().name)
      .add("format", vm["format"].as<std::string>())
      .add("out", out)
      .add("tensors",
           int64_t(train::exported_tensors(model, vm["format"].as<std::string>() == "safetensors")
                       .size()));
  std::cout << line.str() << std::endl;
  return 0;
}

}  // namespace lmt::launch
