// Checkpoint directories: atomic write (temporary directory, fsync, rename, fsync parent), a
// MANIFEST of sizes and checksums written last, verification, discovery, loading.
#include <lmt/train/checkpoint.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/version.h>

#include <lmt/io/atomic_file.h>
#include <lmt/io/digest.h>
#include <lmt/io/zip_check.h>
#include <lmt/train/options.h>
#include <lmt/train/run_directory.h>

namespace lmt::train {
namespace fs = std::filesystem;
namespace {

constexpr const char* kManifest = "MANIFEST";
constexpr const char* kManifestHeader = "lmt-checkpoint 1";
const std::vector<std::string> kFiles = {"model.pt", "optimizer.pt", "state.pt", "config.ini"};
constexpr int64_t kStateFormat = 1;

// In memory: LibTorch's file writer throws from its destructor when a write fails (a full disk
// aborted the process); a writer into a string cannot fail.
std::string archive_bytes(torch::serialize::OutputArchive& archive) {
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) -> size_t {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  return bytes;
}

// A torch archive from a file, its zip structure and CRCs checked before LibTorch parses it.
void load_archive(torch::serialize::InputArchive& archive, const std::string& path,
                  std::string& bytes) {
  bytes = io::read_file(path);
  io::verify_zip_archive(bytes.data(), bytes.size(), path);
  // Device-independent: whatever device the file's tensors were tagged with, they load on the
  // CPU, and their users move them where they compute (a GPU run resumes on a CPU and back).
  archive.load_from(bytes.data(), bytes.size(), at::Device(at::kCPU));
}

// The optimizer's state entry of parameter `p`: LibTorch 2.x keys the state by the TensorImpl*
// itself, 1.x by that pointer printed as a string.
static auto find_state(const torch::optim::Optimizer& optimizer, const at::Tensor& p) {
#if TORCH_VERSION_MAJOR >= 2
  return optimizer.state().find(static_cast<void*>(p.unsafeGetTensorImpl()));
#else
  return optimizer.state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
#endif
}

// Moves the optimizer's per-parameter moments to `device`, or to their parameter's device
// (nullopt), through the state's setters: the files hold CPU tensors, the step uses the
// parameters' device. The optimizer is const (write_checkpoint's): its states are reached through
// the pointers it holds.
static void move_optimizer_state(const torch::optim::Optimizer& optimizer,
                                 std::optional<at::Device> device) {
  for (const auto& group : optimizer.param_groups())
    for (const auto& p : group.params()) {
      auto it = find_state(optimizer, p);
      if (it == optimizer.state().end()) continue;
      const at::Device to = device ? *device : p.device();
      auto move = [&](const at::Tensor& t) { return t.defined() ? t.to(to) : t; };
      if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(it->second.get())) {
        adam->exp_avg(move(adam->exp_avg()));
        adam->exp_avg_sq(move(adam->exp_avg_sq()));
        adam->max_exp_avg_sq(move(adam->max_exp_avg_sq()));
      } else if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get())) {
        adamw->exp_avg(move(adamw->exp_avg()));
        adamw->exp_avg_sq(move(adamw->exp_avg_sq()));
        adamw->max_exp_avg_sq(move(adamw->max_exp_avg_sq()));
      } else if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(it->second.get())) {
        sgd->momentum_buffer(move(sgd->momentum_buffer()));
      }
    }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// Identity and write order of a checkpoint from its state.pt, without verifying the rest;
// nullopt-like (sequence -1) when state.pt is missing or damaged.
struct Identity {
  std::string run_id;
  int64_t sequence = -1;
};
Identity identity_of(const fs::path& dir) {
  Identity id;
  try {
    torch::serialize::InputArchive archive;
    std::string bytes;
    load_archive(archive, (dir / "state.pt").string(), bytes);
    c10::IValue run_id, sequence;
    id.sequence = archive.try_read("sequence", sequence) ? sequence.toInt() : 0;
    if (archive.try_read("run_id", run_id)) id.run_id = run_id.toStringRef();
  } catch (const std::exception&) {
    id.sequence = -1;
  }
  return id;
}

}  // namespace

std::string new_run_id() {
  std::random_device device;
  const uint64_t a = (uint64_t(device()) << 32) ^ device();
  const uint64_t b = uint64_t(std::chrono::system_clock::now().time_since_epoch().count());
  return io::hex64(a ^ (b * 0x9e3779b97f4a7c15ull) ^ uint64_t(::getpid()));
}

