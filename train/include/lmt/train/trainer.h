// lmt::train: the training loop. One Trainer runs on every rank: it shards the data, keeps the
// ranks' models identical (broadcast at start, averaged gradients, synchronized power-iteration
// vectors), evaluates, writes RUN_DIR/metrics.jsonl and RUN_DIR/model.pt on rank 0.
//
//   Trainer trainer(options, comm);
//   trainer.on_step([](const StepResult& r) { ... });   // progress, test hooks
//   TrainSummary summary = trainer.run();                 // or: begin(); while (step()) ...
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <lmt/dist/communicator.h>
#include <lmt/models/model.h>
#include <lmt/train/evaluate.h>
#include <lmt/train/options.h>

namespace lmt::train {

// One optimizer step, as step() reports it (and the on_step listeners see it).
struct StepResult {
  int64_t epoch = 0, epochs = 0;                   // the epoch (0-based) and how many there are
  int64_t step_in_epoch = 0, steps_per_epoch = 0;  // steps of this epoch done, including this one
  int64_t global_step = 0, total_steps = 0;        // optimizer steps done, including this one
  int64_t images = 0;                              // images in this step over all ranks
  // This rank's batch loss, a 0-dim tensor on the training device. The trainer reads its figures
  // back only at the step lines (every log_every steps), epoch ends and checkpoints; loss()
  // reads this one now (on a GPU a host sync, counted by train::host_reads()).
  at::Tensor loss_value;
  double loss() const;
  double lr = 0;
  bool has_bound = false;       // the objective computes the training bound L
  std::optional<double> bound;  // L of this step, at the steps whose figures were read
  double last_bound = -1;       // the latest training bound read (-1: none yet)
  // The global l2 norm of the averaged gradients before clipping (with grad_clip_norm > 0), at
  // the steps whose figures were read (the step lines).
  std::optional<double> grad_norm;
  double images_per_s = 0;  // this epoch so far, all ranks
  double elapsed_s = 0;     // since run()/begin() in this process
  // At every log_every-th step (the metrics.jsonl step line's): the mean loss and accuracy of
  // every rank's batches of the steps since the previous one, on every rank.
  std::optional<double> window_loss, window_accuracy;
};

// The end of an epoch: the metrics line's content.
struct EpochResult {
  int64_t epoch = 0, global_step = 0;
  double loss = 0, train_accuracy = 0, test_accuracy = 0, test_loss = 0;
  double images_per_s = 0, wall_s = 0, lr = 0, bound = -1;
  // The LMT loss pushed the model to a constant classifier (train accuracy near chance after
  // 200 steps): c is too large for the network's bound. The CLI turns this into a warning with
  // its flags; a library user reads it here.
  bool collapsed = false;
  // --keep-best: the best epoch so far (1-based, this one included; 0: off) and its metric;
  // with certified@EPS this epoch's certified accuracy from the training bound, and from the
  // sound bound when this epoch became the best (-1: not computed).
  int64_t best_epoch = 0;
  double best_value = -1, certified_accuracy = -1, certified_accuracy_sound = -1;
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
  // `comm` may be a world of one. Throws TrainError on bad options (check_options, naming the
  // option) or data that does not fit.
  Trainer(TrainOptions options, std::shared_ptr<dist::Communicator> comm);
  ~Trainer();

  // Listeners, called in the order added. on_step: after every step on every rank (a listener
  // may throw to end the run; the CLI draws progress on rank 0). on_epoch: after each epoch's
  // evaluation, every rank. on_message: start-up facts and epoch summaries, rank 0 only.
  // on_finish: every rank, after the final model is saved (that model -- the EMA with
  // --ema-decay -- and its training bound).
  // on_checkpoint_file: rank 0, after each file of a checkpoint is durable. on_eval_batch: every
  // rank, after each batch of its shard in the end-of-epoch evaluation (progress displays; the
  // batch's global_batch_size counts every rank's images, out of test_images()).
  void on_step(std::function<void(const StepResult&)> listener);
  void on_epoch(std::function<void(const EpochResult&)> listener);
  void on_message(std::function<void(const std::string&)> listener);
  void on_finish(std::function<void(models::Model&, double last_bound)> listener);
  void on_checkpoint_file(std::function<void(const std::string& file)> listener);
  void on_eval_batch(BatchVisitor listener);

  models::Model& model();
  // What is evaluated, certified and saved: the EMA of the weights with --ema-decay > 0 (its
  // power-iteration vectors copied from model()'s at each step), else model() itself.
  models::Model& evaluated_model();
  const TrainOptions& options() const;
  int64_t test_images() const;

  // Collective. The whole run: begin(), then step() until the last step, an evaluation and a
  // metrics line at the end of each epoch, a checkpoint every checkpoint_every steps, and on a
  // stop request (a signal agreed by all ranks, or stop_after_steps) a checkpoint and a return
  // with summary.stopped set, without the final evaluation. Then the model file.
  TrainSummary run();

  // The pieces of run(), for a loop of one's own. begin(): resume from options.resume (see
  // checkpoint.h), write config.ini, open metrics.jsonl (collective, once). step(): one
  // optimizer step on the next batch -- power iteration, objective, backward, gradient sync,
  // optimizer, record -- or nullopt when the epoch has no batch left or the run is done
  // (collective). end_epoch(): evaluation and the epoch's metrics line, then the next epoch
  // (collective). done(): every step of every epoch taken and evaluated.
  void begin();
  std::optional<StepResult> step();
  EpochResult end_epoch();
  bool done() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace lmt::train
