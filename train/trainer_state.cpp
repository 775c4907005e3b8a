// The Trainer's run state: resuming from a checkpoint, writing one, the ranks' agreement to stop,
// and keeping the power-iteration vectors identical across ranks.
#include <ATen/CPUGeneratorImpl.h>

#include <lmt/dist/communicator.h>
#include <lmt/dist/vector_sync.h>
#include <lmt/io/atomic_file.h>
#include <lmt/io/trace.h>
#include <lmt/lipschitz/bounded_module.h>
#include <lmt/train/run_directory.h>
#include <lmt/train/stop.h>

#include "trainer_state.h"

namespace lmt::train {

// The state of a device's default generator (the CPU's: the Mersenne twister; a GPU's: seed and
// Philox offset), read through at::globalContext(), which reaches a GPU's without CUDA headers.
static at::Tensor rng_state(at::Device device) {
  at::Generator generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state().contiguous();
}

// `state` is a row of the checkpoint's [ranks, bytes] table: cloned into storage of its own.
// LibTorch 2.x's CPUGeneratorImpl::set_state reads it through data_ptr_impl<CPUGeneratorImplState>,
// which adds the byte view's storage offset in units of the 5056-byte struct: any row but the
// first points far past the table (checked against the torch 2.11 wheel: a segfault in a small
// program; "Invalid mt19937 state" on rank 1 of a resumed 2-rank run). LibTorch 1.13 reads bytes.
static void set_rng_state(at::Device device, const at::Tensor& state) {
  at::Generator generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state.clone(at::MemoryFormat::Contiguous));
}