std::string write_checkpoint(const std::string& run_dir, models::Model& model,
                             const torch::optim::Optimizer& optimizer, const CheckpointState& state,
                             int64_t keep_last,
                             const std::function<void(const std::string&)>& after_file,
                             models::Model* ema) {
  const std::string root = checkpoints_root(run_dir);
  const std::string final_dir = checkpoint_path(run_dir, state.position.global_step);
  const std::string name = fs::path(final_dir).filename().string();
  const std::string tmp = root + "/.tmp-" + name + "-" + std::to_string(::getpid());
  const std::string aside = root + "/.old-" + name;
  // Write order: after every checkpoint already here (of this run or another).
  std::map<fs::path, Identity> others;
  for (const auto& [step, dir] : list_checkpoints(run_dir))
    if (dir.string() != final_dir) others[dir] = identity_of(dir);
  int64_t sequence = 1;
  for (const auto& [dir, id] : others) sequence = std::max(sequence, id.sequence + 1);
  try {
    fs::create_directories(root);
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    std::ostringstream manifest;
    manifest << kManifestHeader << "\n";
    // Each file: written (checked, fsync'ed) and listed with its size and digest.
    auto put = [&](const std::string& file, const std::string& bytes) {
      io::write_file_synced(tmp + "/" + file, bytes);
      manifest << file << " " << bytes.size() << " " << io::hex64(io::fnv1a64(bytes)) << "\n";
      if (after_file) after_file(file);
    };
    put("model.pt", models::serialize_model_file(
                        model, {{"steps", std::to_string(state.position.global_step)}}));
    if (ema)
      put("ema.pt",
          models::serialize_model_file(
              *ema, {{"steps", std::to_string(state.position.global_step)}, {"weights", "ema"}}));
    {
      torch::serialize::OutputArchive archive;
      move_optimizer_state(optimizer, at::Device(at::kCPU));  // the file holds CPU tensors
      optimizer.save(archive);
      move_optimizer_state(optimizer, std::nullopt);
      put("optimizer.pt", archive_bytes(archive));
    }
    {
      torch::serialize::OutputArchive archive;
      const auto& p = state.position;
      archive.write("format", c10::IValue(kStateFormat));
      archive.write("global_step", c10::IValue(p.global_step));
      archive.write("epoch", c10::IValue(p.epoch));
      archive.write("step_in_epoch", c10::IValue(p.step_in_epoch));
      archive.write("wall_s", c10::IValue(p.wall_s));
      archive.write("last_bound", c10::IValue(p.last_bound));
      archive.write("world_size", c10::IValue(state.world_size));
      archive.write("steps_per_epoch", c10::IValue(state.steps_per_epoch));
      archive.write("train_samples", c10::IValue(state.train_samples));
      archive.write("rng_states", state.rng_states, /*is_buffer=*/true);
      if (state.device_rng_states.defined())
        archive.write("device_rng_states", state.device_rng_states, /*is_buffer=*/true);
      archive.write("epoch_sums", state.epoch_sums, /*is_buffer=*/true);
      archive.write("config", c10::IValue(state.config));
      archive.write("run_id", c10::IValue(state.run_id));
      archive.write("sequence", c10::IValue(sequence));
      archive.write("best_value", c10::IValue(state.best_value));
      archive.write("best_epoch", c10::IValue(state.best_epoch));
      put("state.pt", archive_bytes(archive));
    }
    put("config.ini", state.config);
    io::write_file_synced(tmp + "/" + kManifest, manifest.str());
    io::fsync_directory(tmp);
    // A checkpoint of the same step may exist (a stop request right after a periodic one), and
    // rename() does not replace a non-empty directory. Exchange the two atomically (the old one
    // ends up under the temporary name, removed below), so a crash at any point leaves a
    // complete step-N; where the file system cannot exchange (EINVAL), move the old one aside
    // and put it back if the new one cannot take its place.
    if (fs::exists(final_dir) &&
        ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
      fs::remove_all(tmp);
    } else {
      if (fs::exists(final_dir)) {
        fs::remove_all(aside);
        fs::rename(final_dir, aside);
      }
      fs::rename(tmp, final_dir);
    }
    io::fsync_directory(root);
  } catch (const std::exception& e) {
    std::error_code ignored;
    if (!fs::exists(final_dir, ignored) && fs::exists(aside, ignored))
      fs::rename(aside, final_dir, ignored);  // the previous checkpoint of this step, back
    fs::remove_all(tmp, ignored);
    std::string what =
        first_line(e.what());  // "TMP/model.pt: cannot write: ..." -> "model.pt: ..."
    for (size_t at; (at = what.find(tmp + "/")) != std::string::npos;)
      what.erase(at, tmp.size() + 1);
    throw TrainError(final_dir + ": cannot write checkpoint: " + what);
  }
  // Pruning and cleaning: the new checkpoint is already durable, so failures here only warn.
  // Only this run's checkpoints are candidates, the most recently written kept; never the new one.
  std::error_code ec;
  if (keep_last > 0 && !state.run_id.empty()) {
    std::vector<std::pair<int64_t, fs::path>> mine;  // (sequence, dir)
    for (const auto& [dir, id] : others)
      if (id.run_id == state.run_id) mine.emplace_back(id.sequence, dir);
    std::sort(mine.rbegin(), mine.rend());
    for (size_t i = size_t(keep_last) - 1; i < mine.size(); ++i) {
      const fs::path doomed = fs::path(root) / (".old-" + mine[i].second.filename().string());
      fs::rename(mine[i].second, doomed, ec);
      if (!ec) fs::remove_all(doomed, ec);
    }
  }
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string n = entry.path().filename().string();
    if (n.rfind(".tmp-", 0) == 0 || n.rfind(".old-", 0) == 0) fs::remove_all(entry.path(), ec);
  }
  return final_dir;
}

