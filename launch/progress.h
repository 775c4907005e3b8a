// Progress display for long jobs: a bar redrawn in place that fits the terminal's width, or plain
// lines when stderr is a file or a pipe. LMT_PROGRESS=bar|plain|off overrides the choice.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <lmt/attack/robustness.h>
#include <lmt/train/evaluate.h>

namespace lmt::launch {

enum class ProgressMode { kBar, kPlain, kOff };

// LMT_PROGRESS when set (bar, plain, off; else UsageError naming it). Otherwise a bar when stderr
// is a terminal, or when this is an MPI rank whose launcher's stderr is this session's terminal:
// mpirun forwards the ranks' stderr through pipes (Open MPI gives only stdout a pty), so a rank
// looks at its parent's stderr. Else plain lines.
ProgressMode progress_mode();

// The terminal's width: TIOCGWINSZ on stderr, else on /dev/tty (a rank under mpirun), else
// $COLUMNS, else 80.
int terminal_columns();

// One item after the counts: its text and how much it matters when the line must be shortened
// (items of lower rank go first; the bar is 75, the count 70, the rate 60, the ETA 90).
struct ProgressField {
  std::string text;
  int rank = 50;
};

class Progress {
 public:
  // `label` prefixes every line ("train"); output goes to stderr.
  explicit Progress(std::string label, ProgressMode mode = progress_mode(),
                    double plain_interval_s = 10.0);
  ~Progress();
  ProgressMode mode() const { return mode_; }
  // done/total units, elapsed seconds, units per second, the fields in screen order, and the
  // ETA (default: elapsed_s stretched to the rest; negative: unknown).
  void update(int64_t done, int64_t total, double elapsed_s, double units_per_s,
              const std::vector<ProgressField>& fields, std::optional<double> eta_s = {});
  // Plain lines every n units (updates at multiples of n) instead of every plain_interval_s
  // seconds; 0 restores the interval.
  void plain_every(int64_t n) { plain_every_ = n; }
  // A message on its own line (clears the bar first); shown in every mode.
  void message(const std::string& text);
  void clear();   // erases the bar (the next output starts on a clean line)
  void finish();  // ends the bar's line, leaving it on screen

 private:
  std::string label_;
  ProgressMode mode_;
  double interval_s_;
  std::chrono::steady_clock::time_point last_;
  bool drawn_ = false;
  int64_t plain_every_ = 0;
};

// Progress of evaluation passes (eval, certify, the end of each training epoch) on rank 0: points
// done by every rank (the ranks' batches advance in step) out of `total`, the running accuracy
// of this rank's points, throughput and ETA; the bar is erased at the pass's end.
class PassProgress {
 public:
  PassProgress(std::string label, int64_t total, int world_size);
  // A visitor for train::evaluate; a batch of step 0 begins a new pass.
  train::BatchVisitor visitor();
  void batch(int64_t step, int64_t global_images, int64_t count, int64_t correct);

 private:
  Progress progress_;
  int64_t total_;
  bool one_rank_;
  // The first batch's end and points: the rate is measured from there (its own time is unseen).
  std::chrono::steady_clock::time_point start_;
  int64_t first_ = 0, done_ = 0, count_ = 0, correct_ = 0;
};

// Progress of `lmt attack` on rank 0 (attack::RobustnessOptions::on_progress): points done by
// every rank out of `total` (a batch's points count in shares as its attacks finish), the robust
// accuracy of this rank's finished points, the attack running now, ETA.
class AttackProgress {
 public:
  AttackProgress(int64_t total, std::vector<attack::AttackKind> attacks, int world_size);
  void start();  // the bar before the first attack ends
  void update(const attack::RobustnessProgress& p);
  void clear() { progress_.clear(); }

 private:
  Progress progress_;
  int64_t total_;
  std::vector<attack::AttackKind> attacks_;
  bool one_rank_;
  std::chrono::steady_clock::time_point start_;
  int64_t finished_ = 0;  // every rank's points of the batches done
};

// The bar line for a terminal `columns` wide: never more than columns - 1 characters (writing
// the last column makes terminals wrap); the least important items go first.
std::string progress_bar_line(const std::string& label, int64_t done, int64_t total,
                              double units_per_s, double eta_s,
                              const std::vector<ProgressField>& fields, int columns);

std::string format_duration(double seconds);

}  // namespace lmt::launch
