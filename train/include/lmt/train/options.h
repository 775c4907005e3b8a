// lmt::train: everything a training run is configured by (the CLI fills it from flags and INI
// files; a library user fills it directly), and the room's exception type.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace lmt::train {

class TrainError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainOptions {
  // Data: DIR with train.h5 and test.h5 (lmt convert writes them).
  std::string data_dir;
  int64_t random_crop_padding = 0;  // 0: off
  bool horizontal_flip = false;
  int64_t pad_to = 0;  // zero-pad inputs to pad_to x pad_to (0: native size)
  int loader_threads = 1;
  int64_t prefetch = 2;    // batches assembled ahead of the training thread
  int64_t image_size = 0;  // crop size of JPEG datasets (0: the dataset's, else pad_to)

  // Model.
  std::string model = "lmt-mnist";
  std::map<std::string, std::string> model_options;
  bool normalize_input = true;  // (x - mean)/std from the dataset file, inside the model

  // Optimisation. batch_size is the GLOBAL batch (split evenly over ranks).
  int64_t epochs = 1;
  int64_t batch_size = 64;
  int64_t max_steps = -1;  // stop after this many optimizer steps (-1: all epochs)
  std::string optimizer = "adam";  // sgd | adam
  double lr = 1e-3;
  double momentum = 0.9;
  double weight_decay = 0.0;
  std::string schedule = "constant";  // constant | cosine | step
  double warmup_epochs = 0.0;          // linear lr warm-up
  std::vector<int64_t> lr_steps;       // epochs at which `step` multiplies lr by lr_gamma
  double lr_gamma = 0.1;

  // Objective.
  std::string loss = "ce";  // ce | lmt
  double lmt_c = 1.0;
  double lmt_c_warmup_epochs = 0.0;
  std::string lmt_head = "global";  // global | pairwise
  bool lmt_clip = false;
  // Adversarial training and the HE margin (adversarial_objective.h): loss pgd-at | trades.
  std::string adv_norm = "Linf";  // L2 | Linf
  double adv_eps = 0.0;
  int64_t attack_steps = 10;
  double attack_step_size = 0.0;  // 0: 2.5 * eps / attack_steps
  double trades_beta = 6.0;
  double eps_warmup_epochs = 0.0;  // linear eps ramp from 0
  double he_margin = 0.2;          // m of the HE head (model option head=he), training loss only
  // Batch augmentations (augment_batch.h), off by default.
  double mixup_alpha = 0.0;
  double cutmix_alpha = 0.0;
  int64_t randaugment_ops = 0;  // 0: off
  int64_t randaugment_magnitude = 9;
  double random_erasing = 0.0;  // probability per image
  std::string pi_sync = "average";  // average | split: how ranks agree on power-iteration vectors
  bool log_layer_bounds = false;    // debug: every operator's sigma in metrics.jsonl

  // Run.
  std::string out_dir;
  uint64_t seed = 0;
  int threads = 0;  // intra-op threads (0: all cores)
  int64_t log_every = 50;  // steps between progress lines / step metrics

  // Data parallelism.
  double bucket_cap_mb = 25.0;
  bool overlap = true;
  int collective_timeout_s = 300;

  // Checkpoints and stopping (see checkpoint.h).
  int64_t checkpoint_every = 0;   // optimizer steps between checkpoints (0: only on a stop)
  int64_t keep_last = 3;          // checkpoints kept in RUN_DIR/checkpoints (0: all)
  std::string resume;             // "" (fresh run), "auto" (newest whole one, if any) or a DIR
  // A fresh run into an out_dir holding another run's files: removes them (model.pt,
  // metrics.jsonl, config.ini, checkpoints/) once the run has been validated. The CLI refuses such
  // a directory without --resume or --overwrite (checkpoint.h: existing_run_file).
  bool overwrite = false;
  int64_t stop_after_steps = -1;  // checkpoint and stop once global step N is done (-1: off)
  int64_t stop_check_every = 1;   // steps between the ranks' agreement on a stop signal
  // The CLI's resolved flags ("key = value" lines), stored in checkpoints and compared on
  // resume; empty for library users (the known fields are described instead).
  std::string resolved_config;
};

}  // namespace lmt::train
