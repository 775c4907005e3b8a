// Progress display for long jobs: a redrawn bar (loss, throughput, ETA) on a terminal, plain
// periodic lines when output goes to a file or pipe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lmt::launch {

class Progress {
 public:
  // `label` prefixes every line ("train"); output goes to stderr.
  explicit Progress(std::string label, double plain_interval_s = 10.0);
  ~Progress();
  // done/total units, elapsed seconds, and a preformatted tail ("loss 0.41  L 1.32").
  void update(int64_t done, int64_t total, double elapsed_s, double units_per_s,
              const std::string& tail);
  // Plain lines (not on a terminal) every n units (updates at multiples of n and the last one)
  // instead of every plain_interval_s seconds; 0 restores the interval.
  void plain_every(int64_t n) { plain_every_ = n; }
  // A message on its own line (clears the bar first).
  void message(const std::string& text);
  void finish();

 private:
  std::string label_;
  bool tty_;
  double interval_s_;
  std::chrono::steady_clock::time_point last_;
  bool drawn_ = false;
  int64_t plain_every_ = 0;
};

std::string format_duration(double seconds);

}  // namespace lmt::launch
