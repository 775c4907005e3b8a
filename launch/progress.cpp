// Terminal progress bar and plain progress lines.
#include "progress.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli.h"

namespace lmt::launch {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "--:--";
  long s = long(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

namespace {

// Under a launcher (Open MPI, PMIx, MPICH's PMI), is the parent's stderr the character device
// that is this process's controlling terminal (/proc/self/stat's tty_nr)? Open MPI 4 starts
// local ranks as mpirun's children, in mpirun's session.
bool launcher_stderr_is_terminal() {
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMIX_RANK") && !std::getenv("PMI_RANK"))
    return false;
  struct stat parent_stderr {};
  const std::string link = "/proc/" + std::to_string(::getppid()) + "/fd/2";
  if (::stat(link.c_str(), &parent_stderr) != 0 || !S_ISCHR(parent_stderr.st_mode)) return false;
  std::ifstream in("/proc/self/stat");
  std::string text;
  std::getline(in, text);
  const auto close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(text.substr(close + 1));
  std::string state;
  long long ppid = 0, pgrp = 0, session = 0, tty = 0;
  if (!(fields >> state >> ppid >> pgrp >> session >> tty) || tty == 0) return false;
  const auto tty_major = unsigned((tty >> 8) & 0xfff);
  const auto tty_minor = unsigned((tty & 0xff) | ((tty >> 12) & 0xfff00));
  return major(parent_stderr.st_rdev) == tty_major && minor(parent_stderr.st_rdev) == tty_minor;
}

int window_columns(int fd) {
  struct winsize size {};
  return ::ioctl(fd, TIOCGWINSZ, &size) == 0 ? int(size.ws_col) : 0;
}

}  // namespace

ProgressMode progress_mode() {
  if (const char* value = std::getenv("LMT_PROGRESS"); value && *value) {
    const std::string mode = value;
    if (mode == "bar") return ProgressMode::kBar;
    if (mode == "plain") return ProgressMode::kPlain;
    if (mode == "off") return ProgressMode::kOff;
    throw UsageError("LMT_PROGRESS: expected bar, plain or off, got '" + mode + "'");
  }
  if (::isatty(STDERR_FILENO) == 1 || launcher_stderr_is_terminal()) return ProgressMode::kBar;
  return ProgressMode::kPlain;
}

int terminal_columns() {
  int columns = window_columns(STDERR_FILENO);
  if (columns <= 0) {
    const int tty = ::open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
    if (tty >= 0) {
      columns = window_columns(tty);
      ::close(tty);
    }
  }
  if (columns <= 0)
    if (const char* env = std::getenv("COLUMNS")) columns = std::atoi(env);
  return columns > 0 ? columns : 80;
}

std::string progress_bar_line(const std::string& label, int64_t done, int64_t total,
                              double units_per_s, double eta_s,
                              const std::vector<ProgressField>& fields, int columns) {
  constexpr int kBarRank = 75, kMinBar = 8, kMaxBar = 30;
  struct Item {
    std::string separator, text;
    int rank;
    bool kept = true;
  };
  const double fraction = total > 0 ? std::min(1.0, double(done) / double(total)) : 0.0;
  char buf[64];
  std::vector<Item> items;
  items.push_back({"", label, 1000});
  items.push_back({" ", "", kBarRank});  // the bar: its width is what is left
  std::snprintf(buf, sizeof buf, "%3.0f%%", 100 * fraction);
  items.push_back({" ", buf, 1000});
  // done padded to total's width: the line's layout holds still as the count grows.
  const int digits = std::snprintf(nullptr, 0, "%lld", (long long)total);
  std::snprintf(buf, sizeof buf, "%*lld/%lld", digits, (long long)done, (long long)total);
  items.push_back({" ", buf, 70});
  for (const auto& f : fields) items.push_back({"  ", f.text, f.rank});
  std::snprintf(buf, sizeof buf, "%.0f img/s", units_per_s);
  items.push_back({"  ", buf, 60});
  items.push_back({"  ", "ETA " + format_duration(eta_s), 90});
  const size_t bar = 1;

  const int width = std::max(1, columns - 1);
  int bar_width = 0;
  for (;;) {
    int used = 0;
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].kept && i != bar) used += int(items[i].separator.size() + items[i].text.size());
    if (!items[bar].kept) {
      if (used <= width) break;
    } else if (used + 3 + kMinBar <= width) {  // " [" and "]"
      bar_width = std::min(kMaxBar, width - used - 3);
      break;
    }
    Item* least = nullptr;  // the least important item left that may go
    for (auto& item : items)
      if (item.kept && item.rank < 1000 && (!least || item.rank < least->rank)) least = &item;
    if (!least) break;
    least->kept = false;
  }
  if (items[bar].kept) {
    const int filled = int(fraction * bar_width);
    items[bar].text =
        "[" + std::string(size_t(filled), '#') + std::string(size_t(bar_width - filled), '.') + "]";
  }
  std::string line;
  for (const auto& item : items)
    if (item.kept) line += item.separator + item.text;
  if (int(line.size()) > width) line.resize(size_t(width));
  return line;
}

