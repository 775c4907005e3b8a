// lmt::attack: robustness evaluation of a model over a dataset split: clean accuracy, robust
// accuracy per attack and their per-point worst case, the points only the black-box Square attack
// broke (gradient masking), and for bounded models under L2 the certified accuracy from the sound
// bound, cross-checked against the attacks. Data-parallel: each rank attacks its shard of a
// data::Loader and the counts are summed over the ranks (`lmt attack` is a thin caller).
#pragma once

#include <algorithm>
#include <cstdint>
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

enum class AttackKind { kApgdCe, kApgdT, kSquare, kPgd };
// "apgd-ce" | "apgd-t" | "square" | "pgd"; else AttackError (FAB-T: not implemented).
AttackKind parse_attack_kind(const std::string& text);
const char* to_string(AttackKind kind);

struct RobustnessOptions {
  TORCH_ARG(Norm, norm) = Norm::kLinf;
  TORCH_ARG(double, eps) = 0.0;  // must be > 0 (inf allowed)
  TORCH_ARG(std::vector<AttackKind>, attacks) = {AttackKind::kApgdCe, AttackKind::kApgdT,
                                                 AttackKind::kSquare};
  TORCH_ARG(int, apgd_iterations) = 100;  // per run
  TORCH_ARG(int, apgd_restarts) = 1;      // APGD-CE restarts; APGD-T: per target class
  TORCH_ARG(int, target_classes) = 9;     // APGD-T
  TORCH_ARG(int, square_queries) = 5000;
  TORCH_ARG(int, pgd_steps) = 10;
  TORCH_ARG(int, pgd_restarts) = 1;
  // Every attack on a batch draws from seed * 1000003 + (the batch's first dataset index), so a
  // batch's result depends on its points alone, not on the rank or the batches before it.
  TORCH_ARG(uint64_t, seed) = 0;
  // Under L2, a model with a finite bound is also certified with the kSound bound.
  TORCH_ARG(bool, certify) = true;
};

// Global counts (summed over the ranks); the accuracies divide by max(1, count).
struct RobustnessResult {
  int64_t count = 0;  // points evaluated
  int64_t clean_correct = 0;
  std::vector<AttackKind> attacks;      // as in the options
  std::vector<int64_t> attack_correct;  // per attack: points it left correctly classified
  int64_t worst_case_correct = 0;       // correct under every attack
  int64_t square_only_broken = 0;       // broken by Square, left correct by every other attack
  int64_t probability_rows = 0;         // logits rows in [0,1] summing to 1 (within 1e-3)
  bool certified_evaluated = false;     // certify, L2 and a model with a bound
  double sound_bound = std::numeric_limits<double>::quiet_NaN();  // when certified_evaluated
  int64_t certified = 0;         // correct with certified radius >= eps
  int64_t certified_broken = 0;  // certified yet broken by an attack: 0 unless unsound

  double fraction(int64_t k) const { return double(k) / double(std::max<int64_t>(1, count)); }
  double clean_accuracy() const { return fraction(clean_correct); }
  double robust_accuracy(size_t attack) const { return fraction(attack_correct.at(attack)); }
  double worst_case_accuracy() const { return fraction(worst_case_correct); }
  double certified_accuracy() const { return fraction(certified); }
  // Square ran beside another attack and broke points every white-box attack left correct.
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
