// lmt::train: everything a training run is configured by, declared once. Each line of
// LMT_TRAIN_OPTIONS is one option: its C++ type, its TrainOptions member (a chained setter and a
// getter, LibTorch's TORCH_ARG), its default, and its spec: name (the CLI flag, the INI key, the
// config.ini key), help, valid range, whether it is operational (may differ on resume). The CLI's
// flags and help, --config, the run's config.ini, validation and the resume-compatibility check
// are all generated from this table (train_option_schema()); adding a line adds the option
// everywhere. Library users: TrainOptions().data_dir("fm").loss(Loss::kLmt).lmt_c(0.5).
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/arg.h>

#include <lmt/attack/attack.h>
#include <lmt/options/schema.h>

namespace lmt::train {

class TrainError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Optimizer { kSgd, kAdam, kAdamw };  // adam: L2 in the gradient; adamw: decoupled
enum class Schedule { kConstant, kCosine, kStep };
enum class Loss { kCe, kLmt, kPgdAt, kTrades, kEmma };
enum class LmtHead { kGlobal, kPairwise };  // sqrt2 c L, or c L_h |w_t - w_i|
enum class PiSync { kAverage, kSplit };     // how ranks agree on power-iteration vectors
enum class Precision { kFp32, kBf16, kFp16 };  // of the forward pass (autocast); the bound: fp32
enum class GradBackend { kAuto, kNccl, kMpi };  // how device tensors are reduced across ranks

// --keep-best: the epoch whose evaluated model RUN_DIR/model_best.pt holds. Written
// "test-accuracy" or "certified@EPS" (certified accuracy at l2 radius EPS); "" is off.
struct KeepBest {
  enum class Metric { kNone, kTestAccuracy, kCertified };
  Metric metric = Metric::kNone;
  double eps = 0;  // kCertified's radius (> 0)
  bool on() const { return metric != Metric::kNone; }
};

using ModelOptionMap = std::map<std::string, std::string>;
using EpochList = std::vector<int64_t>;

// clang-format off
#define LMT_TRAIN_OPTIONS(X)                                                                       \
  /* data */                                                                                       \
  X(std::string, data_dir, "", Spec("data", "dataset directory with train.h5 and test.h5")        \
      .operational().required().value("DIR"))                                                     \
  X(int64_t, random_crop_padding, 0, Spec("random-crop-padding",                                   \
      "random crop after zero-padding by N (0: off)").in(0, 1e9))                                  \
  X(bool, horizontal_flip, false, Spec("hflip", "random horizontal flip"))                         \
  X(int64_t, pad_to, 0, Spec("pad-to", "zero-pad images to N x N for the model (0: native)")      \
      .in(0, 1e9))                                                                                 \
  X(int, loader_threads, 1, Spec("loader-threads", "background loader threads").operational()     \
      .in(0, 1e9))                                                                                 \
  X(int64_t, prefetch, 2, Spec("prefetch", "batches the loader assembles ahead (0: none)")        \
      .operational().in(0, 1e9))                                                                   \
  X(int64_t, image_size, 0, Spec("image-size", "crop size for JPEG datasets (0: the dataset's)")  \
      .in(0, 1e9))                                                                                 \
  /* model */                                                                                      \
  X(std::string, model, "lmt-mnist", Spec("model", "architecture (lmt-mnist, resnet18, ...)"))    \
  X(ModelOptionMap, model_options, {}, Spec("model-option",                                        \
      "architecture option, repeatable (e.g. stem=cifar)").value("KEY=VALUE"))                     \
  X(bool, normalize_input, true, Spec("normalize", "normalize inputs with the dataset mean/std"))  \
  X(std::string, init_from, "", Spec("init-from", "initial weights: a state_dict file (.pth"       \
      " from torch.save, or .safetensors) matched by name and shape, strictly").value("FILE"))     \
  X(std::vector<std::string>, init_from_skip, {}, Spec("init-from-skip",                           \
      "--init-from keys left as initialized (globs, comma list; e.g. fc.*)").value("GLOB,..."))    \
  /* optimisation */                                                                               \
  X(int64_t, epochs, 1, Spec("epochs", "epochs").in(1, 1e9))                                       \
  X(int64_t, batch_size, 64, Spec("batch-size", "GLOBAL batch size (split evenly over the ranks)")\
      .in(1, 1e9))                                                                                 \
  X(int64_t, accum_steps, 1, Spec("accum-steps",                                                  \
      "micro-batches per optimizer step (gradients all-reduced after the last)").in(1, 1e6))       \
  X(int64_t, max_steps, -1, Spec("max-steps", "stop after N optimizer steps (-1: all epochs)")    \
      .off_or_at_least(-1, 1))                                                                     \
  X(Optimizer, optimizer, Optimizer::kAdam, Spec("optimizer",                                     \
      "adam (weight decay as L2 in the gradient), adamw (decoupled), sgd"))                        \
  X(double, lr, 1e-3, Spec("lr", "learning rate").positive().below(kInf))                          \
  X(double, momentum, 0.9, Spec("momentum", "SGD momentum").in(0, 1).below(1))                     \
  X(double, weight_decay, 0.0, Spec("weight-decay", "weight decay").at_least(0).below(kInf))      \
  X(bool, no_decay_bias_norm, false, Spec("no-decay-bias-norm",                                    \
      "no weight decay for biases and 1-d (norm) parameters, as timm").as_switch())                \
  X(double, grad_clip_norm, 0.0, Spec("grad-clip-norm",                                            \
      "clip the global l2 norm of the averaged gradients to X (0: off)").at_least(0).below(kInf)) \
  X(double, label_smoothing, 0.0, Spec("label-smoothing",                                          \
      "label smoothing of the cross-entropy (ce, pgd-at, trades)").in(0, 1).below(1))             \
  X(double, ema_decay, 0.0, Spec("ema-decay", "EMA of the weights after each optimizer step,"      \
      " evaluated and saved instead of them (0: off; e.g. 0.9998)").in(0, 1).below(1))             \
  X(bool, ema_warmup, false, Spec("ema-warmup",                                                    \
      "EMA decay min(D, (1+n)/(10+n)) at optimizer step n (TensorFlow's num_updates)")             \
      .as_switch())                                                                                \
  X(Schedule, schedule, Schedule::kConstant, Spec("schedule", "learning-rate schedule"))           \
  X(double, warmup_epochs, 0.0, Spec("warmup-epochs", "linear learning-rate warm-up (epochs)")    \
      .at_least(0).below(kInf))                                                                    \
  X(EpochList, lr_steps, {}, Spec("lr-steps", "epochs at which 'step' decays the lr (e.g. 30,60)")\
      .at_least(0).below(kInf).value("E1,E2"))                                                     \
  X(double, lr_gamma, 0.1, Spec("lr-gamma", "decay factor of 'step'").in(0, 1)                    \
      .above(0))                                                                                   \
  /* objective */                                                                                  \
  X(Loss, loss, Loss::kCe, Spec("loss", "training objective"))                                     \
  X(double, lmt_c, 1.0, Spec("lmt-c", "LMT target radius c").at_least(0).below(kInf))             \
  X(double, lmt_c_warmup_epochs, 0.0, Spec("lmt-c-warmup", "linear warm-up of c over N epochs")   \
      .at_least(0).below(kInf))                                                                    \
  X(LmtHead, lmt_head, LmtHead::kGlobal, Spec("lmt-head",                                          \
      "global (sqrt2 c L) or pairwise (c L_h |w_t-w_i|)"))                                         \
  X(bool, lmt_clip, false, Spec("lmt-clip", "clip the LMT shift at the current margin"))           \
  X(double, emma_eps, 0.0, Spec("emma-eps", "EMMA radius eps (--loss emma; ramped by --eps-warmup)")\
      .at_least(0).below(kInf))                                                                    \
  /* adversarial training (pgd-at, trades) and the HE margin */                                    \
  X(attack::Norm, adv_norm, attack::Norm::kLinf, Spec("norm", "threat model of pgd-at/trades"))    \
  X(double, adv_eps, 0.0, Spec("eps", "adversarial budget of pgd-at/trades (e.g. 8/255)")         \
      .at_least(0).below(kInf))                                                                    \
  X(int64_t, attack_steps, 10, Spec("attack-steps", "PGD steps of the inner maximization")        \
      .in(1, 1e6))                                                                                 \
  X(double, attack_step_size, 0.0, Spec("attack-step-size", "PGD step size (0: 2.5 eps / steps)") \
      .at_least(0).below(kInf))                                                                    \
  X(double, trades_beta, 6.0, Spec("trades-beta", "weight of the TRADES KL term")                 \
      .at_least(0).below(kInf))                                                                    \
  X(double, eps_warmup_epochs, 0.0, Spec("eps-warmup", "linear eps warm-up over N epochs")        \
      .at_least(0).below(kInf))                                                                    \
  X(double, he_margin, 0.2, Spec("he-m", "HE margin m in the training loss (model option head=he)")\
      .at_least(0).below(kInf))                                                                    \
  /* batch augmentations (off by default) */                                                       \
  X(double, mixup_alpha, 0.0, Spec("mixup", "MixUp Beta alpha (0: off)").at_least(0).below(kInf)) \
  X(double, cutmix_alpha, 0.0, Spec("cutmix", "CutMix Beta alpha (0: off)").at_least(0)           \
      .below(kInf))                                                                                \
  X(int64_t, randaugment_ops, 0, Spec("randaugment", "RandAugment ops per image (0: off)")        \
      .in(0, 14)) /* 14 RandAugment operations */                                                  \
  X(int64_t, randaugment_magnitude, 9, Spec("randaugment-magnitude", "RandAugment magnitude")     \
      .in(0, 30))                                                                                  \
  X(double, random_erasing, 0.0, Spec("random-erasing", "random erasing probability per image")   \
      .in(0, 1))                                                                                   \
  X(PiSync, pi_sync, PiSync::kAverage, Spec("pi-sync", "power-iteration sync across ranks"))       \
  X(bool, log_layer_bounds, false, Spec("log-layer-bounds",                                        \
      "write every layer's sigma to metrics.jsonl").operational())                                 \
  X(std::string, trace, "", Spec("trace", "write a step timeline of steps --trace-steps to FILE"  \
      " (Chrome/Perfetto JSON trace events: phases, all-reduces, every rank)").operational()      \
      .value("FILE.json"))                                                                         \
  X(std::string, trace_steps, "5:24", Spec("trace-steps", "global steps A to B (1-based,"          \
      " inclusive) that --trace records").operational().value("A:B"))                               \
  /* run */                                                                                        \
  X(std::string, out_dir, "", Spec("out", "run directory (metrics, config, model)").operational()  \
      .required().value("RUN_DIR"))                                                                \
  X(uint64_t, seed, 0, Spec("seed", "seed of weights, data order, augmentation").in(0, 9.2e18))   \
  X(KeepBest, keep_best, {}, Spec("keep-best", "also write RUN_DIR/model_best.pt at the best"      \
      " epoch: test-accuracy, or certified@EPS (training bound; sound bound recorded)")            \
      .value("METRIC"))                                                                            \
  X(std::string, device, "auto", Spec("device", "where each rank computes: cpu, cuda (GPU"         \
      " local_rank % GPUs), cuda:K, auto (cuda when this LibTorch has it and a GPU is visible)")  \
      .operational().value("cpu|cuda|cuda:K|auto"))                                              \
  X(Precision, precision, Precision::kFp32, Spec("precision", "forward/backward precision"         \
      " (autocast; power iteration and the bound stay fp32; fp16: CUDA only, loss scaling)"))     \
  X(bool, channels_last, false, Spec("channels-last", "channels-last memory format for the model" \
      " and the batches").operational().as_switch())                                             \
  X(int, threads, 0, Spec("threads", "intra-op threads (0: the cores / the ranks on this node)")  \
      .operational().in(0, 1024)) /* at::set_num_threads(100000) hangs in OpenMP */                \
  X(int64_t, log_every, 50, Spec("log-every", "a step line in metrics.jsonl every N steps (and a"   \
      " plain progress line off a terminal; the loss's running mean)").operational().in(1, 1e9))   \
  /* data parallelism */                                                                           \
  X(double, bucket_cap_mb, 25.0, Spec("bucket-cap-mb", "gradient bucket cap (MiB)").operational() \
      .in(0, 1e6).above(0))                                                                        \
  X(bool, overlap, true, Spec("overlap", "overlap gradient all-reduce with backward")             \
      .operational())                                                                              \
  X(GradBackend, grad_backend, GradBackend::kAuto, Spec("grad-backend", "how GPU ranks reduce"     \
      " gradients and power-iteration vectors: nccl, mpi (staged through host memory; ranks may"  \
      " share a GPU), auto (nccl on CUDA when built with it; CPU ranks: mpi)").operational())     \
  X(int, collective_timeout_s, 300, Spec("collective-timeout",                                     \
      "seconds before a stuck collective aborts the job").operational().in(1, 1e6))                \
  /* checkpoints and stopping (train/README.md) */                                                 \
  X(int64_t, checkpoint_every, 0, Spec("checkpoint-every",                                         \
      "checkpoint every N optimizer steps into RUN_DIR/checkpoints (0: only on a stop signal)")    \
      .operational().in(0, 1e9))                                                                   \
  X(int64_t, keep_last, 3, Spec("keep-last", "checkpoints kept (0: all)").operational()            \
      .in(0, 1e9))                                                                                 \
  X(std::string, resume, "", Spec("resume",                                                        \
      "continue from the newest complete checkpoint in RUN_DIR (auto) or from DIR").operational()  \
      .value("auto|DIR"))                                                                          \
  X(bool, overwrite, false, Spec("overwrite",                                                      \
      "start afresh in a RUN_DIR that holds another run (removes its model, metrics, checkpoints)")\
      .operational().as_switch())                                                                  \
  X(int64_t, stop_after_steps, -1, Spec("stop-after-steps",                                        \
      "checkpoint and exit with code 3 after global step N (-1: off)").operational()               \
      .off_or_at_least(-1, 1))                                                                     \
  X(int64_t, stop_check_every, 1, Spec("stop-check-every",                                         \
      "steps between the ranks' agreement on a SIGUSR1/SIGTERM stop request").operational()        \
      .in(1, 1e9))
// clang-format on

struct TrainOptions {
#define LMT_TRAIN_OPTION_MEMBER(type, member, value, spec) TORCH_ARG(type, member) = value;
  LMT_TRAIN_OPTIONS(LMT_TRAIN_OPTION_MEMBER)
#undef LMT_TRAIN_OPTION_MEMBER
};

// The schema of TrainOptions (built once from LMT_TRAIN_OPTIONS).
const options::Schema<TrainOptions>& train_option_schema();

// Checks `options` for a run on `world_size` ranks: every value against its spec (as the CLI
// would), then the rules between options (--resume excludes --overwrite, the batch divides over
// the ranks, pgd-at/trades need eps > 0, ...). Throws TrainError naming the option.
void check_options(const TrainOptions& options, int world_size);

// MixUp, CutMix, RandAugment or random erasing is on; the model has the HE head (head=he).
bool uses_augmentation(const TrainOptions& options);
bool uses_hypersphere_head(const TrainOptions& options);

// --trace-steps A:B as global steps (1-based, inclusive). Throws TrainError naming the option.
std::pair<int64_t, int64_t> trace_step_range(const TrainOptions& options);

// The run's configuration as config.ini text (every option, defaults included); --config reads
// it back, and a resume compares it with the checkpoint's (first_run_difference).
std::string run_config(const TrainOptions& options);
// The first run-defining option of `options` that differs from the config text a checkpoint
// holds, as "--eps: checkpoint has 0.1, this run has 0.2"; empty when none does.
std::string first_run_difference(const std::string& saved_config, const TrainOptions& options);

}  // namespace lmt::train

