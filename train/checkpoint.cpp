// Checkpoint directories: atomic write (temporary directory, fsync, rename, fsync parent), a
// MANIFEST of sizes and checksums written last, verification, discovery, loading, stop signals.
#include <lmt/train/checkpoint.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <lmt/train/options.h>

namespace lmt::train {
namespace fs = std::filesystem;
namespace {

constexpr const char* kManifest = "MANIFEST";
constexpr const char* kManifestHeader = "lmt-checkpoint 1";
const std::vector<std::string> kFiles = {"model.pt", "optimizer.pt", "state.pt", "config.ini"};
constexpr int64_t kStateFormat = 1;

void fsync_path(const std::string& path, bool directory = false) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) throw TrainError(path + ": cannot open for fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw TrainError(path + ": fsync failed");
}

// FNV-1a, 64 bit: detects truncation and bit rot (not an adversary).
std::string file_checksum(const std::string& path, int64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TrainError(path + ": cannot open checkpoint file");
  uint64_t hash = 14695981039346656037ull;
  std::vector<char> buffer(1 << 20);
  int64_t total = 0;
  while (in) {
    in.read(buffer.data(), std::streamsize(buffer.size()));
    const std::streamsize got = in.gcount();
    for (std::streamsize i = 0; i < got; ++i) {
      hash ^= uint8_t(buffer[size_t(i)]);
      hash *= 1099511628211ull;
    }
    total += got;
  }
  *size = total;
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", (unsigned long long)hash);
  return text;
}

void pause_for_tests() {
  static const long pause_ms = [] {
    const char* v = std::getenv("LMT_TEST_CHECKPOINT_PAUSE_MS");
    return v ? std::atol(v) : 0L;
  }();
  if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
}

// Step number of a "step-NNNNNN" directory name, -1 for anything else.
int64_t step_of(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() <= 5) return -1;
  const std::string digits = name.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoll(digits);
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_root(run_dir), ec)) {
    const int64_t step = step_of(entry.path().filename().string());
    if (step >= 0 && entry.is_directory()) found.emplace_back(step, entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out << text;
  out.flush();
  if (!out) throw TrainError(path + ": cannot write");
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

std::string checkpoints_root(const std::string& run_dir) { return run_dir + "/checkpoints"; }

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%06lld", (long long)step);
  return checkpoints_root(run_dir) + "/" + name;
}

std::string write_checkpoint(const std::string& run_dir, models::Model& model,
                             const torch::optim::Optimizer& optimizer, const CheckpointState& state,
                             int64_t keep_last) {
  const std::string root = checkpoints_root(run_dir);
  const std::string final_dir = checkpoint_path(run_dir, state.position.global_step);
  const std::string name = fs::path(final_dir).filename().string();
  const std::string tmp = root + "/.tmp-" + name + "-" + std::to_string(::getpid());
  try {
    fs::create_directories(root);
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    models::save_model_file(tmp + "/model.pt", model,
                            {{"steps", std::to_string(state.position.global_step)}});
    pause_for_tests();
    {
      torch::serialize::OutputArchive archive;
      optimizer.save(archive);
      archive.save_to(tmp + "/optimizer.pt");
    }
    pause_for_tests();
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
      archive.write("epoch_sums", state.epoch_sums, /*is_buffer=*/true);
      archive.write("config", c10::IValue(state.config));
      archive.save_to(tmp + "/state.pt");
    }
    pause_for_tests();
    write_text(tmp + "/config.ini", state.config);
    std::ostringstream manifest;
    manifest << kManifestHeader << "\n";
    for (const auto& file : kFiles) {
      const std::string path = tmp + "/" + file;
      fsync_path(path);
      int64_t size = 0;
      const std::string sum = file_checksum(path, &size);
      manifest << file << " " << size << " " << sum << "\n";
    }
    pause_for_tests();
    write_text(tmp + "/" + kManifest, manifest.str());
    fsync_path(tmp + "/" + kManifest);
    fsync_path(tmp, /*directory=*/true);
    // A checkpoint of the same step may exist (a stop request right after a periodic one):
    // move it aside first, since rename() does not replace a non-empty directory.
    if (fs::exists(final_dir)) {
      fs::remove_all(root + "/.old-" + name);
      fs::rename(final_dir, root + "/.old-" + name);
    }
    fs::rename(tmp, final_dir);
    fsync_path(root, /*directory=*/true);
  } catch (const TrainError&) {
    throw;
  } catch (const std::exception& e) {
    throw TrainError(final_dir + ": cannot write checkpoint: " + first_line(e.what()));
  }
  // Pruning and cleaning: the new checkpoint is already durable, so failures here only warn.
  std::error_code ec;
  auto all = list_checkpoints(run_dir);
  if (keep_last > 0)
    for (size_t i = 0; i + size_t(keep_last) < all.size(); ++i) {
      const fs::path doomed = fs::path(root) / (".old-" + all[i].second.filename().string());
      fs::rename(all[i].second, doomed, ec);
      if (!ec) fs::remove_all(doomed, ec);
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
    const std::string actual_sum = file_checksum(path, &actual);
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
  auto all = list_checkpoints(run_dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      verify_checkpoint(it->second.string());
      return it->second.string();
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
    archive.load_from(path);
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
    archive.read("epoch_sums", s.epoch_sums, /*is_buffer=*/true);
  } catch (const std::exception& e) {
    throw TrainError(path + ": cannot read checkpoint state: " + first_line(e.what()));
  }
  return s;
}

models::LoadedModel read_checkpoint_model(const std::string& dir) {
  try {
    return models::load_model_file(dir + "/model.pt");
  } catch (const std::exception& e) {
    throw TrainError(first_line(e.what()));
  }
}

void load_checkpoint_model(const std::string& dir, models::Model& model) {
  auto saved = read_checkpoint_model(dir).model;
  const std::string path = dir + "/model.pt";
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

void load_checkpoint_optimizer(const std::string& dir, torch::optim::Optimizer& optimizer) {
  const std::string path = dir + "/optimizer.pt";
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    optimizer.load(archive);
  } catch (const std::exception& e) {
    throw TrainError(path + ": cannot load optimizer state (a different --optimizer or model?): " +
                     first_line(e.what()));
  }
}

std::string incompatible_option(const std::string& saved, const std::string& current) {
  static const std::set<std::string> operational = {"out",
                                                    "data",
                                                    "threads",
                                                    "log-every",
                                                    "loader-threads",
                                                    "bucket-cap-mb",
                                                    "overlap",
                                                    "collective-timeout",
                                                    "checkpoint-every",
                                                    "keep-last",
                                                    "resume",
                                                    "stop-after-steps",
                                                    "stop-check-every",
                                                    "log-layer-bounds",
                                                    "config",
                                                    "help"};
  auto parse = [](const std::string& text) {
    std::map<std::string, std::string> values;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      const auto eq = line.find(" = ");
      if (eq == std::string::npos) continue;
      auto& v = values[line.substr(0, eq)];
      v += (v.empty() ? "" : ",") + line.substr(eq + 3);
    }
    return values;
  };
  const auto a = parse(saved), b = parse(current);
  std::set<std::string> keys;
  for (const auto& kv : a) keys.insert(kv.first);
  for (const auto& kv : b) keys.insert(kv.first);
  for (const auto& key : keys) {
    if (operational.count(key)) continue;
    auto ia = a.find(key), ib = b.find(key);
    const std::string va = ia == a.end() ? "(unset)" : ia->second;
    const std::string vb = ib == b.end() ? "(unset)" : ib->second;
    if (va != vb) return "--" + key + ": checkpoint has " + va + ", this run has " + vb;
  }
  return "";
}

