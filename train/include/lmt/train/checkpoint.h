// lmt::train: checkpoints that resume a run bit-for-bit and survive crashes (one directory per
// step, written under a temporary name, fsync'ed, renamed when whole; run_directory.h says where).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <lmt/models/model.h>
#include <lmt/train/options.h>

namespace torch::optim {
class Optimizer;
}

namespace lmt::train {

// Where training stands: everything the loop needs besides model and optimizer to continue.
struct TrainingPosition {
  int64_t global_step = 0;    // optimizer steps taken
  int64_t epoch = 0;          // the epoch in progress (0-based)
  int64_t step_in_epoch = 0;  // steps of `epoch` already taken (may equal steps_per_epoch)
  double wall_s = 0;          // training wall time so far (wall_s in metrics continues it)
  double last_bound = -1;     // the last training bound (-1: objective without one)
};

// The contents of a checkpoint's state.pt.
struct CheckpointState {
  TrainingPosition position;
  int64_t world_size = 1;
  int64_t steps_per_epoch = 0;
  int64_t train_samples = 0;
  at::Tensor rng_states;  // uint8 [world, n]: rank r's torch default CPU generator state
  // uint8 [world, m]: rank r's default generator of the GPU it trained on (dropout, attack
  // starts drawn there); undefined for CPU runs and in checkpoints from before it existed.
  at::Tensor device_rng_states;
  at::Tensor epoch_sums;  // float64 [world, k]: rank r's metric accumulators of the epoch
  std::string config;     // the resolved configuration, "key = value" lines (INI)
  // The run's identity: made when a run starts at step 0, carried over by --resume; pruning
  // only ever removes checkpoints of the same run. Empty in checkpoints from before it existed.
  std::string run_id;
  // Write order within RUN_DIR/checkpoints (1 + the highest there; set by write_checkpoint):
  // "newest" means most recently written, which is the highest step unless a run was resumed
  // from an older checkpoint. 0 in checkpoints from before it existed.
  int64_t sequence = 0;
  // --keep-best: the best metric so far and its epoch (1-based); -1 and 0: none yet (and in
  // checkpoints from before it existed).
  double best_value = -1;
  int64_t best_epoch = 0;
};

// A fresh run identity (random, 16 hex digits).
std::string new_run_id();

// Writes the checkpoint of step state.position.global_step (model.pt, ema.pt when `ema` is given
// (--ema-decay), optimizer.pt, state.pt, config.ini, then MANIFEST with every file's size and
// FNV-1a-64 checksum), each serialized in memory and written with io's checked writes into a
// temporary directory, fsyncs it, renames it to step-NNNNNN and fsyncs checkpoints/. On failure (a
// full disk) the temporary directory is removed and TrainError names the checkpoint and the cause;
// older checkpoints stay. Then keeps the `keep_last` most recently written checkpoints of this run
// (state.run_id; the new one always among them; 0: keep all), never another run's, and removes
// stale temporary directories. Call on one rank only. Returns the directory. `after_file`, when
// set, is called with each file's name once it is durable (Trainer::on_checkpoint_file; the
// crash-window tests pause there).
std::string write_checkpoint(const std::string& run_dir, models::Model& model,
                             const torch::optim::Optimizer& optimizer, const CheckpointState& state,
                             int64_t keep_last,
                             const std::function<void(const std::string&)>& after_file = {},
                             models::Model* ema = nullptr);

// Throws TrainError naming the file when the checkpoint is incomplete (no MANIFEST), a file is
// missing, truncated (size differs) or corrupted (checksum differs).
void verify_checkpoint(const std::string& dir);

// The most recently written checkpoint (highest sequence, then step) under RUN_DIR/checkpoints
// that verifies; damaged ones are skipped and a warning naming each is appended to `warnings`.
// Empty string when there is none.
std::string find_latest_checkpoint(const std::string& run_dir, std::vector<std::string>* warnings);

// Readers (call verify_checkpoint first). Throw TrainError naming the file.
CheckpointState read_checkpoint_state(const std::string& dir);
// Copies the checkpoint's parameters and buffers into `model` in place (names and shapes must
// match; the optimizer keeps pointing at the same tensors).
void load_checkpoint_model(const std::string& dir, models::Model& model);
// The same from the checkpoint's ema.pt (the EMA of the weights); TrainError when it has none.
void load_checkpoint_ema(const std::string& dir, models::Model& ema);
void load_checkpoint_optimizer(const std::string& dir, torch::optim::Optimizer& optimizer);
// The model alone (for export and evaluation): the EMA weights (ema.pt) when the checkpoint has
// them, as RUN_DIR/model.pt would hold them, else model.pt.
models::LoadedModel read_checkpoint_model(const std::string& dir);

}  // namespace lmt::train