// Collective. Every rank loads the same checkpoint (rank 0 picks it for --resume auto) from
// the shared run directory and takes its own RNG state and metric accumulators from it.
void Trainer::State::restore() {
  const auto& o = options;
  run_id = new_run_id();
  if (o.resume().empty()) return;
  std::string dir;
  if (is_root()) {
    if (o.resume() == "auto") {
      std::vector<std::string> warnings;
      dir = find_latest_checkpoint(o.out_dir(), &warnings);
      for (const auto& w : warnings) message("warning: " + w);
      if (dir.empty())
        message("--resume auto: no complete checkpoint in " + checkpoints_root(o.out_dir()) +
                "; starting at step 0");
    } else {
      dir = o.resume();
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
  const std::string difference = first_run_difference(saved.config, options);
  if (!difference.empty())
    throw TrainError("--resume: " + dir + " belongs to a different run: " + difference);
  load_checkpoint_model(dir, *model);
  if (ema) load_checkpoint_ema(dir, ema->model());
  best_value = saved.best_value;
  best_epoch = saved.best_epoch;
  load_checkpoint_optimizer(dir, *optimizer);
  set_rng_state(at::kCPU, saved.rng_states[comm->rank()]);
  // A GPU run continues its GPU generator too. A run that changed device (allowed: --device is
  // operational) starts the new device's generator from --seed, as at step 0, and says so.
  if (!device.is_cpu() && saved.device_rng_states.defined()) {
    set_rng_state(device, saved.device_rng_states[comm->rank()]);
  } else if (!device.is_cpu() || saved.device_rng_states.defined()) {
    message(std::string("resume: the checkpoint was written on ") +
            (saved.device_rng_states.defined() ? "a GPU" : "the CPU") + ", this run is on " +
            device.str() + ": GPU random draws (dropout, attack starts) restart from --seed");
  }
  at::Tensor sums = saved.epoch_sums[comm->rank()].contiguous();
  start_sums.assign(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
  if (start_sums.size() >= 6) {  // the step-line window (older checkpoints: a shorter first one)
    window_loss_sum = start_sums[3];
    window_correct = start_sums[4];
    window_seen = start_sums[5];
  }
  start = saved.position;
  if (!saved.run_id.empty()) run_id = saved.run_id;
  message("resuming from " + dir + " (step " + std::to_string(start.global_step) + ", epoch " +
          std::to_string(start.epoch + 1) + " step " + std::to_string(start.step_in_epoch) + ")");
}

// Collective. All ranks hold identical model and optimizer state after the gradient all-reduce,
// so rank 0 writes them; RNG states and epoch accumulators are per rank and gathered. The
// barrier keeps every rank from running ahead of a checkpoint that is not yet durable.
void Trainer::State::start_trace() {
  comm->barrier();  // every rank's clock origin within the barrier's skew of the others'
  io::trace::set_thread_name("train");
  io::trace::start(comm->rank());
  tracing = true;
}

void Trainer::State::finish_trace() {
  io::trace::stop();
  tracing = false;
  traced = true;
  // Every rank's events to rank 0 over the control path (strings, as the start-up check sends).
  const std::vector<std::string> parts = dist::all_gather_strings(*comm, io::trace::take_events());
  if (!is_root()) return;
  std::string json =
      "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"tool\":\"lmt train\","
      "\"steps\":\"" +
      options.trace_steps() + "\",\"ranks\":" + std::to_string(comm->size()) +
      "},\n\"traceEvents\":[\n";
  bool first = true;
  for (const auto& part : parts) {
    if (part.empty()) continue;
    json += (first ? "" : ",\n") + part;
    first = false;
  }
  io::write_file_atomic(options.trace(), json + "\n]}\n");
  message("trace of steps " + options.trace_steps() + " written to " + options.trace() +
          " (open it in https://ui.perfetto.dev or chrome://tracing)");
}

std::string Trainer::State::checkpoint() {
  io::TraceScope traced("checkpoint", "step");
  read_figures();  // the host sums below, and no checkpoint of a diverged run
  at::Tensor rng = rng_state(at::kCPU);
  at::Tensor local_sums = at::tensor(
      std::vector<double>{loss_sum, correct, seen, window_loss_sum, window_correct, window_seen},
      at::kDouble);
  CheckpointState state;
  state.position.global_step = global_step;
  state.position.epoch = epoch;
  state.position.step_in_epoch = step_in_epoch;
  state.position.wall_s = wall_s();
  state.position.last_bound = last_bound;
  state.world_size = comm->size();
  state.steps_per_epoch = steps_per_epoch;
  state.train_samples = train_loader->info().size;
  state.rng_states = comm->size() > 1 ? comm->all_gather(rng) : rng.unsqueeze(0);
  if (!device.is_cpu()) {
    at::Tensor device_rng = rng_state(device);
    state.device_rng_states =
        comm->size() > 1 ? comm->all_gather(device_rng) : device_rng.unsqueeze(0);
  }
  state.epoch_sums = comm->size() > 1 ? comm->all_gather(local_sums) : local_sums.unsqueeze(0);
  state.config = run_config(options);
  state.run_id = run_id;
  state.best_value = best_value;
  state.best_epoch = best_epoch;
  std::string dir;
  if (is_root()) {
    auto after_file = [this](const std::string& file) {
      for (const auto& l : checkpoint_file_listeners) l(file);
    };
    dir = write_checkpoint(options.out_dir(), *model, *optimizer, state, options.keep_last(),
                           after_file, ema ? &ema->model() : nullptr);
  }
  comm->barrier();
  return dir;
}

// Collective every stop_check_every steps: a signal seen by any rank stops all of them at the
// same step boundary (one all-reduce MAX of a flag).
bool Trainer::State::stop_agreed() {
  if (options.stop_after_steps() > 0 && global_step == options.stop_after_steps()) return true;
  if (comm->size() == 1) return stop_signal_received();
  if (global_step % options.stop_check_every() != 0) return false;
  auto flag =
      dist::all_reduce_doubles(*comm, {stop_signal_received() ? 1.0 : 0.0}, dist::ReduceOp::kMax);
  return flag[0] > 0;
}

// Makes the power-iteration vectors identical on every rank after this step's update: either
// every rank iterates all operators and the vectors are averaged, or each rank iterates its
// share and the owners' vectors are shared.
void Trainer::State::advance_power_iteration() {
  if (comm->size() == 1 || options.pi_sync() == PiSync::kAverage) {
    lipschitz::power_iteration_step(*model);
    if (comm->size() > 1) {
      auto vectors = lipschitz::power_iteration_vectors(*model);
      dist::average_unit_vectors(*device_comm, vectors);
    }
    return;
  }
  auto operators = lipschitz::spectral_operators(*model);
  for (size_t i = 0; i < operators.size(); ++i)
    if (dist::vector_owner(i, comm->size()) == comm->rank())
      operators[i].op->power_iteration_step();
  auto vectors = lipschitz::power_iteration_vectors(*model);
  dist::share_owned_vectors(*device_comm, vectors);
}

}  // namespace lmt::train
