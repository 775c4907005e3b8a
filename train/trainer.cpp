// The training loop: shard, forward, bound, objective, backward, bucketed gradient all-reduce,
// optimizer step, metrics; evaluation at each epoch end; the final model on rank 0.
#include <lmt/train/trainer.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>

#include <lmt/data/loader.h>
#include <lmt/dist/grad_sync.h>
#include <lmt/dist/module_sync.h>
#include <lmt/dist/vector_sync.h>
#include <lmt/io/atomic_file.h>
#include <lmt/lipschitz/bounded_module.h>
#include <lmt/train/checkpoint.h>
#include <lmt/train/evaluate.h>
#include <lmt/train/metrics.h>
#include <lmt/train/objective.h>
#include <lmt/train/schedule.h>

namespace lmt::train {

using Clock = std::chrono::steady_clock;

struct Trainer::State {
  TrainOptions options;
  std::shared_ptr<dist::Communicator> comm;
  std::unique_ptr<data::Loader> train_loader, test_loader;
  std::shared_ptr<models::Model> model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<dist::GradSync> grad_sync;
  std::unique_ptr<Objective> objective;
  MetricsWriter metrics;
  std::function<void(const StepEvent&)> step_callback;
  std::function<void(const std::string&)> message_callback;
  int64_t global_step = 0;
  // Where run() begins: step 0, or a checkpoint's position and this rank's epoch accumulators.
  TrainingPosition start;
  std::vector<double> start_sums{0, 0, 0};
  std::string run_id;  // this run's identity (checkpoint.h): new at step 0, kept by a resume

  bool is_root() const { return comm->rank() == 0; }
  void message(const std::string& text) const {
    if (is_root() && message_callback) message_callback(text);
  }
  void advance_power_iteration();
  std::string run_config() const {
    return options.resolved_config.empty() ? describe_options(options) : options.resolved_config;
  }
  void restore();
  std::string checkpoint(const TrainingPosition& position, const std::vector<double>& sums);
  bool stop_agreed();
};

static at::Tensor cpu_rng_state() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

static void set_cpu_rng_state(const at::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state.contiguous());
}

