// The training loop: shard, forward, bound, objective, backward, bucketed gradient all-reduce,
// optimizer step, metrics; evaluation at each epoch end; the final model on rank 0.
#include <lmt/train/trainer.h>

#include <ATen/Parallel.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <tuple>

#include <lmt/data/loader.h>
#include <lmt/dist/grad_sync.h>
#include <lmt/dist/module_sync.h>
#include <lmt/dist/rank_env.h>
#include <lmt/io/atomic_file.h>
#include <lmt/io/json_lines.h>
#include <lmt/io/trace.h>
#include <lmt/lipschitz/bounded_module.h>
#include <lmt/lipschitz/certify.h>
#include <lmt/train/checkpoint.h>
#include <lmt/train/device.h>
#include <lmt/train/evaluate.h>
#include <lmt/train/init_from.h>
#include <lmt/train/objective.h>
#include <lmt/train/optimizer.h>
#include <lmt/train/run_directory.h>
#include <lmt/train/schedule.h>
#include <lmt/train/stop.h>

#include "trainer_state.h"

namespace lmt::train {

static std::unique_ptr<data::Loader> make_loader(const TrainOptions& o, const dist::Communicator& c,
                                                 const std::string& file, bool training,
                                                 at::Device device) {
  auto options =
      data::LoaderOptions()
          .batch_size(training ? o.batch_size() : std::max<int64_t>(o.batch_size(), 256 * c.size()))
          .rank(c.rank())
          .world_size(c.size())
          .seed(o.seed())
          .shuffle(training)
          .drop_last(training)
          .pad_to(o.pad_to(), o.pad_to())
          .threads(o.loader_threads())
          .prefetch(o.prefetch())
          .image_size(o.image_size())
          .pin_memory(device.is_cuda());  // the batches' copies to the GPU are asynchronous
  if (training)
    options.random_crop_padding(o.random_crop_padding()).horizontal_flip(o.horizontal_flip());
  return std::make_unique<data::Loader>(file, options);
}

Trainer::Trainer(TrainOptions options, std::shared_ptr<dist::Communicator> comm)
    : state_(std::make_unique<State>()) {
  auto& s = *state_;
  s.options = std::move(options);
  s.comm = std::move(comm);
  const auto& o = s.options;
  check_options(o, s.comm->size());
  std::tie(s.trace_first, s.trace_last) = trace_step_range(o);
  if (o.threads() > 0) at::set_num_threads(o.threads());

  const std::string train_file = o.data_dir() + "/train.h5", test_file = o.data_dir() + "/test.h5";
  s.device = resolve_device(o.device(), dist::RankEnv::from_environment().local_rank);
  if (s.comm->size() > 1) {
    // Every rank computes on the same kind of device: the gradient backend and the checkpoint's
    // per-rank GPU generator states (gathered from every rank) assume it.
    const auto kinds = dist::all_gather_strings(*s.comm, s.device.is_cpu() ? "cpu" : "cuda");
    for (size_t r = 1; r < kinds.size(); ++r)
      if (kinds[r] != kinds[0])
        throw TrainError("--device " + o.device() + ": rank 0 computes on " + kinds[0] +
                         " but rank " + std::to_string(r) + " on " + kinds[r] +
                         " (a node without a visible GPU?); every rank must use the same kind");
  }
  s.train_loader = make_loader(o, *s.comm, train_file, /*training=*/true, s.device);
  s.test_loader = make_loader(o, *s.comm, test_file, /*training=*/false, s.device);
  {
    const auto &a = s.train_loader->info(), &b = s.test_loader->info();
    auto mismatch = [&](const char* what, int64_t train_value, int64_t test_value) {
      if (train_value != test_value)
        throw TrainError(test_file + ": " + what + " " + std::to_string(test_value) +
                         " differs from " + train_file + " (" + std::to_string(train_value) + ")");
    };
    mismatch("num_classes", a.num_classes, b.num_classes);
    mismatch("channels", a.channels, b.channels);
    if (o.pad_to() <= 0 && o.image_size() <= 0) {
      mismatch("height", a.height, b.height);
      mismatch("width", a.width, b.width);
    }
  }
  s.steps_per_epoch = s.train_loader->steps_per_epoch();  // >= 1: the loader refuses less
  s.total_steps = s.steps_per_epoch * o.epochs();
  if (o.max_steps() >= 0) s.total_steps = std::min(s.total_steps, o.max_steps());

  const auto& info = s.train_loader->info();
  models::ModelConfig config;
  config.name = o.model();
  config.num_classes = info.num_classes;
  config.channels = info.channels;
  config.height = o.pad_to() > 0 ? o.pad_to() : info.height;
  config.width = o.pad_to() > 0 ? o.pad_to() : info.width;
  if (o.normalize_input()) {
    config.mean = info.mean;
    config.std = info.std;
  }
  config.options = o.model_options();
  torch::manual_seed(o.seed());
  s.model = models::make_model(config);
  if (!o.init_from().empty()) {
    // Every rank reads the file (the broadcast below would make them agree anyway); a file that
    // does not fit fails on all of them alike.
    const auto report = load_initial_weights(o.init_from(), *s.model, o.init_from_skip());
    s.init_note =
        "--init-from " + o.init_from() + ": " + std::to_string(report.loaded) + " tensors loaded";
    if (!report.skipped.empty())
      s.init_note += "; left as initialized (--init-from-skip): " + options::join(report.skipped);
  }
  if (o.keep_best().metric == KeepBest::Metric::kCertified && !s.model->has_bound())
    throw TrainError("--keep-best " +
                     options::join(options::Codec<KeepBest>::format(o.keep_best())) + ": model '" +
                     o.model() + "' has no finite Lipschitz bound");
  s.objective = make_objective(o);
  dist::verify_and_broadcast(*s.comm, *s.model);  // over MPI: on the host, before the move
  move_model(*s.model, s.device, o.channels_last());
  s.device_comm = dist::make_device_communicator(
      s.comm, s.device, reduces_over_nccl(o.grad_backend(), s.device),
      dist::CommOptions().timeout(std::chrono::seconds(o.collective_timeout_s())));
  if (o.precision() == Precision::kFp16) s.scaler = std::make_unique<LossScaler>();
  if (o.ema_decay() > 0)
    s.ema = std::make_unique<ModelEma>(*s.model, o.ema_decay(), o.ema_warmup());
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& item : s.model->named_parameters()) named.emplace_back(item.key(), item.value());
  s.optimizer = make_optimizer(o, named);
  s.grad_sync = std::make_unique<dist::GradSync>(
      s.device_comm, s.model->parameters(),
      dist::GradSyncOptions()
          .bucket_cap_bytes(int64_t(o.bucket_cap_mb() * 1024 * 1024))
          .overlap(o.overlap()));
  if (s.is_root()) std::filesystem::create_directories(o.out_dir());
}

