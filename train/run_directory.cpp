// The run directory: where the checkpoints live, whether it holds another run, removing that run
// (--overwrite), and cutting metrics.jsonl back to a checkpoint on resume.
#include <lmt/train/run_directory.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <lmt/io/atomic_file.h>
#include <lmt/train/options.h>

namespace lmt::train {
namespace fs = std::filesystem;
namespace {

// Step number of a "step-NNNNNN" directory name, -1 for anything else.
int64_t step_of(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() <= 5) return -1;
  const std::string digits = name.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoll(digits);
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

std::string checkpoints_root(const std::string& run_dir) { return run_dir + "/checkpoints"; }

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%06lld", (long long)step);
  return checkpoints_root(run_dir) + "/" + name;
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

void trim_metrics_after(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  try {
    std::istringstream in(io::read_file(path));
    std::string line, kept;
    while (std::getline(in, line)) {
      const auto at = line.find("\"step\":");
      if (at != std::string::npos) {
        const int64_t line_step = std::atoll(line.c_str() + at + 7);
        // An epoch line of the checkpoint's own step came after it (the epoch ends after the
        // step and its checkpoint): the resumed run writes it again.
        const bool epoch_line = line.find("\"type\":\"epoch\"") != std::string::npos;
        if (line_step > step || (line_step == step && epoch_line)) continue;
      }
      kept += line + "\n";
    }
    io::write_file_atomic(path, kept);
  } catch (const io::IoError& e) {
    throw TrainError(e.what());
  }
}

std::string existing_run_file(const std::string& run_dir) {
  for (const char* file : {"model.pt", "metrics.jsonl"})
    if (fs::exists(run_dir + "/" + file)) return run_dir + "/" + file;
  const auto all = list_checkpoints(run_dir);
  return all.empty() ? "" : all.back().second.string();
}

void remove_previous_run(const std::string& run_dir) {
  try {
    for (const char* file : {"model.pt", "model_best.pt", "metrics.jsonl", "config.ini"})
      fs::remove(run_dir + "/" + file);
    fs::remove_all(checkpoints_root(run_dir));
  } catch (const std::exception& e) {
    throw TrainError("--overwrite: cannot remove the previous run in " + run_dir + ": " +
                     first_line(e.what()));
  }
}

}  // namespace lmt::train
