// lmt::train: the run directory (RUN_DIR/model.pt, metrics.jsonl, config.ini, checkpoints/):
// where the checkpoints live, whether it already holds a run, and what resume and --overwrite do
// to the files beside the checkpoints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace lmt::train {

// RUN_DIR/checkpoints and RUN_DIR/checkpoints/step-000123.
std::string checkpoints_root(const std::string& run_dir);
std::string checkpoint_path(const std::string& run_dir, int64_t step);
// The step-NNNNNN directories under RUN_DIR/checkpoints as (step, directory), by step; whole or
// not (verify_checkpoint tells). Empty when there is no checkpoints/.
std::vector<std::pair<int64_t, std::filesystem::path>> list_checkpoints(const std::string& run_dir);

// The first file that shows RUN_DIR holds a started or finished run (RUN_DIR/model.pt,
// RUN_DIR/metrics.jsonl or a checkpoint directory), empty when there is none: a new run there is
// refused unless it resumes or overwrites.
std::string existing_run_file(const std::string& run_dir);
// Removes what a previous run left in RUN_DIR (model.pt, model_best.pt, metrics.jsonl,
// config.ini, the checkpoints): --overwrite, once the new run has been validated. Throws
// TrainError.
void remove_previous_run(const std::string& run_dir);

// Resume continues RUN_DIR/metrics.jsonl: drops the lines written after the checkpoint of `step`
// by the interrupted run (a "step" beyond it, or the epoch line of that very step, since an epoch
// ends after its last step's checkpoint) and keeps the rest; atomic rewrite. No-op when the file
// does not exist.
void trim_metrics_after(const std::string& path, int64_t step);

}  // namespace lmt::train
