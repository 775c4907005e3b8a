// lmt attack --model-file PATH --data FILE --norm L2|Linf --eps X [--version standard]:
// AutoAttack's standard suite (APGD-CE, APGD-T, FAB-T, Square; or --attacks), each attack on the
// points the ones before left correct; clean accuracy, per attack the points attacked, flipped, the
// robust accuracy after it and its time, and the worst case; data-parallel over ranks; checks
// attacked >= certified accuracy for bounded models (L2) and warns of gradient masking.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <lmt/attack/robustness.h>
#include <lmt/data/dataset_file.h>
#include <lmt/data/loader.h>
#include <lmt/io/json_lines.h>
#include <lmt/models/model.h>
#include <lmt/train/device.h>

#include "cli.h"
#include "commands.h"
#include "model_command.h"
#include "progress.h"
#include "schema_cli.h"

namespace lmt::launch {
namespace {
// --version: standard insists on AutoAttack's standard suite; auto names it from the flags.
enum class SuiteVersion { kAuto, kStandard, kCustom };
}  // namespace
}  // namespace lmt::launch

namespace lmt::options {
template <>
struct EnumNames<launch::SuiteVersion> {
  static constexpr std::pair<launch::SuiteVersion, const char*> table[] = {
      {launch::SuiteVersion::kAuto, "auto"},
      {launch::SuiteVersion::kStandard, "standard"},
      {launch::SuiteVersion::kCustom, "custom"}};
};
}  // namespace lmt::options

