// lmt eval --model-file PATH --data FILE: accuracy of a saved model, data-parallel over ranks.
#include <cstdio>
#include <iostream>

#include <ATen/Parallel.h>
#include <lmt/data/dataset_file.h>
#include <lmt/data/loader.h>
#include <lmt/dist/communicator.h>
#include <lmt/io/json_lines.h>
#include <lmt/models/model.h>
#include <lmt/train/device.h>
#include <lmt/train/evaluate.h>

#include "cli.h"
#include "commands.h"
#include "model_command.h"
#include "progress.h"
#include "schema_cli.h"

namespace lmt::launch {

int run_eval(int argc, char** argv, Session& session) {
  options::Schema<ModelCommandOptions> schema;
  add_model_command_options(schema);
  ModelCommandOptions o;
  if (!parse_options("eval", "lmt eval --model-file PATH --data FILE.h5 [--batch-size N]", schema,
                     argc, argv, o))
    return 0;
  const at::Device device = model_command_device(o);  // a usage error before MPI
  join_ranks(session, o.threads);

  auto loaded = models::load_model_file(o.model_file);
  auto& model = *loaded.model;
  train::move_model(model, device);
  const auto& config = model.config();
  check_evaluation_data(config, data::read_dataset_info(o.data), o.data);
  data::Loader loader(o.data, evaluation_loader_options(session, config, o.batch_size));
  PassProgress progress("eval", loader.plan().num_samples, session.comm->size());
  auto result = train::evaluate(model, loader, session.comm.get(),
                                session.rank() == 0 ? progress.visitor() : nullptr);
  if (session.rank() == 0) {
    io::JsonLine line;
    line.add("command", "eval")
        .add("model_file", o.model_file)
        .add("data", o.data)
        .add("model", config.name)
        .add("count", result.count)
        .add("accuracy", result.accuracy())
        .add("loss", result.mean_loss());
    std::cout << line.str() << std::endl;
    std::fprintf(stderr, "eval: %s on %s: accuracy %.4f (%lld images)\n", config.name.c_str(),
                 o.data.c_str(), result.accuracy(), (long long)result.count);
    if (!o.metrics_out.empty()) io::MetricsWriter(o.metrics_out).write(line);
  }
  return 0;
}

}  // namespace lmt::launch
