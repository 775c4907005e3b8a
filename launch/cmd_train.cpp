// lmt train: flags/INI -> TrainOptions (through the option schema, train/options.h), progress on
// rank 0, the summary line.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <lmt/dist/communicator.h>
#include <lmt/io/json_lines.h>
#include <lmt/train/run_directory.h>
#include <lmt/train/stop.h>
#include <lmt/train/trainer.h>

#include "cli.h"
#include "commands.h"
#include "progress.h"
#include "schema_cli.h"

namespace lmt::launch {

static std::function<void(train::Trainer&, int)>& trainer_setup() {
  static std::function<void(train::Trainer&, int)> setup;
  return setup;
}

void set_trainer_setup(std::function<void(train::Trainer&, int)> setup) {
  trainer_setup() = std::move(setup);
}

int run_train(int argc, char** argv, Session& session) {
  const auto& schema = train::train_option_schema();
  train::TrainOptions options;
  if (!parse_options(
          "train",
          "lmt train --data DIR --out RUN_DIR [options]   (mpirun -np N lmt train ... for N ranks)",
          schema, argc, argv, options))
    return 0;
  // The run's config.ini holds these paths: absolute, it replays from any directory.
  namespace fs = std::filesystem;
  if (!options.data_dir().empty()) options.data_dir(fs::absolute(options.data_dir()).string());
  if (!options.out_dir().empty()) options.out_dir(fs::absolute(options.out_dir()).string());
  if (!options.resume().empty() && options.resume() != "auto")
    options.resume(fs::absolute(options.resume()).string());

  session.comm = dist::make_mpi_communicator(
      dist::CommOptions().timeout(std::chrono::seconds(options.collective_timeout_s())));
  if (options.threads() == 0) options.threads(default_threads(session));
  try {
    train::check_options(options, session.comm->size());
  } catch (const train::TrainError& e) {
    throw UsageError(e.what());
  }
  const bool root = session.rank() == 0;
  // A fresh run never replaces another one silently (rank 0 looks, every rank refuses). The
  // trainer writes config.ini once the run is validated (a refused resume leaves it as it was).
  std::string existing = root && options.resume().empty() && !options.overwrite()
                             ? train::existing_run_file(options.out_dir())
                             : "";
  if (session.comm->size() > 1) existing = dist::broadcast_string(*session.comm, existing);
  if (!existing.empty())
    throw UsageError("--out " + options.out_dir() + " already holds a run (" + existing +
                     "): give --resume auto to continue it or --overwrite to replace it");
  if (root) std::filesystem::create_directories(options.out_dir());

  train::install_stop_signal_handlers();  // SIGUSR1/SIGTERM: checkpoint at the next step, exit 3
  train::Trainer trainer(options, session.comm);
  Progress progress("train");
  progress.plain_every(options.log_every());
  if (root) {
    trainer.on_message([&](const std::string& text) { progress.message(text); });
    trainer.on_step([&](const train::StepResult& r) {
      char tail[160];
      if (r.last_bound >= 0)
        std::snprintf(tail, sizeof tail, "epoch %lld/%lld  loss %.4f  L %.4g",
                      (long long)r.epoch + 1, (long long)r.epochs, r.loss, r.last_bound);
      else
        std::snprintf(tail, sizeof tail, "epoch %lld/%lld  loss %.4f", (long long)r.epoch + 1,
                      (long long)r.epochs, r.loss);
      progress.update(r.global_step, r.total_steps, r.elapsed_s, r.images_per_s, tail);
    });
    trainer.on_epoch([&](const train::EpochResult& r) {
      if (r.collapsed)
        progress.message(
            "warning: in flags: lower --lmt-c, warm it up with --lmt-c-warmup EPOCHS, "
            "and use --model-option norm=center for resnet/wrn");
    });
  }
  // A run stopped before its first epoch's evaluation has measured no accuracy nor throughput.
  bool evaluated = false;
  trainer.on_epoch([&](const train::EpochResult&) { evaluated = true; });
  if (trainer_setup()) trainer_setup()(trainer, session.rank());
  auto summary = trainer.run();
  progress.finish();
  if (root) {
    // A stopped run's line has only what was measured: no accuracies or throughput before an
    // epoch's end, no model file (the final model is not saved).
    io::JsonLine line;
    line.add("command", "train").add("steps", summary.steps);
    if (evaluated)
      line.add("train_accuracy", summary.train_accuracy)
          .add("test_accuracy", summary.test_accuracy);
    line.add("wall_s", summary.wall_s);
    if (evaluated) line.add("images_per_s", summary.images_per_s);
    line.add("world_size", session.comm->size());
    if (!summary.model_file.empty()) line.add("model_file", summary.model_file);
    if (summary.bound >= 0) line.add("lipschitz_bound", summary.bound);
    if (!summary.checkpoint.empty()) line.add("checkpoint", summary.checkpoint);
    if (summary.stopped) line.add("stopped", true);
    std::cout << line.str() << std::endl;
  }
  return summary.stopped ? train::kExitCheckpointedStop : 0;
}

}  // namespace lmt::launch
