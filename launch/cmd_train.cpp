// lmt train: flags/INI -> TrainOptions (through the option schema, train/options.h), progress on
// rank 0, the summary line.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include <lmt/dist/communicator.h>
#include <lmt/io/json_lines.h>
#include <lmt/train/init_from.h>
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
  if (!options.init_from().empty()) options.init_from(fs::absolute(options.init_from()).string());

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
  std::unique_ptr<train::Trainer> made;
  try {
    made = std::make_unique<train::Trainer>(options, session.comm);
  } catch (const train::InitFromError& e) {
    throw UsageError(e.what());  // the flags name a file that cannot start this run: exit 2
  }
  train::Trainer& trainer = *made;
  Progress progress("train");
  progress.plain_every(options.log_every());  // plain lines with the metrics.jsonl step lines
  PassProgress test_progress("test", trainer.test_images(), session.comm->size());
  // The loss shown: the latest step line's (every --log-every steps), the mean over every rank's
  // batches of those steps; the trainer reads its figures from the device only then.
  std::optional<double> shown_loss;
  bool legend = progress.mode() == ProgressMode::kOff;
  int64_t first_step = -1;  // the step before this process's first (a resumed run's checkpoint)
  if (root) {
    trainer.on_message([&](const std::string& text) { progress.message(text); });
    trainer.on_step([&](const train::StepResult& r) {
      if (r.window_loss) shown_loss = r.window_loss;
      if (!legend) {
        legend = true;
        progress.message("loss: the mean over the last " + std::to_string(options.log_every()) +
                         " steps (--log-every)" +
                         (r.has_bound ? "; bound: the network's Lipschitz bound L" : ""));
      }
      char text[3][64];
      std::snprintf(text[0], sizeof text[0], "epoch %lld/%lld", (long long)r.epoch + 1,
                    (long long)r.epochs);
      std::snprintf(text[1], sizeof text[1], "loss %.4f", shown_loss.value_or(0.0));
      std::snprintf(text[2], sizeof text[2], "bound %.4g", r.last_bound);
      std::vector<ProgressField> fields{{text[0], 40}};
      if (shown_loss) fields.push_back({text[1], 80});
      if (r.last_bound >= 0) fields.push_back({text[2], 65});  // outlasts the rate (60)
      // The ETA from this process's steps' pace (a resumed run's earlier steps took no time here).
      if (first_step < 0) first_step = r.global_step - 1;
      const double eta =
          double(r.total_steps - r.global_step) * r.elapsed_s / double(r.global_step - first_step);
      progress.update(r.global_step, r.total_steps, r.elapsed_s, r.images_per_s, fields, eta);
    });
    trainer.on_eval_batch(test_progress.visitor());
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