void verify_checkpoint(const std::string& dir) {
  if (!fs::is_directory(dir)) throw TrainError(dir + ": checkpoint directory not found");
  const std::string manifest_path = dir + "/" + kManifest;
  if (!fs::exists(manifest_path))
    throw TrainError(manifest_path + ": missing (incomplete checkpoint)");
  std::istringstream manifest(read_text(manifest_path));
  std::string line;
  if (!std::getline(manifest, line) || line != kManifestHeader)
    throw TrainError(manifest_path + ": not an lmt checkpoint manifest");
  std::set<std::string> listed;
  while (std::getline(manifest, line)) {
    std::istringstream fields(line);
    std::string file, sum;
    int64_t size = -1;
    if (!(fields >> file >> size >> sum) || file.find('/') != std::string::npos)
      throw TrainError(manifest_path + ": malformed line '" + line + "'");
    const std::string path = dir + "/" + file;
    if (!fs::exists(path)) throw TrainError(path + ": missing from the checkpoint");
    int64_t actual = 0;
    std::string actual_sum;
    try {
      actual_sum = io::hex64(io::file_fnv1a64(path, &actual));
    } catch (const io::IoError& e) {
      throw TrainError(e.what());
    }
    if (actual != size)
      throw TrainError(path + ": " + std::to_string(actual) + " bytes, the manifest says " +
                       std::to_string(size) + " (truncated or damaged checkpoint file)");
    if (actual_sum != sum)
      throw TrainError(path + ": checksum " + actual_sum + " differs from the manifest's " + sum +
                       " (corrupted checkpoint file)");
    listed.insert(file);
  }
  for (const auto& file : kFiles)
    if (!listed.count(file))
      throw TrainError(manifest_path + ": does not list " + file + " (incomplete checkpoint)");
}

std::string find_latest_checkpoint(const std::string& run_dir, std::vector<std::string>* warnings) {
  std::vector<std::tuple<int64_t, int64_t, fs::path>> all;  // (sequence, step, dir)
  for (const auto& [step, dir] : list_checkpoints(run_dir))
    all.emplace_back(identity_of(dir).sequence, step, dir);
  std::sort(all.begin(), all.end());
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const std::string dir = std::get<2>(*it).string();
    try {
      verify_checkpoint(dir);
      return dir;
    } catch (const TrainError& e) {
      if (warnings) warnings->push_back("skipping damaged checkpoint: " + std::string(e.what()));
    }
  }
  return "";
}

CheckpointState read_checkpoint_state(const std::string& dir) {
  const std::string path = dir + "/state.pt";
  CheckpointState s;
  try {
    torch::serialize::InputArchive archive;
    std::string bytes;
    load_archive(archive, path, bytes);
    auto get = [&](const char* key) {
      c10::IValue value;
      if (!archive.try_read(key, value))
        throw TrainError(std::string("field '") + key + "' missing");
      return value;
    };
    if (get("format").toInt() != kStateFormat)
      throw TrainError("unsupported format " + std::to_string(get("format").toInt()));
    s.position.global_step = get("global_step").toInt();
    s.position.epoch = get("epoch").toInt();
    s.position.step_in_epoch = get("step_in_epoch").toInt();
    s.position.wall_s = get("wall_s").toDouble();
    s.position.last_bound = get("last_bound").toDouble();
    s.world_size = get("world_size").toInt();
    s.steps_per_epoch = get("steps_per_epoch").toInt();
    s.train_samples = get("train_samples").toInt();
    s.config = get("config").toStringRef();
    archive.read("rng_states", s.rng_states, /*is_buffer=*/true);
    at::Tensor device_rng;
    if (archive.try_read("device_rng_states", device_rng, /*is_buffer=*/true))
      s.device_rng_states = device_rng;
    archive.read("epoch_sums", s.epoch_sums, /*is_buffer=*/true);
    c10::IValue run_id, sequence, best_value, best_epoch;
    if (archive.try_read("run_id", run_id)) s.run_id = run_id.toStringRef();
    if (archive.try_read("sequence", sequence)) s.sequence = sequence.toInt();
    if (archive.try_read("best_value", best_value)) s.best_value = best_value.toDouble();
    if (archive.try_read("best_epoch", best_epoch)) s.best_epoch = best_epoch.toInt();
  } catch (const std::exception& e) {
    throw TrainError(path + ": cannot read checkpoint state: " + first_line(e.what()));
  }
  return s;
}