namespace lmt::options {
template <>
struct EnumNames<train::Optimizer> {
  static constexpr std::pair<train::Optimizer, const char*> table[] = {
      {train::Optimizer::kSgd, "sgd"},
      {train::Optimizer::kAdam, "adam"},
      {train::Optimizer::kAdamw, "adamw"}};
};
template <>
struct EnumNames<train::Schedule> {
  static constexpr std::pair<train::Schedule, const char*> table[] = {
      {train::Schedule::kConstant, "constant"},
      {train::Schedule::kCosine, "cosine"},
      {train::Schedule::kStep, "step"}};
};
template <>
struct EnumNames<train::Loss> {
  static constexpr std::pair<train::Loss, const char*> table[] = {{train::Loss::kCe, "ce"},
                                                                  {train::Loss::kLmt, "lmt"},
                                                                  {train::Loss::kPgdAt, "pgd-at"},
                                                                  {train::Loss::kTrades, "trades"},
                                                                  {train::Loss::kEmma, "emma"}};
};
template <>
struct EnumNames<train::LmtHead> {
  static constexpr std::pair<train::LmtHead, const char*> table[] = {
      {train::LmtHead::kGlobal, "global"}, {train::LmtHead::kPairwise, "pairwise"}};
};
template <>
struct Codec<train::KeepBest> {
  static void describe(Spec& s) { s.type = "text"; }
  static Items format(const train::KeepBest& v);
  static train::KeepBest parse(const Spec& s, const Items& items);
};
template <>
struct EnumNames<train::Precision> {
  static constexpr std::pair<train::Precision, const char*> table[] = {
      {train::Precision::kFp32, "fp32"},
      {train::Precision::kBf16, "bf16"},
      {train::Precision::kFp16, "fp16"}};
};
template <>
struct EnumNames<train::GradBackend> {
  static constexpr std::pair<train::GradBackend, const char*> table[] = {
      {train::GradBackend::kAuto, "auto"},
      {train::GradBackend::kNccl, "nccl"},
      {train::GradBackend::kMpi, "mpi"}};
};
template <>
struct EnumNames<train::PiSync> {
  static constexpr std::pair<train::PiSync, const char*> table[] = {
      {train::PiSync::kAverage, "average"}, {train::PiSync::kSplit, "split"}};
};
}  // namespace lmt::options