Trainer::~Trainer() = default;

void Trainer::on_step(std::function<void(const StepResult&)> listener) {
  state_->step_listeners.push_back(std::move(listener));
}
void Trainer::on_epoch(std::function<void(const EpochResult&)> listener) {
  state_->epoch_listeners.push_back(std::move(listener));
}
void Trainer::on_message(std::function<void(const std::string&)> listener) {
  state_->message_listeners.push_back(std::move(listener));
}
void Trainer::on_finish(std::function<void(models::Model&, double)> listener) {
  state_->finish_listeners.push_back(std::move(listener));
}
void Trainer::on_checkpoint_file(std::function<void(const std::string&)> listener) {
  state_->checkpoint_file_listeners.push_back(std::move(listener));
}
void Trainer::on_eval_batch(BatchVisitor listener) {
  state_->eval_batch_listeners.push_back(std::move(listener));
}
double StepResult::loss() const { return read_to_host(loss_value).at(0); }

models::Model& Trainer::model() { return *state_->model; }
models::Model& Trainer::evaluated_model() { return state_->evaluated(); }
const TrainOptions& Trainer::options() const { return state_->options; }
int64_t Trainer::test_images() const { return state_->test_loader->info().size; }
bool Trainer::done() const { return state_->done(); }

static std::string layer_bounds_json(models::Model& model) {
  at::NoGradGuard no_grad;
  std::ostringstream out;
  out << "{";
  bool first = true;
  for (auto& named : lipschitz::spectral_operators(model)) {
    out << (first ? "" : ",") << io::json_escape(named.name) << ":"
        << named.op->spectral_norm(lipschitz::BoundMode::kTrain).item<double>();
    first = false;
  }
  return out.str() + "}";
}