// Collective. Every rank loads the same checkpoint (rank 0 picks it for --resume auto) from
// the shared run directory and takes its own RNG state and metric accumulators from it.
void Trainer::State::restore() {
  const auto& o = options;
  run_id = new_run_id();
  if (o.resume.empty()) return;
  std::string dir;
  if (is_root()) {
    if (o.resume == "auto") {
      std::vector<std::string> warnings;
      dir = find_latest_checkpoint(o.out_dir, &warnings);
      for (const auto& w : warnings) message("warning: " + w);
      if (dir.empty())
        message("--resume auto: no complete checkpoint in " + checkpoints_root(o.out_dir) +
                "; starting at step 0");
    } else {
      dir = o.resume;
    }
  }
  if (comm->size() > 1) dir = dist::broadcast_string(*comm, dir);
  if (dir.empty()) return;
  CheckpointState saved;
  try {
    verify_checkpoint(dir);
    saved = read_checkpoint_state(dir);
  } catch (const TrainError& e) {
    throw TrainError("--resume: " + std::string(e.what()));
  }
  if (saved.world_size != comm->size())
    throw TrainError("--resume: " + dir + " was written by " + std::to_string(saved.world_size) +
                     " rank(s), this job has " + std::to_string(comm->size()) +
                     "; resume with the same number of ranks (per-rank batch-norm statistics and "
                     "the gradient summation order depend on it)");
  if (saved.train_samples != train_loader->info().size ||
      saved.steps_per_epoch != train_loader->steps_per_epoch())
    throw TrainError("--data: the checkpoint " + dir + " was trained on " +
                     std::to_string(saved.train_samples) + " images (" +
                     std::to_string(saved.steps_per_epoch) + " steps/epoch), this dataset has " +
                     std::to_string(train_loader->info().size) + " (" +
                     std::to_string(train_loader->steps_per_epoch()) + ")");
  const std::string difference = incompatible_option(saved.config, run_config());
  if (!difference.empty())
    throw TrainError("--resume: " + dir + " belongs to a different run: " + difference);
  load_checkpoint_model(dir, *model);
  load_checkpoint_optimizer(dir, *optimizer);
  set_cpu_rng_state(saved.rng_states[comm->rank()]);
  at::Tensor sums = saved.epoch_sums[comm->rank()].contiguous();
  start_sums.assign(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
  start = saved.position;
  if (!saved.run_id.empty()) run_id = saved.run_id;
  message("resuming from " + dir + " (step " + std::to_string(start.global_step) + ", epoch " +
          std::to_string(start.epoch + 1) + " step " + std::to_string(start.step_in_epoch) + ")");
}

// Collective. All ranks hold identical model and optimizer state after the gradient all-reduce,
// so rank 0 writes them; RNG states and epoch accumulators are per rank and gathered. The
// barrier keeps every rank from running ahead of a checkpoint that is not yet durable.
std::string Trainer::State::checkpoint(const TrainingPosition& position,
                                       const std::vector<double>& sums) {
  at::Tensor rng = cpu_rng_state().contiguous();
  at::Tensor local_sums = at::tensor(sums, at::kDouble);
  CheckpointState state;
  state.position = position;
  state.world_size = comm->size();
  state.steps_per_epoch = train_loader->steps_per_epoch();
  state.train_samples = train_loader->info().size;
  state.rng_states = comm->size() > 1 ? comm->all_gather(rng) : rng.unsqueeze(0);
  state.epoch_sums = comm->size() > 1 ? comm->all_gather(local_sums) : local_sums.unsqueeze(0);
  state.config = run_config();
  state.run_id = run_id;
  std::string dir;
  if (is_root())
    dir = write_checkpoint(options.out_dir, *model, *optimizer, state, options.keep_last);
  comm->barrier();
  return dir;
}

// Collective every stop_check_every steps: a signal seen by any rank stops all of them at the
// same step boundary (one all-reduce MAX of a flag).
bool Trainer::State::stop_agreed() {
  if (options.stop_after_steps > 0 && global_step == options.stop_after_steps) return true;
  if (comm->size() == 1) return stop_signal_received();
  if (global_step % std::max<int64_t>(1, options.stop_check_every) != 0) return false;
  auto flag =
      dist::all_reduce_doubles(*comm, {stop_signal_received() ? 1.0 : 0.0}, dist::ReduceOp::kMax);
  return flag[0] > 0;
}

static std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                               std::vector<at::Tensor> params) {
  if (o.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
  if (o.optimizer == "sgd")
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  throw TrainError("--optimizer: unknown optimizer '" + o.optimizer + "' (expected sgd or adam)");
}

static void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

Trainer::Trainer(TrainOptions options, std::shared_ptr<dist::Communicator> comm)
    : state_(std::make_unique<State>()) {
  auto& s = *state_;
  s.options = std::move(options);
  s.comm = std::move(comm);
  const auto& o = s.options;
  if (o.data_dir.empty()) throw TrainError("--data: a dataset directory is required");
  if (o.epochs < 1) throw TrainError("--epochs: must be >= 1");
  if (o.threads > 0) at::set_num_threads(o.threads);
  if (o.pi_sync != "average" && o.pi_sync != "split")
    throw TrainError("--pi-sync: expected average or split, got '" + o.pi_sync + "'");

  const int rank = s.comm->rank(), world = s.comm->size();
  const std::string train_file = o.data_dir + "/train.h5", test_file = o.data_dir + "/test.h5";
  const int64_t pad = o.pad_to;
  s.train_loader =
      std::make_unique<data::Loader>(train_file, data::LoaderOptions()
                                                     .batch_size(o.batch_size)
                                                     .rank(rank)
                                                     .world_size(world)
                                                     .seed(o.seed)
                                                     .shuffle(true)
                                                     .drop_last(true)
                                                     .random_crop_padding(o.random_crop_padding)
                                                     .horizontal_flip(o.horizontal_flip)
                                                     .pad_to(pad, pad)
                                                     .threads(o.loader_threads)
                                                     .prefetch(o.prefetch)
                                                     .image_size(o.image_size));
  s.test_loader = std::make_unique<data::Loader>(
      test_file, data::LoaderOptions()
                     .batch_size(std::max<int64_t>(o.batch_size, 256 * world))
                     .rank(rank)
                     .world_size(world)
                     .seed(o.seed)
                     .shuffle(false)
                     .drop_last(false)
                     .pad_to(pad, pad)
                     .threads(o.loader_threads)
                     .prefetch(o.prefetch)
                     .image_size(o.image_size));
  {
    const auto &a = s.train_loader->info(), &b = s.test_loader->info();
    auto mismatch = [&](const char* what, int64_t train_value, int64_t test_value) {
      if (train_value != test_value)
        throw TrainError(test_file + ": " + what + " " + std::to_string(test_value) +
                         " differs from " + train_file + " (" + std::to_string(train_value) + ")");
    };
    mismatch("num_classes", a.num_classes, b.num_classes);
    mismatch("channels", a.channels, b.channels);
    if (pad <= 0 && o.image_size <= 0) {
      mismatch("height", a.height, b.height);
      mismatch("width", a.width, b.width);
    }
  }
  if (s.train_loader->steps_per_epoch() < 1)
    throw TrainError("--batch-size: " + std::to_string(o.batch_size) + " exceeds the " +
                     std::to_string(s.train_loader->info().size) + " training images");

  const auto& info = s.train_loader->info();
  models::ModelConfig config;
  config.name = o.model;
  config.num_classes = info.num_classes;
  config.channels = info.channels;
  config.height = pad > 0 ? pad : info.height;
  config.width = pad > 0 ? pad : info.width;
  if (o.normalize_input) {
    config.mean = info.mean;
    config.std = info.std;
  }
  config.options = o.model_options;
  torch::manual_seed(o.seed);
  s.model = models::make_model(config);
  s.objective = make_objective(o);
  dist::verify_and_broadcast(*s.comm, *s.model);
  s.optimizer = make_optimizer(o, s.model->parameters());
  s.grad_sync =
      std::make_unique<dist::GradSync>(s.comm, s.model->parameters(),
                                       dist::GradSyncOptions()
                                           .bucket_cap_bytes(int64_t(o.bucket_cap_mb * 1024 * 1024))
                                           .overlap(o.overlap));

  if (s.is_root()) {
    if (o.out_dir.empty()) throw TrainError("--out: a run directory is required");
    std::filesystem::create_directories(o.out_dir);
  }
}

Trainer::~Trainer() = default;

void Trainer::on_step(std::function<void(const StepEvent&)> callback) {
  state_->step_callback = std::move(callback);
}
void Trainer::on_message(std::function<void(const std::string&)> callback) {
  state_->message_callback = std::move(callback);
}
models::Model& Trainer::model() { return *state_->model; }

// Makes the power-iteration vectors identical on every rank after this step's update: either
// every rank iterates all operators and the vectors are averaged, or each rank iterates its
// share and the owners' vectors are shared.
void Trainer::State::advance_power_iteration() {
  auto& s = *this;
  if (s.comm->size() == 1 || s.options.pi_sync == "average") {
    lipschitz::power_iteration_step(*s.model);
    if (s.comm->size() > 1) {
      auto vectors = lipschitz::power_iteration_vectors(*s.model);
      dist::average_unit_vectors(*s.comm, vectors);
    }
    return;
  }
  auto operators = lipschitz::spectral_operators(*s.model);
  for (size_t i = 0; i < operators.size(); ++i)
    if (int(i % size_t(s.comm->size())) == s.comm->rank()) operators[i].op->power_iteration_step();
  auto vectors = lipschitz::power_iteration_vectors(*s.model);
  dist::share_owned_vectors(*s.comm, vectors);
}

static std::string layer_bounds_json(models::Model& model) {
  at::NoGradGuard no_grad;
  std::ostringstream out;
  out << "{";
  bool first = true;
  for (auto& named : lipschitz::spectral_operators(model)) {
    out << (first ? "" : ",") << json_escape(named.name) << ":"
        << named.op->spectral_norm(lipschitz::BoundMode::kTrain).item<double>();
    first = false;
  }
  return out.str() + "}";
}

// Test hooks for the data-parallel script tests (tests/dp), inert unless their variable is set:
// LMT_TEST_THROW_AT=RANK:STEP makes rank RANK throw after global step STEP; LMT_TEST_RANK_DIR=DIR
// makes every rank save its final model as DIR/rank-R.pt with its last training bound in hex.
static void test_hook_throw(int rank, int64_t step) {
  static const char* spec = std::getenv("LMT_TEST_THROW_AT");
  int r = -1;
  long long k = -1;
  if (spec && std::sscanf(spec, "%d:%lld", &r, &k) == 2 && r == rank && k == step)
    throw TrainError("LMT_TEST_THROW_AT: injected failure after step " + std::to_string(step));
}

static void test_hook_save_rank(models::Model& model, int rank, double bound) {
  const char* dir = std::getenv("LMT_TEST_RANK_DIR");
  if (!dir) return;
  char hex[64];
  std::snprintf(hex, sizeof hex, "%a", bound);
  models::save_model_file(std::string(dir) + "/rank-" + std::to_string(rank) + ".pt", model,
                          {{"train_lipschitz_bound_hex", hex}});
}

// A step whose loss is non-finite, whose logits exceed kExplodedLogit in magnitude, or whose
// bound is non-finite ends the run naming the step. The logits, not the loss, are the measure:
// the LMT loss adds sqrt(2) c L to the logits and L can legitimately start at 1e6 (a batch-norm
// ResNet), while a logit of 1e6 means weights that have blown up (Adam at lr 1e4 gives 1e22 at
// chance accuracy within two steps); a softmax classifier that still learns never needs one.
constexpr double kExplodedLogit = 1e6;

static void check_not_diverged(double loss, const at::Tensor& logits, std::optional<double> bound,
                               int64_t step, double lr) {
  char text[256];
  const double largest = logits.detach().abs().max().item<double>();
  if (!std::isfinite(loss) || !(largest <= kExplodedLogit)) {
    if (std::isfinite(loss))
      std::snprintf(text, sizeof text, "the largest logit is %g (above 1e6)", largest);
    else
      std::snprintf(text, sizeof text, "the loss is %g", loss);
    const std::string what = text;
    std::snprintf(text, sizeof text,
                  "training diverged at step %lld: %s (learning rate %g: lower it, or check the "
                  "data and the model options)",
                  (long long)step, what.c_str(), lr);
    throw TrainError(text);
  }
  if (bound && !std::isfinite(*bound)) {
    std::snprintf(text, sizeof text,
                  "training diverged at step %lld: the Lipschitz bound is %g (a weight "
                  "overflowed; learning rate %g)",
                  (long long)step, *bound, lr);
    throw TrainError(text);
  }
}

TrainSummary Trainer::run() {
  auto& s = *state_;
  const auto& o = s.options;
  const int64_t steps_per_epoch = s.train_loader->steps_per_epoch();
  int64_t total_steps = steps_per_epoch * o.epochs;
  if (o.max_steps >= 0) total_steps = std::min(total_steps, o.max_steps);
  const int64_t local_batch = o.batch_size / s.comm->size();

  s.message("model " + o.model + ": " + std::to_string(models::parameter_count(*s.model)) +
            " parameters; " + std::to_string(s.comm->size()) + " rank(s), global batch " +
            std::to_string(o.batch_size) + ", " + std::to_string(steps_per_epoch) +
            " steps/epoch, " + std::to_string(total_steps) + " steps");

  s.restore();
  // Nothing is written into the run directory before here: a refused resume leaves it as it was.
  if (s.is_root()) {
    if (o.overwrite) remove_previous_run(o.out_dir);
    try {
      io::write_file_atomic(o.out_dir + "/config.ini", s.run_config());
    } catch (const io::IoError& e) {
      throw TrainError(e.what());
    }
  }
  if (s.is_root()) {
    const std::string metrics_path = o.out_dir + "/metrics.jsonl";
    if (s.start.global_step > 0) trim_metrics_after(metrics_path, s.start.global_step);
    s.metrics = MetricsWriter(metrics_path, /*truncate=*/s.start.global_step == 0);
  }
  s.global_step = s.start.global_step;

  TrainSummary summary;
  const auto run_start = Clock::now();
  const double wall_before = s.start.wall_s;
  double last_bound = s.start.last_bound;
  // A resumed epoch may have all its steps done and still owe its evaluation and metrics line.
  auto owes_epoch_end = [&](int64_t epoch) {
    return epoch == s.start.epoch && s.start.step_in_epoch > 0;
  };
  for (int64_t epoch = s.start.epoch;
       epoch < o.epochs && (s.global_step < total_steps || owes_epoch_end(epoch)); ++epoch) {
    s.model->train();
    const int64_t first_step = owes_epoch_end(epoch) ? s.start.step_in_epoch : 0;
    s.train_loader->start_epoch(epoch, first_step);
    double loss_sum = 0, correct = 0, seen = 0;
    if (first_step > 0) {
      loss_sum = s.start_sums.at(0);
      correct = s.start_sums.at(1);
      seen = s.start_sums.at(2);
    }
    const auto epoch_start = Clock::now();
    int64_t step_in_epoch = first_step;
    while (s.global_step < total_steps) {
      auto batch = s.train_loader->next();
      if (!batch) break;
      const double lr = learning_rate_at(o, s.global_step, total_steps, steps_per_epoch);
      set_learning_rate(*s.optimizer, lr);
      const double progress = double(epoch) + double(step_in_epoch) / double(steps_per_epoch);

      if (s.objective->needs_bound()) s.advance_power_iteration();
      ObjectiveOutput out = s.objective->compute(*s.model, batch->images, batch->labels, progress);
      s.optimizer->zero_grad();
      out.loss.backward();
      s.grad_sync->finish();
      s.optimizer->step();

      const double loss = out.loss.item<double>();
      std::optional<double> bound;  // read once: the divergence check and the progress line
      if (out.bound.defined()) bound = out.bound.item<double>();
      check_not_diverged(loss, out.logits, bound, s.global_step + 1, lr);
      loss_sum += loss * double(batch->labels.size(0));
      correct += out.logits.argmax(1).eq(batch->labels).sum().item<double>();
      seen += double(batch->labels.size(0));
      if (bound) last_bound = *bound;
      ++s.global_step;
      ++step_in_epoch;
      test_hook_throw(s.comm->rank(), s.global_step);

      if (s.step_callback) {
        StepEvent event;
        event.epoch = epoch;
        event.epochs = o.epochs;
        event.step_in_epoch = step_in_epoch;
        event.steps_per_epoch = steps_per_epoch;
        event.global_step = s.global_step;
        event.total_steps = total_steps;
        event.loss = loss;
        event.lr = lr;
        event.elapsed_s = std::chrono::duration<double>(Clock::now() - run_start).count();
        const double epoch_s = std::chrono::duration<double>(Clock::now() - epoch_start).count();
        event.images_per_s =
            double((step_in_epoch - first_step) * local_batch * s.comm->size()) / epoch_s;
        event.bound = last_bound;
        s.step_callback(event);
      }

      const bool periodic = o.checkpoint_every > 0 && s.global_step % o.checkpoint_every == 0;
      const bool stop = s.stop_agreed();
      if (periodic || stop) {
        TrainingPosition position;
        position.global_step = s.global_step;
        position.epoch = epoch;
        position.step_in_epoch = step_in_epoch;
        position.wall_s =
            wall_before + std::chrono::duration<double>(Clock::now() - run_start).count();
        position.last_bound = last_bound;
        summary.checkpoint = s.checkpoint(position, {loss_sum, correct, seen});
      }
      if (stop) {
        summary.stopped = true;
        summary.steps = s.global_step;
        summary.bound = last_bound;
        summary.wall_s = std::chrono::duration<double>(Clock::now() - run_start).count();
        s.message("stopped on request after step " + std::to_string(s.global_step) +
                  "; checkpoint " + summary.checkpoint + " (continue with --resume auto)");
        return summary;
      }
    }
    const double epoch_s = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    auto sums = dist::all_reduce_doubles(*s.comm, {loss_sum, correct, seen}, dist::ReduceOp::kSum);
    EvalResult test = evaluate(*s.model, *s.test_loader, s.comm.get());
    summary.train_accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
    summary.test_accuracy = test.accuracy();
    summary.bound = last_bound;
    const double wall_s =
        wall_before + std::chrono::duration<double>(Clock::now() - run_start).count();
    const double images_per_s = double((step_in_epoch - first_step) * o.batch_size) / epoch_s;
    if (s.is_root()) {
      JsonLine line;
      line.add("type", "epoch")
          .add("epoch", epoch + 1)
          .add("step", s.global_step)
          .add("loss", sums[2] > 0 ? sums[0] / sums[2] : 0.0)
          .add("train_accuracy", summary.train_accuracy)
          .add("test_accuracy", summary.test_accuracy)
          .add("test_loss", test.mean_loss())
          .add("lr", learning_rate_at(o, std::max<int64_t>(s.global_step - 1, 0), total_steps,
                                      steps_per_epoch))
          .add("images_per_s", images_per_s)
          .add("wall_s", wall_s)
          .add("world_size", s.comm->size());
      if (last_bound >= 0) line.add("lipschitz_bound", last_bound);
      if (o.log_layer_bounds) line.add_raw("layer_bounds", layer_bounds_json(*s.model));
      s.metrics.write(line);
      char text[256];
      std::snprintf(text, sizeof text,
                    "epoch %lld: loss %.4f, train accuracy %.4f, test accuracy %.4f, %.0f images/s",
                    (long long)(epoch + 1), sums[2] > 0 ? sums[0] / sums[2] : 0.0,
                    summary.train_accuracy, summary.test_accuracy, images_per_s);
      s.message(text);
      // A constant classifier is the LMT loss's cheapest answer when c is too large for the
      // network's bound (deep models, batch norm): say so instead of training on silently (after
      // 200 steps; a short run has not learnt anything yet either).
      const int64_t classes = s.model->config().num_classes;
      if (o.loss == "lmt" && classes > 1 && s.global_step >= 200 &&
          summary.train_accuracy < 1.5 / double(classes)) {
        char warning[512];
        std::snprintf(warning, sizeof warning,
                      "warning: train accuracy %.4f is near chance (1/%lld) and L is %.4g: the LMT "
                      "loss is collapsing the model towards a constant; lower --lmt-c (now %g), "
                      "warm it up with --lmt-c-warmup, and for resnet/wrn use --model-option "
                      "norm=center (models/README.md)",
                      summary.train_accuracy, (long long)classes, last_bound, o.lmt_c);
        s.message(warning);
      }
    }
    summary.images_per_s = images_per_s;
  }
  summary.steps = s.global_step;
  summary.wall_s = std::chrono::duration<double>(Clock::now() - run_start).count();
  if (s.is_root()) {
    summary.model_file = o.out_dir + "/model.pt";
    std::map<std::string, std::string> metadata{
        {"test_accuracy", std::to_string(summary.test_accuracy)},
        {"steps", std::to_string(summary.steps)},
        {"loss", o.loss}};
    if (last_bound >= 0) metadata["train_lipschitz_bound"] = std::to_string(last_bound);
    models::save_model_file(summary.model_file, *s.model, metadata);
  }
  test_hook_save_rank(*s.model, s.comm->rank(), last_bound);
  return summary;
}

}  // namespace lmt::train