Progress::Progress(std::string label, ProgressMode mode, double plain_interval_s)
    : label_(std::move(label)),
      mode_(mode),
      interval_s_(plain_interval_s),
      // A bar is drawn at the first update; plain lines begin one interval in.
      last_(mode == ProgressMode::kBar ? std::chrono::steady_clock::time_point()
                                       : std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

void Progress::update(int64_t done, int64_t total, double elapsed_s, double units_per_s,
                      const std::vector<ProgressField>& fields, std::optional<double> eta_s) {
  if (mode_ == ProgressMode::kOff) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  const bool bar = mode_ == ProgressMode::kBar;
  if (bar ? (since < 0.1 && done < total)
          : (plain_every_ > 0 ? done % plain_every_ != 0 : since < interval_s_))
    return;
  last_ = now;
  const double fraction = total > 0 ? double(done) / double(total) : 0.0;
  const double eta = eta_s ? *eta_s : done > 0 ? elapsed_s * (1.0 - fraction) / fraction : -1.0;
  if (bar) {
    const std::string line =
        progress_bar_line(label_, done, total, units_per_s, eta, fields, terminal_columns());
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
    drawn_ = true;
  } else {
    std::string tail;
    for (const auto& f : fields) tail += "  " + f.text;
    std::fprintf(stderr, "%s: %lld/%lld (%.1f%%)%s  %.0f img/s  elapsed %s  ETA %s\n",
                 label_.c_str(), (long long)done, (long long)total, 100 * fraction, tail.c_str(),
                 units_per_s, format_duration(elapsed_s).c_str(), format_duration(eta).c_str());
  }
  std::fflush(stderr);
}

void Progress::message(const std::string& text) {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s: %s\n", label_.c_str(), text.c_str());
  std::fflush(stderr);
  drawn_ = false;
}

void Progress::clear() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

void Progress::finish() {
  if (drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

PassProgress::PassProgress(std::string label, int64_t total, int world_size)
    : progress_(std::move(label)), total_(total), one_rank_(world_size == 1) {}

train::BatchVisitor PassProgress::visitor() {
  return [this](const data::Batch& b, const at::Tensor& logits) {
    batch(b.step, b.global_batch_size, b.labels.size(0),
          logits.argmax(1).eq(b.labels).sum().item<int64_t>());
  };
}

void PassProgress::batch(int64_t step, int64_t global_images, int64_t count, int64_t correct) {
  if (step == 0) {
    start_ = std::chrono::steady_clock::now();
    done_ = count_ = correct_ = 0;
    first_ = global_images;
  }
  done_ += global_images;
  count_ += count;
  correct_ += correct;
  if (done_ >= total_) return progress_.clear();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  char text[64];
  std::snprintf(text, sizeof text, one_rank_ ? "acc %.4f" : "acc(rank 0) %.4f",
                count_ ? double(correct_) / double(count_) : 0.0);
  const double rate = elapsed > 0 ? double(done_ - first_) / elapsed : 0.0;
  progress_.update(done_, total_, elapsed, rate, {{text, 80}},
                   rate > 0 ? double(total_ - done_) / rate : -1.0);
}

AttackProgress::AttackProgress(int64_t total, std::vector<attack::AttackKind> attacks,
                               int world_size)
    : progress_("attack"),
      total_(total),
      attacks_(std::move(attacks)),
      one_rank_(world_size == 1),
      start_(std::chrono::steady_clock::now()) {}

void AttackProgress::start() {
  start_ = std::chrono::steady_clock::now();
  if (!attacks_.empty())
    progress_.update(0, total_, 0, 0, {{std::string("now ") + attack::to_string(attacks_[0]), 45}});
}

void AttackProgress::update(const attack::RobustnessProgress& p) {
  const size_t A = attacks_.size();
  const bool batch_done = p.attack + 1 >= A;
  if (batch_done) finished_ += p.step_points;
  const int64_t done =
      batch_done ? finished_ : finished_ + p.step_points * int64_t(p.attack + 1) / int64_t(A);
  if (done >= total_) return progress_.clear();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::vector<ProgressField> fields;
  char text[64];
  if (p.points > 0) {
    std::snprintf(text, sizeof text, one_rank_ ? "robust %.4f" : "robust(rank 0) %.4f",
                  double(p.robust) / double(p.points));
    fields.push_back({text, 80});
  }
  fields.push_back({std::string("now ") + attack::to_string(attacks_[(p.attack + 1) % A]), 45});
  progress_.update(done, total_, elapsed, elapsed > 0 ? double(done) / elapsed : 0.0, fields);
}

}  // namespace lmt::launch
