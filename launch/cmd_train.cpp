// lmt train: flags/INI -> TrainOptions, the resolved config beside the run, progress on rank 0.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <lmt/dist/communicator.h>
#include <lmt/train/checkpoint.h>
#include <lmt/train/metrics.h>
#include <lmt/train/trainer.h>

#include "cli.h"
#include "commands.h"
#include "progress.h"

namespace lmt::launch {

static void add_train_options(CommandLine& cli) {
  auto s = [] { return po::value<std::string>(); };
  auto i = [] { return po::value<int64_t>(); };
  auto d = [] { return po::value<double>(); };
  auto b = [] { return po::value<bool>(); };
  cli.options.add_options()
      // data
      ("data", s()->required()->value_name("DIR"), "dataset directory with train.h5 and test.h5")(
          "random-crop-padding", i()->default_value(0),
          "random crop after zero-padding by N (0: off)")("hflip", b()->default_value(false),
                                                          "random horizontal flip (true/false)")(
          "pad-to", i()->default_value(0), "zero-pad images to N x N for the model (0: native)")(
          "loader-threads", po::value<int>()->default_value(1), "background loader threads")(
          "prefetch", i()->default_value(2), "batches the loader assembles ahead (0: none)")(
          "image-size", i()->default_value(0), "crop size for JPEG datasets (0: the dataset's)")
      // model
      ("model", s()->default_value("lmt-mnist"), "architecture (lmt-mnist, resnet18, ...)")(
          "model-option", po::value<std::vector<std::string>>()->value_name("KEY=VALUE"),
          "architecture option, repeatable (e.g. stem=cifar)")(
          "normalize", b()->default_value(true), "normalize inputs with the dataset mean/std")
      // optimisation
      ("epochs", i()->default_value(1), "epochs")(
          "batch-size", i()->default_value(64), "GLOBAL batch size (split evenly over the ranks)")(
          "max-steps", i()->default_value(-1), "stop after N optimizer steps (-1: all epochs)")(
          "optimizer", s()->default_value("adam"), "sgd or adam")("lr", d()->default_value(1e-3),
                                                                  "learning rate")(
          "momentum", d()->default_value(0.9, "0.9"), "SGD momentum")(
          "weight-decay", d()->default_value(0.0), "weight decay")(
          "schedule", s()->default_value("constant"), "constant, cosine or step")(
          "warmup-epochs", d()->default_value(0.0), "linear learning-rate warm-up (epochs)")(
          "lr-steps", s()->default_value(""), "epochs at which 'step' decays the lr (e.g. 30,60)")(
          "lr-gamma", d()->default_value(0.1), "decay factor of 'step'")
      // objective
      ("loss", s()->default_value("ce"), "ce, lmt, pgd-at or trades")(
          "lmt-c", d()->default_value(1.0), "LMT target radius c")(
          "lmt-c-warmup", d()->default_value(0.0), "linear warm-up of c over N epochs")(
          "lmt-head", s()->default_value("global"),
          "global (sqrt2 c L) or pairwise (c L_h |w_t-w_i|)")(
          "lmt-clip", b()->default_value(false), "clip the LMT shift at the current margin")
      // adversarial training (pgd-at, trades) and the HE margin
      ("norm", s()->default_value("Linf"), "threat model of pgd-at/trades: L2 or Linf")(
          "eps", d()->default_value(0.0), "adversarial budget of pgd-at/trades")(
          "attack-steps", i()->default_value(10), "PGD steps of the inner maximization")(
          "attack-step-size", d()->default_value(0.0), "PGD step size (0: 2.5 eps / steps)")(
          "trades-beta", d()->default_value(6.0), "weight of the TRADES KL term")(
          "eps-warmup", d()->default_value(0.0), "linear eps warm-up over N epochs")(
          "he-m", d()->default_value(0.2),
          "HE margin m in the training loss (model option head=he)")
      // batch augmentations (off by default)
      ("mixup", d()->default_value(0.0), "MixUp Beta alpha (0: off)")(
          "cutmix", d()->default_value(0.0), "CutMix Beta alpha (0: off)")(
          "randaugment", i()->default_value(0), "RandAugment ops per image (0: off)")(
          "randaugment-magnitude", i()->default_value(9), "RandAugment magnitude (0..30)")(
          "random-erasing", d()->default_value(0.0), "random erasing probability per image")(
          "pi-sync", s()->default_value("average"),
          "power-iteration sync across ranks: average|split")(
          "log-layer-bounds", b()->default_value(false),
          "write every layer's sigma to metrics.jsonl")
      // run
      ("out", s()->required()->value_name("RUN_DIR"), "run directory (metrics, config, model)")(
          "seed", po::value<int64_t>()->default_value(0),
          "seed of weights, data order, augmentation")(
          "threads", po::value<int>(), "intra-op threads (default: cores / ranks on this node)")(
          "log-every", i()->default_value(50), "progress line every N steps when not on a terminal")
      // data parallelism
      ("bucket-cap-mb", d()->default_value(25.0), "gradient bucket cap (MiB)")(
          "overlap", b()->default_value(true), "overlap gradient all-reduce with backward")(
          "collective-timeout", po::value<int>()->default_value(300),
          "seconds before a stuck collective aborts the job")
      // checkpoints (train/README.md)
      ("checkpoint-every", i()->default_value(0),
       "checkpoint every N optimizer steps into RUN_DIR/checkpoints (0: only on a stop signal)")(
          "keep-last", i()->default_value(3), "checkpoints kept (0: all)")(
          "resume", s()->value_name("auto|DIR"),
          "continue from the newest complete checkpoint in RUN_DIR (auto) or from DIR")(
          "overwrite", po::bool_switch(),
          "start afresh in a RUN_DIR that holds another run (removes its model, metrics, "
          "checkpoints)")("stop-after-steps", i()->default_value(-1),
                          "checkpoint and exit with code 3 after global step N (-1: off)")(
          "stop-check-every", i()->default_value(1),
          "steps between the ranks' agreement on a SIGUSR1/SIGTERM stop request");
}

static train::TrainOptions to_options(const po::variables_map& vm, const Session& session) {
  train::TrainOptions o;
  o.data_dir = vm["data"].as<std::string>();
  o.random_crop_padding = vm["random-crop-padding"].as<int64_t>();
  o.horizontal_flip = vm["hflip"].as<bool>();
  o.pad_to = vm["pad-to"].as<int64_t>();
  o.loader_threads = vm["loader-threads"].as<int>();
  o.prefetch = vm["prefetch"].as<int64_t>();
  o.image_size = vm["image-size"].as<int64_t>();
  o.model = vm["model"].as<std::string>();
  if (vm.count("model-option")) {
    for (const auto& kv : vm["model-option"].as<std::vector<std::string>>()) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw UsageError("the argument ('" + kv +
                         "') for option '--model-option' is invalid "
                         "(expected KEY=VALUE)");
      o.model_options[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  o.normalize_input = vm["normalize"].as<bool>();
  o.epochs = vm["epochs"].as<int64_t>();
  o.batch_size = vm["batch-size"].as<int64_t>();
  o.max_steps = vm["max-steps"].as<int64_t>();
  o.optimizer = vm["optimizer"].as<std::string>();
  o.lr = vm["lr"].as<double>();
  o.momentum = vm["momentum"].as<double>();
  o.weight_decay = vm["weight-decay"].as<double>();
  o.schedule = vm["schedule"].as<std::string>();
  o.warmup_epochs = vm["warmup-epochs"].as<double>();
  if (!vm["lr-steps"].as<std::string>().empty())
    for (double e : parse_number_list("lr-steps", vm["lr-steps"].as<std::string>())) {
      check_range("lr-steps", e, 0, kInf, false, true);
      if (e != std::floor(e)) throw UsageError("option '--lr-steps' takes whole epochs");
      o.lr_steps.push_back(int64_t(e));
    }
  o.lr_gamma = vm["lr-gamma"].as<double>();
  o.loss = vm["loss"].as<std::string>();
  o.lmt_c = vm["lmt-c"].as<double>();
  o.lmt_c_warmup_epochs = vm["lmt-c-warmup"].as<double>();
  o.lmt_head = vm["lmt-head"].as<std::string>();
  o.lmt_clip = vm["lmt-clip"].as<bool>();
  o.adv_norm = vm["norm"].as<std::string>();
  o.adv_eps = vm["eps"].as<double>();
  o.attack_steps = vm["attack-steps"].as<int64_t>();
  o.attack_step_size = vm["attack-step-size"].as<double>();
  o.trades_beta = vm["trades-beta"].as<double>();
  o.eps_warmup_epochs = vm["eps-warmup"].as<double>();
  o.he_margin = vm["he-m"].as<double>();
  o.mixup_alpha = vm["mixup"].as<double>();
  o.cutmix_alpha = vm["cutmix"].as<double>();
  o.randaugment_ops = vm["randaugment"].as<int64_t>();
  o.randaugment_magnitude = vm["randaugment-magnitude"].as<int64_t>();
  o.random_erasing = vm["random-erasing"].as<double>();
  o.pi_sync = vm["pi-sync"].as<std::string>();
  o.log_layer_bounds = vm["log-layer-bounds"].as<bool>();
  o.out_dir = vm["out"].as<std::string>();
  o.seed = uint64_t(vm["seed"].as<int64_t>());
  o.threads = vm.count("threads") ? vm["threads"].as<int>() : default_threads(session);
  o.log_every = vm["log-every"].as<int64_t>();
  o.bucket_cap_mb = vm["bucket-cap-mb"].as<double>();
  o.overlap = vm["overlap"].as<bool>();
  o.collective_timeout_s = vm["collective-timeout"].as<int>();
  o.checkpoint_every = vm["checkpoint-every"].as<int64_t>();
  o.keep_last = vm["keep-last"].as<int64_t>();
  o.resume = vm.count("resume") ? vm["resume"].as<std::string>() : "";
  o.overwrite = vm["overwrite"].as<bool>();
  if (o.overwrite && !o.resume.empty())
    throw UsageError("options '--resume' and '--overwrite' exclude each other");
  o.stop_after_steps = vm["stop-after-steps"].as<int64_t>();
  o.stop_check_every = vm["stop-check-every"].as<int64_t>();
  if (o.batch_size % session.comm->size() != 0)
    throw UsageError("option '--batch-size' (" + std::to_string(o.batch_size) +
                     ") must be divisible by the number of ranks (" +
                     std::to_string(session.comm->size()) + ")");
  return o;
}

// Every numeric option's valid range (NaN and infinities refused unless a range allows them).
static void check_train_ranges(const po::variables_map& vm) {
  const bool open = true;
  for (const char* name : {"random-crop-padding", "pad-to", "prefetch", "image-size",
                           "checkpoint-every", "keep-last", "loader-threads"})
    require_range(vm, name, 0, 1e9);
  for (const char* name : {"warmup-epochs", "lmt-c", "lmt-c-warmup", "eps", "attack-step-size",
                           "trades-beta", "eps-warmup", "he-m", "mixup", "cutmix", "weight-decay"})
    require_range(vm, name, 0, kInf, false, open);
  require_range(vm, "epochs", 1, 1e9);
  require_range(vm, "batch-size", 1, 1e9);
  require_off_or_at_least(vm, "max-steps", -1, 1);
  require_off_or_at_least(vm, "stop-after-steps", -1, 1);
  require_range(vm, "lr", 0, kInf, open, open);
  require_range(vm, "momentum", 0, 1, false, open);
  require_range(vm, "lr-gamma", 0, 1, open, false);
  require_range(vm, "attack-steps", 1, 1e6);
  require_range(vm, "randaugment", 0, 14);  // 14 RandAugment operations
  require_range(vm, "randaugment-magnitude", 0, 30);
  require_range(vm, "random-erasing", 0, 1);
  require_range(vm, "threads", 1, 1024);  // at::set_num_threads(100000) hangs in OpenMP
  require_range(vm, "log-every", 1, 1e9);
  require_range(vm, "bucket-cap-mb", 0, 1e6, open, false);
  require_range(vm, "collective-timeout", 1, 1e6);
  require_range(vm, "stop-check-every", 1, 1e9);
  require_range(vm, "seed", 0, 9.3e18);
}

int run_train(int argc, char** argv, Session& session) {
  CommandLine cli;
  cli.command = "train";
  cli.usage =
      "lmt train --data DIR --out RUN_DIR [options]   (mpirun -np N lmt train ... for N ranks)";
  add_train_options(cli);
  po::variables_map vm;
  if (!parse(cli, argc, argv, vm)) return 0;
  require_choice(vm, "optimizer", {"sgd", "adam"});
  require_choice(vm, "schedule", {"constant", "cosine", "step"});
  require_choice(vm, "loss", {"ce", "lmt", "pgd-at", "trades"});
  require_choice(vm, "norm", {"L2", "Linf"});
  require_choice(vm, "lmt-head", {"global", "pairwise"});
  require_choice(vm, "pi-sync", {"average", "split"});
  check_train_ranges(vm);

  session.comm = dist::make_mpi_communicator(
      dist::CommOptions().timeout(std::chrono::seconds(vm["collective-timeout"].as<int>())));
  train::TrainOptions options = to_options(vm, session);
  options.resolved_config = resolved_config(cli, vm);
  const bool root = session.rank() == 0;
  // A fresh run never replaces another one silently (rank 0 looks, every rank refuses). The
  // trainer writes config.ini once the run is validated (a refused resume leaves it as it was).
  std::string existing = root && options.resume.empty() && !options.overwrite
                             ? train::existing_run_file(options.out_dir)
                             : "";
  if (session.comm->size() > 1) existing = dist::broadcast_string(*session.comm, existing);
  if (!existing.empty())
    throw UsageError("--out " + options.out_dir + " already holds a run (" + existing +
                     "): give --resume auto to continue it or --overwrite to replace it");
  if (root) std::filesystem::create_directories(options.out_dir);

  train::install_stop_signal_handlers();  // SIGUSR1/SIGTERM: checkpoint at the next step, exit 3
  train::Trainer trainer(options, session.comm);
  Progress progress("train");
  if (root) {
    trainer.on_message([&](const std::string& text) { progress.message(text); });
    trainer.on_step([&](const train::StepEvent& e) {
      char tail[160];
      if (e.bound >= 0)
        std::snprintf(tail, sizeof tail, "epoch %lld/%lld  loss %.4f  L %.4g",
                      (long long)e.epoch + 1, (long long)e.epochs, e.loss, e.bound);
      else
        std::snprintf(tail, sizeof tail, "epoch %lld/%lld  loss %.4f", (long long)e.epoch + 1,
                      (long long)e.epochs, e.loss);
      progress.update(e.global_step, e.total_steps, e.elapsed_s, e.images_per_s, tail);
    });
  }
  auto summary = trainer.run();
  progress.finish();
  if (root) {
    train::JsonLine line;
    line.add("command", "train")
        .add("steps", summary.steps)
        .add("train_accuracy", summary.train_accuracy)
        .add("test_accuracy", summary.test_accuracy)
        .add("wall_s", summary.wall_s)
        .add("images_per_s", summary.images_per_s)
        .add("world_size", session.comm->size())
        .add("model_file", summary.model_file);
    if (summary.bound >= 0) line.add("lipschitz_bound", summary.bound);
    if (!summary.checkpoint.empty()) line.add("checkpoint", summary.checkpoint);
    if (summary.stopped) line.add("stopped", true);
    std::cout << line.str() << std::endl;
  }
  return summary.stopped ? train::kExitCheckpointedStop : 0;
}

}  // namespace lmt::launch