static models::LoadedModel read_model(const std::string& path) {
  try {
    return models::load_model_file(path);
  } catch (const std::exception& e) {
    throw TrainError(first_line(e.what()));
  }
}

models::LoadedModel read_checkpoint_model(const std::string& dir) {
  return read_model(fs::exists(dir + "/ema.pt") ? dir + "/ema.pt" : dir + "/model.pt");
}

// Copies the model file's parameters and buffers into `model` in place.
static void load_model_into(const std::string& path, models::Model& model) {
  auto saved = read_model(path).model;
  at::NoGradGuard no_grad;
  auto copy_all = [&](auto target, auto source, const char* kind) {
    for (auto& item : target) {
      if (!item.value().defined()) continue;
      const at::Tensor* from = source.find(item.key());
      if (!from)
        throw TrainError(path + ": " + kind + " '" + item.key() + "' missing (a different model?)");
      if (from->sizes() != item.value().sizes() || from->dtype() != item.value().dtype())
        throw TrainError(path + ": " + kind + " '" + item.key() + "' has a different shape");
      item.value().copy_(*from);
    }
    if (source.size() != target.size())
      throw TrainError(path + ": holds " + std::to_string(source.size()) + " " + kind +
                       "s, the model has " + std::to_string(target.size()));
  };
  copy_all(model.named_parameters(), saved->named_parameters(), "parameter");
  copy_all(model.named_buffers(), saved->named_buffers(), "buffer");
}

void load_checkpoint_model(const std::string& dir, models::Model& model) {
  load_model_into(dir + "/model.pt", model);
}

void load_checkpoint_ema(const std::string& dir, models::Model& ema) {
  if (!fs::exists(dir + "/ema.pt"))
    throw TrainError(dir + "/ema.pt: missing (a checkpoint written without --ema-decay?)");
  load_model_into(dir + "/ema.pt", ema);
}

// LibTorch's Optimizer::load takes per-parameter state of any shape; the mismatch would only
// surface inside the first step. Every moment must have its parameter's shape.
static void check_optimizer_state_shapes(const std::string& path,
                                         torch::optim::Optimizer& optimizer) {
  int64_t index = 0;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params()) {
      auto it = find_state(optimizer, p);
      if (it != optimizer.state().end()) {
        std::vector<std::pair<const char*, at::Tensor>> moments;
        if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(it->second.get()))
          moments = {{"exp_avg", adam->exp_avg()},
                     {"exp_avg_sq", adam->exp_avg_sq()},
                     {"max_exp_avg_sq", adam->max_exp_avg_sq()}};
        else if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get()))
          moments = {{"exp_avg", adamw->exp_avg()},
                     {"exp_avg_sq", adamw->exp_avg_sq()},
                     {"max_exp_avg_sq", adamw->max_exp_avg_sq()}};
        else if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(it->second.get()))
          moments = {{"momentum_buffer", sgd->momentum_buffer()}};
        for (const auto& [name, t] : moments)
          if (t.defined() && t.numel() > 0 && t.sizes() != p.sizes())
            throw TrainError(path + ": optimizer state " + name + " of parameter " +
                             std::to_string(index) + " has shape " + c10::str(t.sizes()) +
                             ", the parameter has " + c10::str(p.sizes()) +
                             " (a checkpoint of another model?)");
      }
      ++index;
    }
  }
}

void load_checkpoint_optimizer(const std::string& dir, torch::optim::Optimizer& optimizer) {
  const std::string path = dir + "/optimizer.pt";
  try {
    torch::serialize::InputArchive archive;
    std::string bytes;
    load_archive(archive, path, bytes);
    optimizer.load(archive);
    move_optimizer_state(optimizer, std::nullopt);
  } catch (const std::exception& e) {
    throw TrainError(path + ": cannot load optimizer state (a different --optimizer or model?): " +
                     first_line(e.what()));
  }
  check_optimizer_state_shapes(path, optimizer);
}

}  // namespace lmt::train