std::string describe_options(const TrainOptions& o) {
  std::ostringstream out;
  out.precision(10);
  out << "model = " << o.model << "\n";
  for (const auto& [k, v] : o.model_options) out << "model-option = " << k << "=" << v << "\n";
  out << "normalize = " << o.normalize_input << "\nrandom-crop-padding = " << o.random_crop_padding
      << "\nhflip = " << o.horizontal_flip << "\npad-to = " << o.pad_to << "\nepochs = " << o.epochs
      << "\nbatch-size = " << o.batch_size << "\nmax-steps = " << o.max_steps
      << "\noptimizer = " << o.optimizer << "\nlr = " << o.lr << "\nmomentum = " << o.momentum
      << "\nweight-decay = " << o.weight_decay << "\nschedule = " << o.schedule
      << "\nwarmup-epochs = " << o.warmup_epochs << "\nlr-gamma = " << o.lr_gamma
      << "\nloss = " << o.loss << "\nlmt-c = " << o.lmt_c
      << "\nlmt-c-warmup = " << o.lmt_c_warmup_epochs << "\nlmt-head = " << o.lmt_head
      << "\nlmt-clip = " << o.lmt_clip << "\npi-sync = " << o.pi_sync << "\nseed = " << o.seed
      << "\nlr-steps =";
  for (auto e : o.lr_steps) out << " " << e;
  out << "\n";
  return out.str();
}

void trim_metrics_after(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::istringstream in(read_text(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    const auto at = line.find("\"step\":");
    if (at != std::string::npos) {
      const int64_t line_step = std::atoll(line.c_str() + at + 7);
      // An epoch line of the checkpoint's own step came after it (the epoch ends after the step
      // and its checkpoint): the resumed run writes it again.
      const bool epoch_line = line.find("\"type\":\"epoch\"") != std::string::npos;
      if (line_step > step || (line_step == step && epoch_line)) continue;
    }
    kept += line + "\n";
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  write_text(tmp, kept);
  fsync_path(tmp);
  fs::rename(tmp, path);
}

namespace {
volatile std::sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int) { g_stop_signal = 1; }
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}
bool stop_signal_received() { return g_stop_signal != 0; }
void request_stop() { g_stop_signal = 1; }

}  // namespace lmt::train