void Trainer::begin() {
  auto& s = *state_;
  if (s.began) return;
  s.began = true;
  const auto& o = s.options;
  s.message(
      "model " + o.model() + ": " + std::to_string(models::parameter_count(*s.model)) +
      " parameters; " + std::to_string(s.comm->size()) + " rank(s), global batch " +
      std::to_string(o.batch_size()) + ", " + std::to_string(s.steps_per_epoch) + " steps/epoch, " +
      std::to_string(s.total_steps) + " steps; device " + describe_device(s.device) +
      (s.comm->size() > 1 ? ", gradients over " +
                                describe_grad_backend(s.device_comm->backend() == "nccl", s.device)
                          : std::string()) +
      (o.precision() == Precision::kFp32 ? std::string()
                                         : std::string(", ") + options::to_string(o.precision()) +
                                               " autocast (the bound in fp32)"));
  {
    // libgomp's idle threads poll 300000 times before sleeping unless OMP_WAIT_POLICY or
    // GOMP_SPINCOUNT says otherwise; on shared cores that starves the working thread (README,
    // "Threads", bench/bench_threads.sh: 423 images/s, against 2340 with GOMP_SPINCOUNT=3000
    // and 12568 with --threads 1). Libraries read it
    // before main(), so lmt can only say it.
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    const char* spin = std::getenv("GOMP_SPINCOUNT");
    std::string openmp = policy ? std::string("OMP_WAIT_POLICY=") + policy : std::string();
    if (spin) openmp += (openmp.empty() ? "" : ", ") + std::string("GOMP_SPINCOUNT=") + spin;
    if (openmp.empty())
      openmp = at::get_num_threads() > 1
                   ? "idle threads spin (libgomp's default; on cores other jobs share, use "
                     "--threads 1 or GOMP_SPINCOUNT=3000: README, \"Threads\")"
                   : "default";
    s.message("threads: " + std::to_string(at::get_num_threads()) + " intra-op per rank; OpenMP " +
              openmp);
  }
  if (!s.init_note.empty()) s.message(s.init_note);
  if (s.ema) {
    std::ostringstream text;
    text << "EMA of the weights, decay " << o.ema_decay()
         << (o.ema_warmup() ? " (warm-up min(D, (1+n)/(10+n)))" : "")
         << ": evaluation, model.pt and exports use it";
    s.message(text.str());
  }
  s.restore();
  // Nothing is written into the run directory before here: a refused resume leaves it as it was.
  if (s.is_root()) {
    if (o.overwrite()) remove_previous_run(o.out_dir());
    try {
      io::write_file_atomic(o.out_dir() + "/config.ini", run_config(o));
    } catch (const io::IoError& e) {
      throw TrainError(e.what());
    }
    const std::string metrics_path = o.out_dir() + "/metrics.jsonl";
    if (s.start.global_step > 0) trim_metrics_after(metrics_path, s.start.global_step);
    s.metrics = io::MetricsWriter(metrics_path, /*truncate=*/s.start.global_step == 0);
  }
  s.global_step = s.start.global_step;
  s.epoch = s.start.epoch;
  s.last_bound = s.start.last_bound;
  s.run_start = Clock::now();
}

void Trainer::State::open_epoch() {
  model->train();
  first_step = owes_epoch_end(epoch) ? start.step_in_epoch : 0;
  train_loader->start_epoch(epoch, first_step);
  read_figures();  // nothing is left on the device from the epoch before
  loss_sum = correct = seen = 0;
  if (first_step > 0) {
    loss_sum = start_sums.at(0);
    correct = start_sums.at(1);
    seen = start_sums.at(2);
  }
  reset_device_sums();
  step_in_epoch = first_step;
  images_in_epoch = 0;
  epoch_start = Clock::now();
  epoch_open = true;
}

