// lmt::attack: robustness evaluation of a model over a dataset split in AutoAttack's manner:
// the attacks run in order, each on the points every earlier attack left correct (so the cost is
// a sum over survivors), and the robust accuracy is what survives them all (the per-point worst
// case, as RobustBench reports it). Also the points only the black-box Square attack broke
// (gradient masking), and for bounded models under L2 the certified accuracy from the sound
// bound, cross-checked against the attacks. Data-parallel: each rank attacks its shard of a
// data::Loader and the counts are summed over the ranks (`lmt attack` is a thin caller).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <torch/arg.h>

#include <lmt/attack/attack.h>

namespace lmt::data {
class Loader;
}
namespace lmt::dist {
class Communicator;
}

namespace lmt::attack {

enum class AttackKind { kApgdCe, kApgdT, kSquare, kPgd, kFabT };
// "apgd-ce" | "apgd-t" | "fab-t" | "square" | "pgd"; else AttackError.
AttackKind parse_attack_kind(const std::string& text);
const char* to_string(AttackKind kind);
// AutoAttack's "standard" suite for Linf and L2: APGD-CE, APGD-T, FAB-T, Square.
std::vector<AttackKind> standard_suite();

// Where evaluate_robustness is on this rank, after attack `attack` on the batch of step `step`
// (the ranks go through the same steps; `step_points` counts every rank's points of it).
// `points`: this rank's points of the batches done (this one after its last attack), `robust`:
// those correct under every attack.
struct RobustnessProgress {
  int64_t step = 0, step_points = 0;
  size_t attack = 0;
  int64_t points = 0, robust = 0;
};

struct RobustnessOptions {
  TORCH_ARG(Norm, norm) = Norm::kLinf;
  TORCH_ARG(double, eps) = 0.0;  // must be > 0 (inf allowed)
  // In this order, each on the survivors of the ones before (default: AutoAttack "standard").
  TORCH_ARG(std::vector<AttackKind>, attacks) = standard_suite();
  TORCH_ARG(int, apgd_iterations) = 100;  // per run
  TORCH_ARG(int, apgd_restarts) = 1;      // APGD-CE restarts; APGD-T: per target class
  TORCH_ARG(int, target_classes) = 9;     // APGD-T and FAB-T
  TORCH_ARG(int, fab_iterations) = 100;   // per FAB-T run
  TORCH_ARG(int, fab_restarts) = 1;       // per target class
  TORCH_ARG(int, square_queries) = 5000;
  TORCH_ARG(int, pgd_steps) = 10;
  TORCH_ARG(int, pgd_restarts) = 1;
  // Every attack on a batch draws from seed * 1000003 + (the batch's first dataset index), so a
  // batch's result depends on its points alone, not on the rank or the batches before it.
  TORCH_ARG(uint64_t, seed) = 0;
  // Under L2, a model with a finite bound is also certified with the kSound bound.
  TORCH_ARG(bool, certify) = true;
  // Called on this rank after each attack on each batch (progress displays; null: none).
  TORCH_ARG(std::function<void(const RobustnessProgress&)>, on_progress) = nullptr;
};

// Empty when `options` run AutoAttack's "standard" suite with its reference settings (the
// attacks in order, 100 APGD and FAB iterations, 1 restart, 9 target classes, 5000 Square
// queries); else the first difference, e.g. "square_queries: 100 (standard: 5000)".
std::string standard_suite_difference(const RobustnessOptions& options);

// Global counts (summed over the ranks); the accuracies divide by max(1, count).
struct RobustnessResult {
  int64_t count = 0;  // points evaluated
  int64_t clean_correct = 0;
  std::vector<AttackKind> attacks;      // as in the options
  std::vector<int64_t> attack_correct;  // per attack: points still correct after it (cumulative)
  std::vector<int64_t> attacked;        // per attack: points it ran on (the survivors before it)
  std::vector<int64_t> flipped;         // per attack: points it broke
  std::vector<double> seconds;          // per attack: wall time, the slowest rank's
  int64_t worst_case_correct = 0;       // correct under every attack
  // Broken by Square when it runs after every white-box attack (it only sees their survivors).
  int64_t square_only_broken = 0;
  int64_t probability_rows = 0;         // logits rows in [0,1] summing to 1 (within 1e-3)
  bool certified_evaluated = false;     // certify, L2 and a model with a bound
  double sound_bound = std::numeric_limits<double>::quiet_NaN();  // when certified_evaluated
  int64_t certified = 0;         // correct with certified radius >= eps
  int64_t certified_broken = 0;  // certified yet broken by an attack: 0 unless unsound

  double fraction(int64_t k) const { return double(k) / double(std::max<int64_t>(1, count)); }
  double clean_accuracy() const { return fraction(clean_correct); }
  // Robust accuracy after attacks 0..attack (AutoAttack's per-attack figure).
  double robust_accuracy(size_t attack) const { return fraction(attack_correct.at(attack)); }
  double worst_case_accuracy() const { return fraction(worst_case_correct); }
  double certified_accuracy() const { return fraction(certified); }
  // Square ran after the white-box attacks and broke points they all left correct.
  bool gradient_masking_suspected() const;
  // Over 90% of the rows look like probabilities: the gradient attacks' losses assume logits.
  bool outputs_look_like_probabilities() const;
  // An attack broke a certified point: the bound or the certificate is unsound.
  bool certificate_violated() const { return certified_evaluated && certified_broken > 0; }
};

// One pass of `loader` (epoch 0; use an evaluation loader: no shuffle, no drop_last, images
// padded to the model's input, LoaderOptions::limit for the first N points) with the model in
// eval mode. comm: the ranks the loader is sharded over, whose counts are summed (a collective);
// null for one process. Throws AttackError naming the option at fault.
RobustnessResult evaluate_robustness(models::Model& model, data::Loader& loader,
                                     const RobustnessOptions& options, dist::Communicator* comm);

}  // namespace lmt::attack
