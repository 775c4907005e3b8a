// lmt eval --model-file PATH --data FILE: accuracy of a saved model, data-parallel over ranks.
#include <cstdio>
#include <iostream>

#include <ATen/Parallel.h>
#include <lmt/data/dataset_file.h>
#include <lmt/data/loader.h>
#include <lmt/dist/communicator.h>
#include <lmt/models/model.h>
#include <lmt/train/evaluate.h>
#include <lmt/train/metrics.h>

#include "cli.h"
#include "commands.h"

namespace lmt::launch {

int run_eval(int argc, char** argv, Session& session) {
  CommandLine cli;
  cli.command = "eval";
  cli.usage = "lmt eval --model-file PATH --data FILE.h5 [--batch-size N]";
  cli.options.add_options()("model-file", po::value<std::string>()->required()->value_name("PATH"),
                            "model file written by lmt train (model.pt)")(
      "data", po::value<std::string>()->required()->value_name("FILE"), "dataset file (test.h5)")(
      "batch-size", po::value<int64_t>()->default_value(500), "global evaluation batch")(
      "threads", po::value<int>(), "intra-op threads (default: cores / ranks on this node)")(
      "metrics-out", po::value<std::string>()->value_name("FILE"),
      "also append the JSON result line to FILE");
  po::variables_map vm;
  if (!parse(cli, argc, argv, vm)) return 0;
  require_range(vm, "batch-size", 1, 1e9);
  require_range(vm, "threads", 1, 1024);
  join_ranks(session, vm);

  auto loaded = models::load_model_file(vm["model-file"].as<std::string>());
  auto& model = *loaded.model;
  const auto& config = model.config();
  const std::string data_file = vm["data"].as<std::string>();
  check_evaluation_data(config, data::read_dataset_info(data_file), data_file);
  data::Loader loader(data_file,
                      evaluation_loader_options(session, config, vm["batch-size"].as<int64_t>()));
  auto result = train::evaluate(model, loader, session.comm.get());
  if (session.rank() == 0) {
    train::JsonLine line;
    line.add("command", "eval")
        .add("model_file", vm["model-file"].as<std::string>())
        .add("data", data_file)
        .add("model", config.name)
        .add("count", result.count)
        .add("accuracy", result.accuracy())
        .add("loss", result.mean_loss());
    std::cout << line.str() << std::endl;
    std::fprintf(stderr, "eval: %s on %s: accuracy %.4f (%lld images)\n", config.name.c_str(),
                 data_file.c_str(), result.accuracy(), (long long)result.count);
    if (vm.count("metrics-out"))
      train::MetricsWriter(vm["metrics-out"].as<std::string>()).write(line);
  }
  return 0;
}

}  // namespace lmt::launch