namespace lmt::launch {
namespace {

// lmt attack's options: the model-reading ones (model_command.h) and the attack's, whose
// defaults are attack::RobustnessOptions' (the attacks are named by text: parse_attack_kind's
// messages say which are not implemented).
struct AttackCommandOptions : ModelCommandOptions {
  AttackCommandOptions() { batch_size = 250; }
  attack::RobustnessOptions robustness;
  std::vector<std::string> attacks{"apgd-ce", "apgd-t", "fab-t", "square"};
  SuiteVersion version = SuiteVersion::kAuto;
  int64_t n = 1000;
};

const options::Schema<AttackCommandOptions>& attack_schema() {
  static const options::Schema<AttackCommandOptions> schema = [] {
    using options::Spec;
    options::Schema<AttackCommandOptions> s;
    add_model_command_options(s, "points per attack batch per rank");
    s.add<attack::Norm>(
        Spec("norm", "threat model").required(),
        [](auto& o) -> auto& { return o.robustness.norm(); });
    s.add<double>(
        Spec("eps", "perturbation budget (pixels in [0,1]; e.g. 8/255)")
            .required()
            .at_least(0)
            .below(options::kInf),
        [](auto& o) -> auto& { return o.robustness.eps(); });
    s.add<std::vector<std::string>>(
        Spec("attacks", "in order, each on the survivors: apgd-ce, apgd-t, fab-t, square, pgd"),
        [](auto& o) -> auto& { return o.attacks; });
    s.add<SuiteVersion>(
        Spec("version",
             "standard: refuse flags that change AutoAttack's standard suite; custom; auto: "
             "standard when the flags leave it as it is"),
        [](auto& o) -> auto& { return o.version; });
    s.add<int64_t>(
        Spec("n", "attack the first N points (-1: all)").off_or_at_least(-1, 1),
        [](auto& o) -> auto& { return o.n; });
    s.add<int>(
        Spec("apgd-iterations", "APGD iterations per run").in(1, 1e9),
        [](auto& o) -> auto& { return o.robustness.apgd_iterations(); });
    s.add<int>(
        Spec("apgd-restarts", "APGD-CE restarts (APGD-T: per target)").in(1, 1e9),
        [](auto& o) -> auto& { return o.robustness.apgd_restarts(); });
    s.add<int>(
        Spec("target-classes", "APGD-T and FAB-T target classes").in(1, 1e6),
        [](auto& o) -> auto& { return o.robustness.target_classes(); });
    s.add<int>(
        Spec("fab-iterations", "FAB-T iterations per target class").in(1, 1e9),
        [](auto& o) -> auto& { return o.robustness.fab_iterations(); });
    s.add<int>(
        Spec("fab-restarts", "FAB-T restarts per target class").in(1, 1e9),
        [](auto& o) -> auto& { return o.robustness.fab_restarts(); });
    s.add<int>(
        Spec("square-queries", "Square query budget").in(1, 1e9),
        [](auto& o) -> auto& { return o.robustness.square_queries(); });
    s.add<int>(
        Spec("pgd-steps", "PGD steps").in(1, 1e9),
        [](auto& o) -> auto& { return o.robustness.pgd_steps(); });
    s.add<int>(
        Spec("pgd-restarts", "PGD restarts").in(1, 1e9),
        [](auto& o) -> auto& { return o.robustness.pgd_restarts(); });
    s.add<uint64_t>(
        Spec("seed", "seed of random starts and Square").in(0, 9.2e18),
        [](auto& o) -> auto& { return o.robustness.seed(); });
    return s;
  }();
  return schema;
}

std::vector<attack::AttackKind> attack_kinds(const std::vector<std::string>& names) {
  std::vector<attack::AttackKind> out;
  for (const auto& item : names) {
    try {
      out.push_back(attack::parse_attack_kind(item));
    } catch (const attack::AttackError& e) {
      throw UsageError(std::string("option '--attacks': ") + e.what());
    }
  }
  if (out.empty()) throw UsageError("option '--attacks': no attack given");
  return out;
}

}  // namespace

int run_attack(int argc, char** argv, Session& session) {
  AttackCommandOptions o;
  if (!parse_options("attack",
                     "lmt attack --model-file PATH --data FILE.h5 --norm L2|Linf --eps X "
                     "[--version standard | --attacks apgd-ce,apgd-t,fab-t,square] [--n N]",
                     attack_schema(), argc, argv, o))
    return 0;
  o.robustness.attacks(attack_kinds(o.attacks));
  const std::string difference = attack::standard_suite_difference(o.robustness);
  if (o.version == SuiteVersion::kStandard && !difference.empty()) {
    std::string flag = difference.substr(0, difference.find(':'));
    std::replace(flag.begin(), flag.end(), '_', '-');
    throw UsageError("option '--" + flag + "': --version standard runs AutoAttack's standard " +
                     "suite, got " + difference + "; use --version custom");
  }
  const bool standard = o.version != SuiteVersion::kCustom && difference.empty();
  const auto& attacks = o.robustness.attacks();
  const attack::Norm norm = o.robustness.norm();
  const double eps = o.robustness.eps();
  const at::Device device = model_command_device(o);  // a usage error before MPI
  join_ranks(session, o.threads);

  const std::string& model_file = o.model_file;
  auto loaded = models::load_model_file(model_file);
  auto& model = *loaded.model;
  train::move_model(model, device);
  const auto& config = model.config();

  // The first N points of the file across all ranks, --batch-size per rank per step.
  const std::string& data_file = o.data;
  check_evaluation_data(config, data::read_dataset_info(data_file), data_file);
  data::Loader loader(
      data_file,
      evaluation_loader_options(session, config, o.batch_size * session.comm->size()).limit(o.n));
  AttackProgress progress(loader.plan().num_samples, attacks, session.comm->size());
  if (session.rank() == 0) {
    progress.start();
    o.robustness.on_progress([&](const attack::RobustnessProgress& p) { progress.update(p); });
  }
  const auto r = attack::evaluate_robustness(model, loader, o.robustness, session.comm.get());
  progress.clear();
  const int64_t N = std::max<int64_t>(1, r.count);
  int exit_code = 0;
  if (session.rank() == 0) {
    // robust_accuracy: after each attack (cumulative, as AutoAttack reports); attacks: what each
    // one cost and did on the survivors of the ones before.
    std::ostringstream per_attack, details;
    per_attack << std::setprecision(10) << "{";
    details << std::setprecision(10) << "[";
    for (size_t a = 0; a < attacks.size(); ++a) {
      const std::string name = io::json_escape(attack::to_string(attacks[a]));
      per_attack << (a ? "," : "") << name << ":" << r.robust_accuracy(a);
      details << (a ? "," : "") << "{\"attack\":" << name << ",\"attacked\":" << r.attacked[a]
              << ",\"flipped\":" << r.flipped[a] << ",\"robust_accuracy\":" << r.robust_accuracy(a)
              << ",\"seconds\":" << std::round(r.seconds[a] * 1e3) / 1e3 << "}";
    }
    per_attack << "}";
    details << "]";
    io::JsonLine line;
    line.add("command", "attack")
        .add("model_file", model_file)
        .add("data", data_file)
        .add("model", config.name)
        .add("norm", attack::to_string(norm))
        .add("eps", eps)
        .add("count", N)
        .add("version", standard ? "standard" : "custom")
        .add("clean_accuracy", r.clean_accuracy())
        .add_raw("robust_accuracy", per_attack.str())
        .add_raw("attacks", details.str())
        .add("worst_case_accuracy", r.worst_case_accuracy())
        .add("square_only_broken", r.square_only_broken)
        .add("world_size", session.comm->size());
    if (r.certified_evaluated) {
      line.add("certified_accuracy", r.certified_accuracy())
          .add("certified_broken", r.certified_broken)
          .add("sound_bound", r.sound_bound);
    }
    line.add("outputs_look_like_probabilities", r.outputs_look_like_probabilities());
    std::cout << line.str() << std::endl;

    std::fprintf(stderr, "attack: %s on %s, %s eps=%g, %lld points, %s suite\n",
                 config.name.c_str(), data_file.c_str(), attack::to_string(norm), eps, (long long)N,
                 standard ? "AutoAttack standard" : "custom");
    std::fprintf(stderr, "  %-12s %8.2f%%\n", "clean", 100 * r.clean_accuracy());
    std::fprintf(stderr, "  %-12s %8s %8s %9s %9s\n", "then attack", "attacked", "flipped",
                 "robust", "seconds");
    for (size_t a = 0; a < attacks.size(); ++a)
      std::fprintf(stderr, "  %-12s %8lld %8lld %8.2f%% %9.1f\n", attack::to_string(attacks[a]),
                   (long long)r.attacked[a], (long long)r.flipped[a], 100 * r.robust_accuracy(a),
                   r.seconds[a]);
    std::fprintf(stderr, "  %-12s %8.2f%%\n", "worst case", 100 * r.worst_case_accuracy());
    if (r.certified_evaluated)
      std::fprintf(stderr, "  %-12s %8.2f%%  (sound bound L = %.4g)\n", "certified",
                   100 * r.certified_accuracy(), r.sound_bound);
    if (r.gradient_masking_suspected())
      std::fprintf(stderr,
                   "attack: warning: the black-box Square attack broke %lld point(s) that every "
                   "white-box attack before it left correct: a sign of gradient masking\n",
                   (long long)r.square_only_broken);
    if (r.outputs_look_like_probabilities())
      std::fprintf(stderr,
                   "attack: warning: the model's outputs look like probabilities (rows in [0,1] "
                   "summing to 1), not logits: the gradient attacks' losses assume logits\n");
    if (r.certificate_violated()) {
      std::fprintf(stderr,
                   "attack: error: %lld certified point(s) were broken by an attack: the bound or "
                   "the certificate is unsound (certified %.4f, attacked %.4f)\n",
                   (long long)r.certified_broken, r.certified_accuracy(), r.worst_case_accuracy());
      exit_code = 1;
    }
    if (!o.metrics_out.empty()) io::MetricsWriter(o.metrics_out).write(line);
  }
  return exit_code;
}

}  // namespace lmt::launch
