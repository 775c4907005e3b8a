// Terminal progress bar and plain progress lines.
#include "progress.h"

#include <unistd.h>

#include <cstdio>

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

Progress::Progress(std::string label, double plain_interval_s)
    : label_(std::move(label)),
      tty_(::isatty(STDERR_FILENO) == 1),
      interval_s_(plain_interval_s),
      last_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

void Progress::update(int64_t done, int64_t total, double elapsed_s, double units_per_s,
                      const std::string& tail) {
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  const bool last_one = done >= total;
  const bool plain_due = plain_every_ > 0 ? done % plain_every_ == 0 : since >= interval_s_;
  if (tty_ ? (since < 0.1 && !last_one) : (!plain_due && !last_one)) return;
  last_ = now;
  const double fraction = total > 0 ? double(done) / double(total) : 0.0;
  const double eta = done > 0 ? elapsed_s * (1.0 - fraction) / fraction : -1.0;
  if (tty_) {
    const int width = 24, filled = int(fraction * width);
    std::string bar(size_t(filled), '#');
    bar.append(size_t(width - filled), '.');
    std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %lld/%lld  %s  %.0f img/s  ETA %s",
                 label_.c_str(), bar.c_str(), 100 * fraction, (long long)done, (long long)total,
                 tail.c_str(), units_per_s, format_duration(eta).c_str());
    drawn_ = true;
  } else {
    std::fprintf(stderr, "%s: %lld/%lld (%.1f%%)  %s  %.0f img/s  elapsed %s  ETA %s\n",
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

void Progress::finish() {
  if (drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace lmt::launch
