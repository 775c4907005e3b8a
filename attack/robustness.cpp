// Robustness evaluation over a loader: per batch the clean logits, then the attacks in order,
// each on the batch's points still correct (re-checked on its adversarial examples, as
// AutoAttack does), and the certificates; local counts summed over the ranks once at the end.
#include <lmt/attack/robustness.h>

#include <chrono>
#include <cmath>
#include <tuple>

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
                               {AttackKind::kFabT, "fab-t"},
                               {AttackKind::kSquare, "square"},
                               {AttackKind::kPgd, "pgd"}};

void check_options(const RobustnessOptions& o) {
  if (!(o.eps() > 0)) throw AttackError("eps: must be > 0, got " + std::to_string(o.eps()));
  if (o.attacks().empty()) throw AttackError("attacks: no attack given");
  const std::pair<const char*, int> counts[] = {{"apgd_iterations", o.apgd_iterations()},
                                                {"apgd_restarts", o.apgd_restarts()},
                                                {"target_classes", o.target_classes()},
                                                {"fab_iterations", o.fab_iterations()},
                                                {"fab_restarts", o.fab_restarts()},
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
  if (kind == AttackKind::kFabT) {
    return fab_t(f, x, y,
                 FabOptions()
                     .norm(o.norm())
                     .eps(o.eps())
                     .iterations(o.fab_iterations())
                     .restarts(o.fab_restarts())
                     .target_classes(o.target_classes())
                     .seed(seed));
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
  for (const KindName& k : kKinds)
    if (text == k.name) return k.kind;
  if (text == "fab")
    throw AttackError("untargeted FAB is not implemented (use fab-t, AutoAttack's standard one)");
  throw AttackError("unknown attack '" + text +
                    "' (expected apgd-ce, apgd-t, fab-t, square, pgd)");
}

std::vector<AttackKind> standard_suite() {
  return {AttackKind::kApgdCe, AttackKind::kApgdT, AttackKind::kFabT, AttackKind::kSquare};
}

std::string standard_suite_difference(const RobustnessOptions& o) {
  if (o.attacks() != standard_suite()) {
    std::string names;
    for (AttackKind k : o.attacks()) names += std::string(names.empty() ? "" : ",") + to_string(k);
    return "attacks: " + names + " (standard: apgd-ce,apgd-t,fab-t,square)";
  }
  const RobustnessOptions standard;
  const std::tuple<const char*, int, int> settings[] = {
      {"apgd_iterations", o.apgd_iterations(), standard.apgd_iterations()},
      {"apgd_restarts", o.apgd_restarts(), standard.apgd_restarts()},
      {"target_classes", o.target_classes(), standard.target_classes()},
      {"fab_iterations", o.fab_iterations(), standard.fab_iterations()},
      {"fab_restarts", o.fab_restarts(), standard.fab_restarts()},
      {"square_queries", o.square_queries(), standard.square_queries()}};
  for (const auto& [name, value, reference] : settings)
    if (value != reference)
      return std::string(name) + ": " + std::to_string(value) +
             " (standard: " + std::to_string(reference) + ")";
  return "";
}

const char* to_string(AttackKind kind) {
  for (const KindName& k : kKinds)
    if (kind == k.kind) return k.name;
  return "?";
}

bool RobustnessResult::gradient_masking_suspected() const { return square_only_broken > 0; }

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

  // Square's flips show gradient masking when every white-box attack ran before it.
  const auto is_white_box = [&](size_t a) { return attacks[a] != AttackKind::kSquare; };
  std::vector<bool> square_after_white_box(A, false);
  for (size_t a = 0; a < A; ++a) {
    bool before = false, after = false;
    for (size_t b = 0; b < A; ++b) (b < a ? before : after) |= b != a && is_white_box(b);
    square_after_white_box[a] = !is_white_box(a) && before && !after;
  }

  // Local counts, summed as doubles in one all-reduce: clean, per attack the points correct
  // after it, attacked and flipped, then the rest; per-attack seconds reduced by max.
  std::vector<double> counts(3 * A + 7, 0.0), seconds(A, 0.0);
  double& clean = counts[0];
  double* correct_after = &counts[1];
  double* attacked = &counts[1 + A];
  double* flipped = &counts[1 + 2 * A];
  const size_t rest = 1 + 3 * A;
  double& square_only = counts[rest];
  double& certified = counts[rest + 1];
  double& certified_broken = counts[rest + 2];
  double& probability_rows = counts[rest + 3];
  double& total = counts[rest + 4];
  double& worst = counts[rest + 5];
  loader.start_epoch(0);
  // The batches go where the model is (lmt attack --device).
  at::Device device(at::kCPU);
  for (const auto& p : model.parameters()) {
    device = p.device();
    break;
  }
  while (auto batch = loader.next()) {
    const at::Tensor x = batch->images.to(device);
    const at::Tensor y = batch->labels.to(device);
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
    at::Tensor robust = correct.clone();
    for (size_t a = 0; a < A; ++a) {
      const at::Tensor idx = robust.nonzero().flatten();
      attacked[a] += double(idx.numel());
      if (idx.numel() > 0) {
        const auto start = std::chrono::steady_clock::now();
        const at::Tensor xs = x.index_select(0, idx), ys = y.index_select(0, idx);
        const AttackResult r = run_one(attacks[a], f, xs, ys, options, batch_seed);
        at::Tensor broken;
        {
          at::NoGradGuard no_grad;
          broken = r.still_correct.logical_not().logical_and(f(r.adversarial).argmax(1).ne(ys));
        }
        robust.index_fill_(0, idx.index({broken}), false);
        flipped[a] += count(broken);
        if (square_after_white_box[a]) square_only += count(broken);
        seconds[a] +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      correct_after[a] += count(robust);
      if (options.on_progress()) {
        const bool done = a + 1 == A;
        options.on_progress()({batch->step, batch->global_batch_size, a,
                               int64_t(total) - (done ? 0 : n),
                               int64_t(worst) + (done ? int64_t(count(robust)) : 0)});
      }
    }
    worst += count(robust);
    if (result.certified_evaluated) {
      const at::Tensor radius = lipschitz::certified_radius(logits, y, bound);
      const at::Tensor cert = radius.ge(options.eps()).logical_and(correct);
      certified += count(cert);
      certified_broken += count(cert.logical_and(robust.logical_not()));
    }
  }
  const auto sums = comm ? dist::all_reduce_doubles(*comm, counts, dist::ReduceOp::kSum) : counts;
  if (comm) seconds = dist::all_reduce_doubles(*comm, seconds, dist::ReduceOp::kMax);
  result.count = int64_t(sums[rest + 4]);
  result.clean_correct = int64_t(sums[0]);
  for (size_t a = 0; a < A; ++a) {
    result.attack_correct.push_back(int64_t(sums[1 + a]));
    result.attacked.push_back(int64_t(sums[1 + A + a]));
    result.flipped.push_back(int64_t(sums[1 + 2 * A + a]));
  }
  result.seconds = seconds;
  result.square_only_broken = int64_t(sums[rest]);
  result.certified = int64_t(sums[rest + 1]);
  result.certified_broken = int64_t(sums[rest + 2]);
  result.probability_rows = int64_t(sums[rest + 3]);
  result.worst_case_correct = int64_t(sums[rest + 5]);
  return result;
}

}  // namespace lmt::attack
