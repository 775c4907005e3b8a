// lmt::train: checkpoints that resume a run bit-for-bit and survive crashes (one directory per
// step, written under a temporary name, fsync'ed, renamed when whole), and the stop request.
#pragma once

#include <cstdint>
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

// Exit code of `lmt train` when it stopped early on request (SIGUSR1/SIGTERM or
// --stop-after-steps) after writing a checkpoint: "not finished, requeue me with --resume auto".
constexpr int kExitCheckpointedStop = 3;

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
  at::Tensor epoch_sums;  // float64 [world, k]: rank r's metric accumulators of the epoch
  std::string config;     // the resolved configuration, "key = value" lines (INI)
  // The run's identity: made when a run starts at step 0, carried over by --resume; pruning
  // only ever removes checkpoints of the same run. Empty in checkpoints from before it existed.
  std::string run_id;
  // Write order within RUN_DIR/checkpoints (1 + the highest there; set by write_checkpoint):
  // "newest" means most recently written, which is the highest step unless a run was resumed
  // from an older checkpoint. 0 in checkpoints from before it existed.
  int64_t sequence = 0;
};

// A fresh run identity (random, 16 hex digits).
std::string new_run_id();

// RUN_DIR/checkpoints and RUN_DIR/checkpoints/step-000123.
std::string checkpoints_root(const std::string& run_dir);
std::string checkpoint_path(const std::string& run_dir, int64_t step);

// Writes the checkpoint of step state.position.global_step (model.pt, optimizer.pt, state.pt,
// config.ini, then MANIFEST with every file's size and FNV-1a-64 checksum), each serialized in
// memory and written with io's checked writes into a temporary directory, fsyncs it, renames it
// to step-NNNNNN and fsyncs checkpoints/. On failure (a full disk) the temporary directory is
// removed and TrainError names the checkpoint and the cause; older checkpoints stay. Then keeps
// the `keep_last` most recently written checkpoints of this run (state.run_id; the new one always
// among them; 0: keep all), never another run's, and removes stale temporary directories. Call on
// one rank only. Returns the directory.
// Test hook: LMT_TEST_CHECKPOINT_PAUSE_MS=N sleeps N ms after each file (crash-window tests).
std::string write_checkpoint(const std::string& run_dir, models::Model& model,
                             const torch::optim::Optimizer& optimizer, const CheckpointState& state,
                             int64_t keep_last);

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
void load_checkpoint_optimizer(const std::string& dir, torch::optim::Optimizer& optimizer);
// The model alone (for export and evaluation).
models::LoadedModel read_checkpoint_model(const std::string& dir);

// The first option of `current` that differs from `saved` in a way that changes the run,
// formatted "--lr: checkpoint has 0.001, this run has 0.01"; empty when compatible. Both are
// "key = value" lines. Operational options (out, data, threads, log-every, loader-threads,
// bucket-cap-mb, overlap, collective-timeout, checkpoint-every, keep-last, resume, overwrite,
// stop-after-steps, stop-check-every, log-layer-bounds) may differ.
std::string incompatible_option(const std::string& saved, const std::string& current);
// The run-defining TrainOptions as such lines, for library users without a CLI config
// (TrainOptions::resolved_config, when set, is used instead: it also covers newer flags).
std::string describe_options(const TrainOptions& options);

// The first file that shows RUN_DIR holds a started or finished run (RUN_DIR/model.pt,
// RUN_DIR/metrics.jsonl or a checkpoint directory), empty when there is none: a new run there is
// refused unless it resumes or overwrites.
std::string existing_run_file(const std::string& run_dir);
// Removes what a previous run left in RUN_DIR (model.pt, metrics.jsonl, config.ini, the
// checkpoints): --overwrite, once the new run has been validated. Throws TrainError.
void remove_previous_run(const std::string& run_dir);

// Resume continues RUN_DIR/metrics.jsonl: drops the lines written after the checkpoint of `step`
// by the interrupted run (a "step" beyond it, or the epoch line of that very step, since an epoch
// ends after its last step's checkpoint) and keeps the rest; atomic rewrite. No-op when the file
// does not exist.
void trim_metrics_after(const std::string& path, int64_t step);

// Stop requests. install_stop_signal_handlers() makes SIGUSR1 and SIGTERM set a flag
// (async-signal-safe); the training loop polls it at step boundaries.
void install_stop_signal_handlers();
bool stop_signal_received();
void request_stop();  // as if a signal arrived (tests, embedding programs)

}  // namespace lmt::train