// Collective every log_every steps: the means over every rank's batches since the last step line
// (one all-reduce of three numbers), the metrics.jsonl step line on rank 0, a new window.
void Trainer::State::write_step_line(StepResult& r) {
  read_figures();  // the steps since the last line (one host read)
  r.last_bound = last_bound;
  if (r.has_bound) r.bound = last_bound;
  r.grad_norm = last_grad_norm;
  std::vector<double> sums{window_loss_sum, window_correct, window_seen};
  if (comm->size() > 1) sums = dist::all_reduce_doubles(*comm, sums, dist::ReduceOp::kSum);
  if (sums[2] > 0) {
    r.window_loss = sums[0] / sums[2];
    r.window_accuracy = sums[1] / sums[2];
  }
  if (is_root() && r.window_loss) {
    io::JsonLine line;
    line.add("type", "step")
        .add("epoch", r.epoch + 1)
        .add("step", r.global_step)
        .add("loss", *r.window_loss)
        .add("train_accuracy", *r.window_accuracy)
        .add("lr", r.lr);
    if (r.bound) line.add("lipschitz_bound", *r.bound);
    if (r.grad_norm) line.add("grad_norm", *r.grad_norm);
    line.add("images_per_s", window_s > 0 ? double(window_images) / window_s : 0.0)
        .add("wall_s", wall_s());
    metrics.write(line);
  }
  window_loss_sum = window_correct = window_seen = window_s = 0;
  window_images = 0;
  reset_device_sums();
}

std::optional<StepResult> Trainer::step() {
  auto& s = *state_;
  begin();
  if (s.done()) return std::nullopt;
  if (!s.epoch_open) s.open_epoch();
  if (s.global_step >= s.total_steps) return std::nullopt;
  // --trace: steps trace_first..trace_last; the events are written when the next step begins (no
  // scope of the last step is open then) or when the run ends.
  if (s.tracing && s.global_step >= s.trace_last) s.finish_trace();
  if (!s.options.trace().empty() && !s.traced && !s.tracing && s.global_step + 1 >= s.trace_first &&
      s.global_step < s.trace_last)
    s.start_trace();
  const auto step_start = Clock::now();
  io::TraceScope step_scope("step", "step");
  step_scope.arg("step", s.global_step + 1);
  std::optional<data::Batch> batch;
  std::optional<AheadCopy> copy;
  {
    io::TraceScope wait("wait for batch", "step");
    if (s.ahead) {
      batch = std::move(s.ahead->batch);
      copy.emplace(std::move(s.ahead->copy));
      s.ahead.reset();
    } else if ((batch = s.train_loader->next())) {
      copy.emplace(std::vector<at::Tensor>{batch->images, batch->labels}, s.device);
    }
    // One batch ahead: the next batch of this epoch starts its copy to the device now, so that
    // on a GPU it overlaps this step (the same batches in the same order; a stop drops it, and
    // a resume asks the loader for it again by its step).
    if (batch && s.step_in_epoch + 1 < s.steps_per_epoch)
      if (auto next = s.train_loader->next())
        s.ahead.emplace(State::AheadBatch{
            *next, AheadCopy(std::vector<at::Tensor>{next->images, next->labels}, s.device)});
  }
  if (!batch) return std::nullopt;
  const auto& o = s.options;
  const std::vector<at::Tensor> on_device = copy->take();
  const at::Tensor images = to_device(on_device[0], s.device, o.channels_last());
  const at::Tensor& labels = on_device[1];
  const double lr = learning_rate_at(o, s.global_step, s.total_steps, s.steps_per_epoch);
  set_learning_rate(*s.optimizer, lr);
  const double progress = double(s.epoch) + double(s.step_in_epoch) / double(s.steps_per_epoch);

  if (s.objective->needs_bound()) {  // once per optimizer step
    io::TraceScope traced("power iteration + vector sync", "step");
    s.advance_power_iteration();
  }
  // K micro-batches of this rank's batch: each backward of loss/K adds into the gradients, and
  // only the last one's launches the all-reduce (GradSync::accumulate_only, DDP's no_sync).
  const int64_t K = o.accum_steps(), micro = labels.size(0) / K;
  s.optimizer->zero_grad();
  std::vector<at::Tensor> losses, logits;
  ObjectiveOutput out;
  for (int64_t k = 0; k < K; ++k) {
    s.grad_sync->accumulate_only(k + 1 < K);
    {
      io::TraceScope traced("forward (objective, bound)", "step");
      AutocastScope autocast(o.precision(), s.device);  // the forward pass; the bound is fp32
      out = K == 1 ? s.objective->compute(*s.model, images, labels, progress)
                   : s.objective->compute(*s.model, images.narrow(0, k * micro, micro),
                                          labels.narrow(0, k * micro, micro), progress);
    }
    io::TraceScope traced("backward (bucket all-reduces launched)", "step");
    at::Tensor scaled = K == 1 ? out.loss : out.loss / double(K);
    if (s.scaler) scaled = scaled * s.scaler->scale();
    scaled.backward();
    losses.push_back(out.loss.detach());
    logits.push_back(out.logits.detach());
  }
  if (K > 1) {
    out.loss = at::stack(losses).mean();  // equal micro-batches: the batch's mean loss
    out.logits = at::cat(logits);
  }
  {
    io::TraceScope traced("gradient sync: wait for buckets", "step");
    s.grad_sync->finish();
  }
  io::TraceScope optimizer_scope("optimizer, metrics", "step");
  StepResult r;
  // fp16: the gradients unscaled after the all-reduce, so every rank sees the same inf/nan and
  // skips the same steps (one host read per step: whether to step at all).
  const bool skip = s.scaler && (s.scaler->unscale(s.model->parameters()), s.scaler->update());
  // The averaged gradients are bitwise identical on every rank, so is their norm and the clip.
  if (o.grad_clip_norm() > 0 && !skip)  // the norm read at the step lines
    s.step_grad_norm = clip_grad_norm(s.model->parameters(), o.grad_clip_norm());
  if (!skip) {
    s.optimizer->step();
    if (s.ema) s.ema->update(*s.model, s.global_step);  // the global_step-th update, 0-based
  }

  s.record_step(out, labels, lr);  // on the device; read at the step lines
  r.loss_value = out.loss.detach();
  r.has_bound = out.bound.defined();
  const double n = double(batch->labels.size(0));
  s.seen += n;
  s.window_seen += n;
  s.window_images += batch->global_batch_size;
  s.images_in_epoch += batch->global_batch_size;
  ++s.global_step;
  ++s.step_in_epoch;

  r.epoch = s.epoch;
  r.epochs = o.epochs();
  r.step_in_epoch = s.step_in_epoch;
  r.steps_per_epoch = s.steps_per_epoch;
  r.global_step = s.global_step;
  r.total_steps = s.total_steps;
  r.images = batch->global_batch_size;
  r.lr = lr;
  r.last_bound = s.last_bound;
  r.images_per_s = double(s.images_in_epoch) / seconds_since(s.epoch_start);
  r.elapsed_s = seconds_since(s.run_start);
  s.window_s += seconds_since(step_start);
  if (s.global_step % o.log_every() == 0) s.write_step_line(r);
  for (const auto& l : s.step_listeners) l(r);
  return r;
}

