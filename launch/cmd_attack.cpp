// lmt attack --model-file PATH --data FILE --norm L2|Linf --eps X --attacks apgd-ce,apgd-t,square:
// clean and robust accuracy per attack and the per-point worst case, data-parallel over ranks;
// checks attacked >= certified accuracy for bounded models (L2) and warns of gradient masking.
#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <ATen/Parallel.h>
#include <lmt/attack/attack.h>
#include <lmt/data/dataset_file.h>
#include <lmt/dist/communicator.h>
#include <lmt/lipschitz/certify.h>
#include <lmt/models/model.h>
#include <lmt/train/metrics.h>

#include "cli.h"
#include "commands.h"

namespace lmt::launch {
namespace {

const std::vector<std::string> kKnownAttacks = {"apgd-ce", "apgd-t", "square", "pgd"};

std::vector<std::string> split_attacks(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) continue;
    if (item == "fab-t" || item == "fab")
      throw UsageError(
          "option '--attacks': FAB-T is not implemented (use apgd-ce, apgd-t, "
          "square, pgd)");
    if (std::find(kKnownAttacks.begin(), kKnownAttacks.end(), item) == kKnownAttacks.end())
      throw UsageError("option '--attacks': unknown attack '" + item +
                       "' (expected apgd-ce, apgd-t, square, pgd)");
    out.push_back(item);
  }
  if (out.empty()) throw UsageError("option '--attacks': no attack given");
  return out;
}

// Images [start, start+count) as float [n,C,H,W] in [0,1], zero-padded (centred) to h x w.
at::Tensor load_images(const data::DatasetReader& reader, int64_t start, int64_t count, int64_t h,
                       int64_t w) {
  const auto& info = reader.info();
  std::vector<uint8_t> bytes(size_t(count * info.image_bytes()));
  if (count > 0) reader.read_images(start, count, bytes.data());
  at::Tensor x =
      at::from_blob(bytes.data(), {count, info.height, info.width, info.channels}, at::kByte)
          .permute({0, 3, 1, 2})
          .to(at::kFloat)
          .div(255.0)
          .contiguous();
  if (h == info.height && w == info.width) return x;
  if (h < info.height || w < info.width)
    throw UsageError("model input " + std::to_string(h) + "x" + std::to_string(w) +
                     " is smaller than the dataset's images");
  const int64_t top = (h - info.height) / 2, left = (w - info.width) / 2;
  return at::constant_pad_nd(x, {left, w - info.width - left, top, h - info.height - top}, 0.0);
}

}  // namespace

