// Trainer's state, shared by trainer.cpp (the loop) and trainer_state.cpp (resume, checkpoints,
// stop agreement, power-iteration sync): a private header of the train room.
#pragma once

#include <torch/optim/optimizer.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <lmt/data/loader.h>
#include <lmt/dist/grad_sync.h>
#include <lmt/io/json_lines.h>
#include <lmt/train/checkpoint.h>
#include <lmt/train/device.h>
#include <lmt/train/ema.h>
#include <lmt/train/evaluate.h>
#include <lmt/train/objective.h>
#include <lmt/train/trainer.h>

namespace lmt::train {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Trainer::State {
  TrainOptions options;
  std::shared_ptr<dist::Communicator> comm;
  // Tensors on the training device (gradient buckets, power-iteration vectors): `comm` itself on
  // CPUs, NCCL or MPI staged through host memory on GPUs (--grad-backend).
  std::shared_ptr<dist::Communicator> device_comm;
  std::unique_ptr<data::Loader> train_loader, test_loader;
  std::shared_ptr<models::Model> model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<dist::GradSync> grad_sync;
  // The next batch of this epoch, its copy to the device already queued (Trainer::step).
  struct AheadBatch {
    data::Batch batch;
    AheadCopy copy;
  };
  std::optional<AheadBatch> ahead;
  std::unique_ptr<Objective> objective;
  std::unique_ptr<ModelEma> ema;  // --ema-decay > 0
  std::string init_note;          // what --init-from loaded, for begin()'s messages
  io::MetricsWriter metrics;
  std::vector<std::function<void(const StepResult&)>> step_listeners;
  std::vector<std::function<void(const EpochResult&)>> epoch_listeners;
  std::vector<std::function<void(const std::string&)>> message_listeners;
  std::vector<std::function<void(models::Model&, double)>> finish_listeners;
  std::vector<std::function<void(const std::string&)>> checkpoint_file_listeners;
  std::vector<BatchVisitor> eval_batch_listeners;
  BatchVisitor eval_batch_visitor() const {
    if (eval_batch_listeners.empty()) return nullptr;
    return [this](const data::Batch& b, const at::Tensor& logits) {
      for (const auto& l : eval_batch_listeners) l(b, logits);
    };
  }

  int64_t steps_per_epoch = 0, total_steps = 0;
  // Where the run begins: step 0, or a checkpoint's position and this rank's epoch accumulators.
  TrainingPosition start;
  std::vector<double> start_sums{0, 0, 0};
  std::string run_id;  // this run's identity (checkpoint.h): new at step 0, kept by a resume
  bool began = false;
  Clock::time_point run_start;

  // Where the run is.
  int64_t global_step = 0, epoch = 0;
  double last_bound = -1;
  // --keep-best: the best metric so far and its epoch (1-based; 0: none yet).
  double best_value = -1;
  int64_t best_epoch = 0;
  // The epoch in progress (open between its first step() and end_epoch()).
  bool epoch_open = false;
  int64_t first_step = 0, step_in_epoch = 0, images_in_epoch = 0;
  double loss_sum = 0, correct = 0, seen = 0;  // this rank's accumulators of the epoch
  Clock::time_point epoch_start;
  // The steps since the last step line (log_every): this rank's accumulators (checkpointed, so a
  // resumed run writes the same lines), and every rank's images and the steps' own seconds.
  double window_loss_sum = 0, window_correct = 0, window_seen = 0;
  int64_t window_images = 0;
  double window_s = 0;
  void write_step_line(StepResult& r);
  // --trace: the global steps it records, whether it is recording now, and done.
  int64_t trace_first = 0, trace_last = -1;
  bool tracing = false, traced = false;
  void start_trace();
  void finish_trace();  // every rank: stop, gather the events, rank 0 writes --trace

  // The device side (step_figures.cpp). A step adds its figures to tensors on the training
  // device, and the host fields above (loss_sum, correct, window_*, last_bound) are brought up to
  // date by read_figures() -- one host read -- only where they are needed: a step line, an
  // epoch's end, a checkpoint. The divergence check runs there too.
  at::Device device{at::kCPU};
  std::unique_ptr<LossScaler> scaler;  // --precision fp16
  // {epoch loss sum, epoch correct, window loss sum, window correct}, kDouble: the same double
  // additions in the same order as the host sums they mirror, so the figures are equal.
  at::Tensor sums;
  at::Tensor step_bound;  // the latest step's bound (kDouble), undefined: none since the last read
  at::Tensor step_grad_norm;             // --grad-clip-norm: the latest step's norm, likewise
  std::optional<double> last_grad_norm;  // the latest one read
  // The first step whose loss, largest logit or bound is out of range since the last read:
  // {global step (1-based; -1: none), loss, largest |logit|, bound, lr}, kDouble.
  at::Tensor first_diverged;
  int64_t unread_steps = 0;  // steps whose figures are on the device only
  void reset_device_sums();  // sums from the host fields (after a read: an epoch, a window)
  void record_step(const ObjectiveOutput& out, const at::Tensor& labels, double lr);
  // Reads what the device holds into the host fields (nothing when every step is read already)
  // and throws TrainError naming the step where training first diverged. Returns whether it read.
  bool read_figures();

  bool is_root() const { return comm->rank() == 0; }
  void message(const std::string& text) const {
    if (is_root())
      for (const auto& m : message_listeners) m(text);
  }
  // A resumed epoch may have all its steps done and still owe its evaluation and metrics line.
  bool owes_epoch_end(int64_t e) const { return e == start.epoch && start.step_in_epoch > 0; }
  bool done() const {
    return !epoch_open &&
           !(epoch < options.epochs() && (global_step < total_steps || owes_epoch_end(epoch)));
  }
  double wall_s() const { return start.wall_s + seconds_since(run_start); }
  // The weights evaluated, certified and saved: the EMA's when on.
  models::Model& evaluated() { return ema ? ema->model() : *model; }
  // The training-mode bound of evaluated(), the EMA's vectors refreshed first.
  double evaluated_train_bound();
  void open_epoch();
  void advance_power_iteration();
  void restore();
  std::string checkpoint();
  bool stop_agreed();
  void save_final_model(TrainSummary& summary);
  void keep_best(EpochResult& r, const EvalResult& test, double train_bound,
                 const std::vector<double>& unit_radii);
};

}  // namespace lmt::train