EpochResult Trainer::end_epoch() {
  auto& s = *state_;
  const auto& o = s.options;
  if (s.tracing && s.global_step >= s.trace_last) s.finish_trace();
  io::TraceScope traced("end of epoch: evaluation", "epoch");
  if (!s.epoch_open) s.open_epoch();  // a resumed epoch whose steps were all done
  s.read_figures();
  const double epoch_s = seconds_since(s.epoch_start);
  auto sums =
      dist::all_reduce_doubles(*s.comm, {s.loss_sum, s.correct, s.seen}, dist::ReduceOp::kSum);
  // --keep-best certified@EPS: each test point's radius at L = 1 (margin / sqrt2), this rank's
  // shard; keep_best() divides by the bounds.
  const bool certified = o.keep_best().metric == KeepBest::Metric::kCertified;
  const double train_bound = certified ? s.evaluated_train_bound() : 0;
  std::vector<double> unit_radii;
  BatchVisitor visit = s.eval_batch_visitor();
  if (certified)
    visit = [&unit_radii, listeners = visit](const data::Batch& batch, const at::Tensor& logits) {
      at::Tensor r =
          lipschitz::certified_radius(logits, batch.labels, at::ones({}, at::kDouble)).contiguous();
      unit_radii.insert(unit_radii.end(), r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
      if (listeners) listeners(batch, logits);
    };
  EvalResult test = evaluate(s.evaluated(), *s.test_loader, s.comm.get(), visit);
  EpochResult r;
  r.epoch = s.epoch;
  r.global_step = s.global_step;
  r.loss = sums[2] > 0 ? sums[0] / sums[2] : 0.0;
  r.train_accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
  r.test_accuracy = test.accuracy();
  r.test_loss = test.mean_loss();
  r.images_per_s = double(s.images_in_epoch) / epoch_s;
  r.wall_s = s.wall_s();
  r.lr = learning_rate_at(o, std::max<int64_t>(s.global_step - 1, 0), s.total_steps,
                          s.steps_per_epoch);
  r.bound = s.last_bound;
  // A constant classifier is the LMT loss's cheapest answer when c is too large for the network's
  // bound (deep models, batch norm); after 200 steps (a short run has not learnt anything yet).
  const int64_t classes = s.model->config().num_classes;
  r.collapsed = (o.loss() == Loss::kLmt || o.loss() == Loss::kEmma) && classes > 1 &&
                s.global_step >= 200 && r.train_accuracy < 1.5 / double(classes);
  if (o.keep_best().on()) s.keep_best(r, test, train_bound, unit_radii);
  if (s.is_root()) {
    io::JsonLine line;
    line.add("type", "epoch")
        .add("epoch", r.epoch + 1)
        .add("step", r.global_step)
        .add("loss", r.loss)
        .add("train_accuracy", r.train_accuracy)
        .add("test_accuracy", r.test_accuracy)
        .add("test_loss", r.test_loss)
        .add("lr", r.lr)
        .add("images_per_s", r.images_per_s)
        .add("wall_s", r.wall_s)
        .add("world_size", s.comm->size());
    if (r.bound >= 0) line.add("lipschitz_bound", r.bound);
    if (s.ema) line.add("evaluated", "ema");
    if (r.certified_accuracy >= 0) line.add("certified_accuracy", r.certified_accuracy);
    if (r.certified_accuracy_sound >= 0)
      line.add("certified_accuracy_sound", r.certified_accuracy_sound);
    if (r.best_epoch > 0) line.add("best_epoch", r.best_epoch).add("best_value", r.best_value);
    if (o.log_layer_bounds()) line.add_raw("layer_bounds", layer_bounds_json(*s.model));
    s.metrics.write(line);
  }
  char text[512];
  std::snprintf(text, sizeof text,
                "epoch %lld: loss %.4f, train accuracy %.4f, test accuracy %.4f, %.0f images/s",
                (long long)(r.epoch + 1), r.loss, r.train_accuracy, r.test_accuracy,
                r.images_per_s);
  std::string summary = text;
  if (r.best_epoch > 0) {
    std::snprintf(text, sizeof text, "; best %s %.4f at epoch %lld",
                  options::join(options::Codec<KeepBest>::format(o.keep_best())).c_str(),
                  r.best_value, (long long)r.best_epoch);
    summary += text;
  }
  s.message(summary);
  if (r.collapsed) {
    std::snprintf(text, sizeof text,
                  "warning: train accuracy %.4f is near chance (1/%lld) and L is %.4g: the LMT "
                  "loss is collapsing the model towards a constant; lower the target radius c "
                  "(now %g), warm it up, and for resnet/wrn use the model option norm=center "
                  "(models/README.md)",
                  r.train_accuracy, (long long)classes, r.bound, o.lmt_c());
    s.message(text);
  }
  s.epoch_open = false;
  s.ahead.reset();  // none is taken past the epoch's last step; kept tidy all the same
  ++s.epoch;
  for (const auto& l : s.epoch_listeners) l(r);
  return r;
}

double Trainer::State::evaluated_train_bound() {
  if (ema) ema->refresh_power_iteration();
  at::NoGradGuard no_grad;
  models::Model& m = evaluated();
  m.eval();
  return m.lipschitz_bound(lipschitz::BoundMode::kTrain).item<double>();
}

// --keep-best: this epoch's metric against the best so far; a better one (ties keep the earlier)
// is saved as RUN_DIR/model_best.pt. certified@EPS ranks epochs by the training bound (cheap,
// and what the run optimizes) and records the sound bound's certified accuracy for the saved one.
void Trainer::State::keep_best(EpochResult& r, const EvalResult& test, double train_bound,
                               const std::vector<double>& unit_radii) {
  const auto& kb = options.keep_best();
  const std::string metric = options::join(options::Codec<KeepBest>::format(kb));
  auto certified_at = [&](double bound) {  // fraction of the test set, all ranks
    double count = 0;
    for (double radius : unit_radii) count += radius >= kb.eps * bound ? 1 : 0;
    count = dist::all_reduce_doubles(*comm, {count}, dist::ReduceOp::kSum)[0];
    return test.count > 0 ? count / double(test.count) : 0.0;
  };
  double value = r.test_accuracy;
  if (kb.metric == KeepBest::Metric::kCertified)
    value = r.certified_accuracy = certified_at(train_bound);
  if (value > best_value) {
    best_value = value;
    best_epoch = r.epoch + 1;
    std::map<std::string, std::string> metadata{{"keep_best", metric},
                                                {"best_epoch", std::to_string(best_epoch)},
                                                {"best_value", std::to_string(best_value)},
                                                {"test_accuracy", std::to_string(r.test_accuracy)},
                                                {"steps", std::to_string(global_step)}};
    if (ema) metadata["weights"] = "ema";
    if (kb.metric == KeepBest::Metric::kCertified) {
      double sound = 0;
      try {
        at::NoGradGuard no_grad;
        sound = evaluated().lipschitz_bound(lipschitz::BoundMode::kSound).item<double>();
      } catch (const std::exception& e) {
        const std::string what = e.what();
        throw TrainError("--keep-best " + metric + ": cannot compute the sound Lipschitz bound: " +
                         what.substr(0, what.find('\n')));
      }
      r.certified_accuracy_sound = certified_at(sound);
      metadata["train_lipschitz_bound"] = std::to_string(train_bound);
      metadata["lipschitz_bound_sound"] = std::to_string(sound);
      metadata["certified_accuracy_sound"] = std::to_string(r.certified_accuracy_sound);
    }
    if (is_root())
      models::save_model_file(options.out_dir() + "/model_best.pt", evaluated(), metadata);
  }
  r.best_epoch = best_epoch;
  r.best_value = best_value;
}

void Trainer::State::save_final_model(TrainSummary& summary) {
  // The EMA's own training bound (its vectors refreshed); the live model's is the last step's.
  const double bound = ema && last_bound >= 0 ? evaluated_train_bound() : last_bound;
  if (is_root()) {
    summary.model_file = options.out_dir() + "/model.pt";
    std::map<std::string, std::string> metadata{
        {"test_accuracy", std::to_string(summary.test_accuracy)},
        {"steps", std::to_string(summary.steps)},
        {"loss", options::to_string(options.loss())}};
    if (bound >= 0) metadata["train_lipschitz_bound"] = std::to_string(bound);
    if (ema) metadata["weights"] = "ema";
    models::save_model_file(summary.model_file, evaluated(), metadata);
  }
  for (const auto& l : finish_listeners) l(evaluated(), bound);
}

// next batch -> power iteration -> objective -> backward -> gradient sync -> optimizer -> record
// (step()); at an epoch's end its evaluation (end_epoch()); checkpoints and stops in between.
TrainSummary Trainer::run() {
  auto& s = *state_;
  begin();
  TrainSummary summary;
  while (!done()) {
    const auto result = step();
    if (!result) {
      const EpochResult epoch = end_epoch();
      summary.train_accuracy = epoch.train_accuracy;
      summary.test_accuracy = epoch.test_accuracy;
      summary.images_per_s = epoch.images_per_s;
      continue;
    }
    const bool periodic =
        s.options.checkpoint_every() > 0 && s.global_step % s.options.checkpoint_every() == 0;
    const bool stop = s.stop_agreed();
    if (periodic || stop) summary.checkpoint = s.checkpoint();
    if (stop && s.tracing) s.finish_trace();
    if (stop) {
      summary.stopped = true;
      summary.steps = s.global_step;
      summary.bound = s.last_bound;
      summary.wall_s = seconds_since(s.run_start);
      s.message("stopped on request after step " + std::to_string(s.global_step) + "; checkpoint " +
                summary.checkpoint + " (continue with --resume auto)");
      return summary;
    }
  }
  if (s.tracing) s.finish_trace();  // a run shorter than --trace-steps
  summary.steps = s.global_step;
  summary.bound = s.last_bound;
  summary.wall_s = seconds_since(s.run_start);
  s.save_final_model(summary);
  return summary;
}

}  // namespace lmt::train