int run_attack(int argc, char** argv, Session& session) {
  CommandLine cli;
  cli.command = "attack";
  cli.usage =
      "lmt attack --model-file PATH --data FILE.h5 --norm L2|Linf --eps X "
      "[--attacks apgd-ce,apgd-t,square] [--n N]";
  cli.options.add_options()("model-file", po::value<std::string>()->required()->value_name("PATH"),
                            "model file written by lmt train (model.pt)")(
      "data", po::value<std::string>()->required()->value_name("FILE"), "dataset file (test.h5)")(
      "norm", po::value<std::string>()->required(), "L2 or Linf")(
      "eps", po::value<double>()->required(), "perturbation budget (pixels in [0,1])")(
      "attacks", po::value<std::string>()->default_value("apgd-ce,apgd-t,square"),
      "comma-separated: apgd-ce, apgd-t, square, pgd")(
      "n", po::value<int64_t>()->default_value(1000), "attack the first N points (-1: all)")(
      "batch-size", po::value<int64_t>()->default_value(250), "points per attack batch per rank")(
      "apgd-iterations", po::value<int>()->default_value(100), "APGD iterations per run")(
      "apgd-restarts", po::value<int>()->default_value(1), "APGD-CE restarts (APGD-T: per target)")(
      "target-classes", po::value<int>()->default_value(9), "APGD-T target classes")(
      "square-queries", po::value<int>()->default_value(5000), "Square query budget")(
      "pgd-steps", po::value<int>()->default_value(10), "PGD steps")(
      "pgd-restarts", po::value<int>()->default_value(1), "PGD restarts")(
      "seed", po::value<int64_t>()->default_value(0), "seed of random starts and Square")(
      "threads", po::value<int>(), "intra-op threads (default: cores / ranks on this node)")(
      "metrics-out", po::value<std::string>()->value_name("FILE"),
      "also append the JSON result line to FILE");
  po::variables_map vm;
  if (!parse(cli, argc, argv, vm)) return 0;
  require_choice(vm, "norm", {"L2", "Linf"});
  const auto attacks = split_attacks(vm["attacks"].as<std::string>());
  const double eps = vm["eps"].as<double>();
  require_range(vm, "eps", 0, kInf, false, true);
  require_range(vm, "batch-size", 1, 1e9);
  require_off_or_at_least(vm, "n", -1, 1);
  for (const char* name :
       {"apgd-iterations", "apgd-restarts", "square-queries", "pgd-steps", "pgd-restarts"})
    require_range(vm, name, 1, 1e9);
  require_range(vm, "target-classes", 1, 1e6);
  require_range(vm, "threads", 1, 1024);
  require_range(vm, "seed", 0, 9.3e18);
  join_ranks(session, vm);

  const std::string model_file = vm["model-file"].as<std::string>();
  auto loaded = models::load_model_file(model_file);
  auto& model = *loaded.model;
  const auto& config = model.config();
  attack::EvalMode eval(model);
  attack::Classifier f = attack::classifier_of(model);
  const attack::Norm norm = attack::parse_norm(vm["norm"].as<std::string>());

  const std::string data_file = vm["data"].as<std::string>();
  data::DatasetReader reader(data_file);
  const auto labels_all = reader.read_labels();
  check_evaluation_data(config, reader.info(), data_file);
  int64_t n = vm["n"].as<int64_t>();
  n = n < 0 ? int64_t(labels_all.size()) : std::min<int64_t>(n, int64_t(labels_all.size()));
  const int rank = session.comm->rank(), world = session.comm->size();
  const int64_t begin = n * rank / world, end = n * (rank + 1) / world;

  // Certification with the sound bound (L2 only; models without a bound have none).
  const bool certify = norm == attack::Norm::kL2 && model.has_bound();
  at::Tensor bound;
  if (certify) {
    at::NoGradGuard no_grad;
    bound = model.lipschitz_bound(lipschitz::BoundMode::kSound);
  }

  // Local counts: clean, per attack, worst case, square-only breaks, certified, certified broken,
  // rows that look like probabilities.
  std::vector<double> counts(attacks.size() + 7, 0.0);
  double& clean = counts[0];
  double& worst = counts[attacks.size() + 1];
  double& square_only = counts[attacks.size() + 2];
  double& certified = counts[attacks.size() + 3];
  double& certified_broken = counts[attacks.size() + 4];
  double& probability_rows = counts[attacks.size() + 5];
  double& total = counts[attacks.size() + 6];
  const uint64_t seed = uint64_t(vm["seed"].as<int64_t>());
  const int64_t batch = vm["batch-size"].as<int64_t>();
  for (int64_t start = begin; start < end; start += batch) {
    const int64_t count = std::min(batch, end - start);
    at::Tensor x = load_images(reader, start, count, config.height, config.width);
    at::Tensor y = at::tensor(
        std::vector<int64_t>(labels_all.begin() + start, labels_all.begin() + start + count));
    at::Tensor logits;
    {
      at::NoGradGuard no_grad;
      logits = f(x);
    }
    at::Tensor correct = logits.argmax(1).eq(y);
    clean += correct.sum().item<double>();
    total += double(count);
    at::Tensor row_sum = logits.sum(1);
    probability_rows += logits.ge(0)
                            .all(1)
                            .logical_and(logits.le(1).all(1))
                            .logical_and((row_sum - 1).abs().lt(1e-3))
                            .sum()
                            .item<double>();
    const uint64_t batch_seed = seed * 1000003ull + uint64_t(start);
    std::vector<attack::AttackResult> results;
    at::Tensor white_box_correct = correct.clone();
    at::Tensor square_correct = correct.clone();
    for (size_t a = 0; a < attacks.size(); ++a) {
      const auto& name = attacks[a];
      attack::AttackResult r;
      if (name == "apgd-ce" || name == "apgd-t") {
        attack::ApgdOptions o;
        o.norm = norm;
        o.eps = eps;
        o.iterations = vm["apgd-iterations"].as<int>();
        o.restarts = vm["apgd-restarts"].as<int>();
        o.target_classes = vm["target-classes"].as<int>();
        o.seed = batch_seed;
        r = name == "apgd-ce" ? attack::apgd_ce(f, x, y, o) : attack::apgd_t(f, x, y, o);
      } else if (name == "pgd") {
        attack::PgdOptions o;
        o.norm = norm;
        o.eps = eps;
        o.steps = vm["pgd-steps"].as<int>();
        o.restarts = vm["pgd-restarts"].as<int>();
        o.seed = batch_seed;
        r = attack::pgd(f, x, y, o);
      } else {
        attack::SquareOptions o;
        o.norm = norm;
        o.eps = eps;
        o.queries = vm["square-queries"].as<int>();
        o.seed = batch_seed;
        r = attack::square(f, x, y, o);
      }
      counts[a + 1] += r.still_correct.sum().item<double>();
      if (name == "square")
        square_correct = square_correct.logical_and(r.still_correct);
      else
        white_box_correct = white_box_correct.logical_and(r.still_correct);
      results.push_back(std::move(r));
    }
    attack::AttackResult w = attack::worst_case(results);
    worst += w.still_correct.sum().item<double>();
    square_only += white_box_correct.logical_and(square_correct.logical_not()).sum().item<double>();
    if (certify) {
      at::Tensor radius = lipschitz::certified_radius(logits, y, bound);
      at::Tensor cert = radius.ge(eps).logical_and(correct);
      certified += cert.sum().item<double>();
      certified_broken += cert.logical_and(w.still_correct.logical_not()).sum().item<double>();
    }
  }
  const auto sums = dist::all_reduce_doubles(*session.comm, counts, dist::ReduceOp::kSum);
  const double N = std::max(1.0, sums[attacks.size() + 6]);
  const bool square_used =
      std::find(attacks.begin(), attacks.end(), "square") != attacks.end() && attacks.size() > 1;
  int exit_code = 0;
  if (session.rank() == 0) {
    std::ostringstream per_attack;
    per_attack << std::setprecision(10) << "{";
    for (size_t a = 0; a < attacks.size(); ++a)
      per_attack << (a ? "," : "") << train::json_escape(attacks[a]) << ":" << sums[a + 1] / N;
    per_attack << "}";
    train::JsonLine line;
    line.add("command", "attack")
        .add("model_file", model_file)
        .add("data", data_file)
        .add("model", config.name)
        .add("norm", attack::to_string(norm))
        .add("eps", eps)
        .add("count", int64_t(N))
        .add("clean_accuracy", sums[0] / N)
        .add_raw("robust_accuracy", per_attack.str())
        .add("worst_case_accuracy", sums[attacks.size() + 1] / N)
        .add("square_only_broken", int64_t(sums[attacks.size() + 2]))
        .add("world_size", world);
    if (certify) {
      line.add("certified_accuracy", sums[attacks.size() + 3] / N)
          .add("certified_broken", int64_t(sums[attacks.size() + 4]))
          .add("sound_bound", bound.item<double>());
    }
    const bool probabilities = sums[attacks.size() + 5] > 0.9 * N;
    line.add("outputs_look_like_probabilities", probabilities);
    std::cout << line.str() << std::endl;

    std::fprintf(stderr, "attack: %s on %s, %s eps=%g, %lld points\n", config.name.c_str(),
                 data_file.c_str(), attack::to_string(norm), eps, (long long)N);
    std::fprintf(stderr, "  %-12s %8.2f%%\n", "clean", 100 * sums[0] / N);
    for (size_t a = 0; a < attacks.size(); ++a)
      std::fprintf(stderr, "  %-12s %8.2f%%\n", attacks[a].c_str(), 100 * sums[a + 1] / N);
    std::fprintf(stderr, "  %-12s %8.2f%%\n", "worst case", 100 * sums[attacks.size() + 1] / N);
    if (certify)
      std::fprintf(stderr, "  %-12s %8.2f%%  (sound bound L = %.4g)\n", "certified",
                   100 * sums[attacks.size() + 3] / N, bound.item<double>());
    if (square_used && sums[attacks.size() + 2] > 0)
      std::fprintf(stderr,
                   "attack: warning: the black-box Square attack broke %lld point(s) that every "
                   "white-box attack left correct: a sign of gradient masking\n",
                   (long long)sums[attacks.size() + 2]);
    if (probabilities)
      std::fprintf(stderr,
                   "attack: warning: the model's outputs look like probabilities (rows in [0,1] "
                   "summing to 1), not logits: the gradient attacks' losses assume logits\n");
    if (certify && sums[attacks.size() + 4] > 0) {
      std::fprintf(stderr,
                   "attack: error: %lld certified point(s) were broken by an attack: the bound or "
                   "the certificate is unsound (certified %.4f, attacked %.4f)\n",
                   (long long)sums[attacks.size() + 4], sums[attacks.size() + 3] / N,
                   sums[attacks.size() + 1] / N);
      exit_code = 1;
    }
    if (vm.count("metrics-out"))
      train::MetricsWriter(vm["metrics-out"].as<std::string>()).write(line);
  }
  return exit_code;
}

}  // namespace lmt::launch
