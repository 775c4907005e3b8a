// lmt::train: the training loop. One Trainer runs on every rank: it shards the data, keeps the
// ranks' models identical (broadcast at start, averaged gradients, synchronized power-iteration
// vectors), evaluates, writes RUN_DIR/metrics.jsonl and RUN_DIR/model.pt on rank 0.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <lmt/dist/communicator.h>
#include <lmt/models/model.h>
#include <lmt/train/options.h>

namespace lmt::train {

// What the loop reports after every optimizer step (the CLI draws progress from it).
struct StepEvent {
  int64_t epoch = 0, epochs = 0;
  int64_t step_in_epoch = 0, steps_per_epoch = 0;
  int64_t global_step = 0, total_steps = 0;
  double loss = 0, lr = 0, images_per_s = 0, elapsed_s = 0;
  double bound = -1;  // the training bound when the objective uses one, else -1
};

struct TrainSummary {
  int64_t steps = 0;
  double train_accuracy = 0, test_accuracy = 0;
  double wall_s = 0, images_per_s = 0;
  double bound = -1;
  std::string model_file;
  bool stopped = false;    // stopped early on request; the CLI exits with kExitCheckpointedStop
  std::string checkpoint;  // the last checkpoint written by this run (empty: none)
};

class Trainer {
 public:
  // `comm` may be a world of one. Throws TrainError on bad options (naming the flag).
  Trainer(TrainOptions options, std::shared_ptr<dist::Communicator> comm);
  ~Trainer();

  // Called on every rank after each step; the CLI prints only on rank 0.
  void on_step(std::function<void(const StepEvent&)> callback);
  // Human-readable messages from the loop (start-up facts, epoch summaries); rank 0 only.
  void on_message(std::function<void(const std::string&)> callback);

  models::Model& model();
  // Collective. Resumes from options.resume first (see checkpoint.h); writes a checkpoint every
  // checkpoint_every steps; on a stop request (signal agreed by all ranks, or stop_after_steps)
  // writes one and returns with summary.stopped set, without the final evaluation.
  TrainSummary run();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace lmt::train
