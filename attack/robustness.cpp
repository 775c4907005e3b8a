// Robustness evaluation over a loader: per batch the clean logits, every attack, the worst case
// and the certificates; local counts summed over the ranks once at the end.
#include <lmt/attack/robustness.h>

#include <cmath>

#include <ATen/core/grad_mode.h>
#include <lmt/data/loader.h>
#include <lmt/dist/communicator.h>
#include <lmt/lipschitz/certify.h>
#include <lmt/models/model.h>

namespace lmt::attack {
namespace {

struct KindName {
  AttackKind kind;
  const char* name;
};
constexpr KindName kKinds[] = {{AttackKind::kApgdCe, "apgd-ce"},
                               {AttackKind::kApgdT, "apgd-t"},
                               {AttackKind::kSquare, "square"},
                               {AttackKind::kPgd, "pgd"}};

void check_options(const RobustnessOptions& o) {
  if (!(o.eps() > 0)) throw AttackError("eps: must be > 0, got " + std::to_string(o.eps()));
  if (o.attacks().empty()) throw AttackError("attacks: no attack given");
  const std::pair<const char*, int> counts[] = {{"apgd_iterations", o.apgd_iterations()},
                                                {"apgd_restarts", o.apgd_restarts()},
                                                {"target_classes", o.target_classes()},
                                                {"square_queries", o.square_queries()},
                                                {"pgd_steps", o.pgd_steps()},
                                                {"pgd_restarts", o.pgd_restarts()}};
  for (const auto& [name, value] : counts)
    if (value < 1)
      throw AttackError(std::string(name) + ": must be at least 1, got " + std::to_string(value));
}

AttackResult run_one(AttackKind kind, const Classifier& f, const at::Tensor& x, const at::Tensor& y,
                     const RobustnessOptions& o, uint64_t seed) {
  if (kind == AttackKind::kApgdCe || kind == AttackKind::kApgdT) {
    const auto a = ApgdOptions()
                       .norm(o.norm())
                       .eps(o.eps())
                       .iterations(o.apgd_iterations())
                       .restarts(o.apgd_restarts())
                       .target_classes(o.target_classes())
                       .seed(seed);
    return kind == AttackKind::kApgdCe ? apgd_ce(f, x, y, a) : apgd_t(f, x, y, a);
  }
  if (kind == AttackKind::kPgd) {
    return pgd(f, x, y,
               PgdOptions()
                   .norm(o.norm())
                   .eps(o.eps())
                   .steps(o.pgd_steps())
                   .restarts(o.pgd_restarts())
                   .seed(seed));
  }
  return square(f, x, y,
                SquareOptions().norm(o.norm()).eps(o.eps()).queries(o.square_queries()).seed(seed));
}

double count(const at::Tensor& mask) { return mask.sum().item<double>(); }

}  // namespace

AttackKind parse_attack_kind(const std::string& text) {
  if (text == "fab-t" || text == "fab")
    throw AttackError("FAB-T is not implemented (use apgd-ce, apgd-t, square, pgd)");
  for (const KindName& k : kKinds)
    if (text == k.name) return k.kind;
  throw AttackError("unknown attack '" + text + "' (expected apgd-ce, apgd-t, square, pgd)");
}

const char* to_string(AttackKind kind) {
  for (const KindName& k : kKinds)
    if (kind == k.kind) return k.name;
  return "?";
}

bool RobustnessResult::gradient_masking_suspected() const {
  const bool square_used =
      std::find(attacks.begin(), attacks.end(), AttackKind::kSquare) != attacks.end() &&
      attacks.size() > 1;
  return square_used && square_only_broken > 0;
}

bool RobustnessResult::outputs_look_like_probabilities() const {
  return double(probability_rows) > 0.9 * double(std::max<int64_t>(1, count));
}

RobustnessResult evaluate_robustness(models::Model& model, data::Loader& loader,
                                     const RobustnessOptions& options, dist::Communicator* comm) {
  check_options(options);
  if (comm && comm->size() != loader.plan().world_size)
    throw AttackError("the loader is sharded over " + std::to_string(loader.plan().world_size) +
                      " ranks, the communicator has " + std::to_string(comm->size()));
  const auto& attacks = options.attacks();
  const size_t A = attacks.size();
  const auto& config = model.config();
  EvalMode eval(model);
  const Classifier f = classifier_of(model);

  RobustnessResult result;
  result.attacks = attacks;
  result.certified_evaluated =
      options.certify() && options.norm() == Norm::kL2 && model.has_bound();
  at::Tensor bound;
  if (result.certified_evaluated) {
    at::NoGradGuard no_grad;
    bound = model.lipschitz_bound(lipschitz::BoundMode::kSound);
    result.sound_bound = bound.item<double>();
  }

  // Local counts, summed as doubles in one all-reduce: clean, one per attack, then the rest.
  std::vector<double> counts(A + 7, 0.0);
  double& clean = counts[0];
  double& worst = counts[A + 1];
  double& square_only = counts[A + 2];
  double& certified = counts[A + 3];
  double& certified_broken = counts[A + 4];
  double& probability_rows = counts[A + 5];
  double& total = counts[A + 6];
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const at::Tensor& x = batch->images;
    const at::Tensor& y = batch->labels;
    const int64_t n = y.size(0);
    if (n == 0) continue;  // a rank's share of a short tail
    if (x.size(1) != config.channels || x.size(2) != config.height || x.size(3) != config.width)
      throw AttackError("the loader's images are " + std::to_string(x.size(1)) + "x" +
                        std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) + ", model '" +
                        config.name + "' takes " + std::to_string(config.channels) + "x" +
                        std::to_string(config.height) + "x" + std::to_string(config.width) +
                        " (LoaderOptions::pad_to)");
    at::Tensor logits;
    {
      at::NoGradGuard no_grad;
      logits = f(x);
    }
    const at::Tensor correct = logits.argmax(1).eq(y);
    clean += count(correct);
    total += double(n);
    const at::Tensor row_sum = logits.sum(1);
    probability_rows += count(logits.ge(0)
                                  .all(1)
                                  .logical_and(logits.le(1).all(1))
                                  .logical_and((row_sum - 1).abs().lt(1e-3)));
    const uint64_t batch_seed =
        options.seed() * 1000003ull + uint64_t(batch->indices[0].item<int64_t>());
    std::vector<AttackResult> results;
    at::Tensor white_box_correct = correct.clone();
    at::Tensor square_correct = correct.clone();
    for (size_t a = 0; a < A; ++a) {
      AttackResult r = run_one(attacks[a], f, x, y, options, batch_seed);
      counts[a + 1] += count(r.still_correct);
      at::Tensor& kept = attacks[a] == AttackKind::kSquare ? square_correct : white_box_correct;
      kept = kept.logical_and(r.still_correct);
      results.push_back(std::move(r));
    }
    const AttackResult w = worst_case(results);
    worst += count(w.still_correct);
    square_only += count(white_box_correct.logical_and(square_correct.logical_not()));
    if (result.certified_evaluated) {
      const at::Tensor radius = lipschitz::certified_radius(logits, y, bound);
      const at::Tensor cert = radius.ge(options.eps()).logical_and(correct);
      certified += count(cert);
      certified_broken += count(cert.logical_and(w.still_correct.logical_not()));
    }
  }
  const auto sums = comm ? dist::all_reduce_doubles(*comm, counts, dist::ReduceOp::kSum) : counts;
  result.count = int64_t(sums[A + 6]);
  result.clean_correct = int64_t(sums[0]);
  for (size_t a = 0; a < A; ++a) result.attack_correct.push_back(int64_t(sums[a + 1]));
  result.worst_case_correct = int64_t(sums[A + 1]);
  result.square_only_broken = int64_t(sums[A + 2]);
  result.certified = int64_t(sums[A + 3]);
  result.certified_broken = int64_t(sums[A + 4]);
  result.probability_rows = int64_t(sums[A + 5]);
  return result;
}

}  // namespace lmt::attack
