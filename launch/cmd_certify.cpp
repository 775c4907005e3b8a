// lmt certify --model-file PATH --data FILE --eps LIST: certified accuracy from a sound bound.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include <lmt/data/dataset_file.h>
#include <lmt/data/loader.h>
#include <lmt/dist/communicator.h>
#include <lmt/models/model.h>
#include <lmt/train/certification.h>
#include <lmt/train/metrics.h>

#include "cli.h"
#include "commands.h"
#include "plot.h"

namespace lmt::launch {

int run_certify(int argc, char** argv, Session& session) {
  CommandLine cli;
  cli.command = "certify";
  cli.usage =
      "lmt certify --model-file PATH --data FILE.h5 [--eps 0.1,0.3,1.0,1.58] [--plot FILE.png]";
  cli.options.add_options()("model-file", po::value<std::string>()->required()->value_name("PATH"),
                            "model file written by lmt train")(
      "data", po::value<std::string>()->required()->value_name("FILE"), "dataset file (test.h5)")(
      "eps", po::value<std::string>()->default_value("0.1,0.3,1.0,1.58"),
      "l2 radii to report certified accuracy at (pixel scale [0,1])")(
      "head", po::value<std::string>()->default_value("best"),
      "radius rule: global, pairwise or best (per point the larger; both are sound)")(
      "batch-size", po::value<int64_t>()->default_value(500), "global evaluation batch")(
      "threads", po::value<int>(), "intra-op threads (default: cores / ranks on this node)")(
      "plot", po::value<std::string>()->value_name("FILE.png"),
      "draw certified accuracy against radius")(
      "metrics-out", po::value<std::string>()->value_name("FILE"), "also append the JSON line");
  po::variables_map vm;
  if (!parse(cli, argc, argv, vm)) return 0;
  require_choice(vm, "head", {"global", "pairwise", "best"});
  train::CertifyOptions options;
  require_range(vm, "batch-size", 1, 1e9);
  require_range(vm, "threads", 1, 1024);
  options.eps = parse_number_list("eps", vm["eps"].as<std::string>());
  for (double eps : options.eps) check_range("eps", eps, 0, kInf, false, true);
  options.head = vm["head"].as<std::string>();
  join_ranks(session, vm);

  const std::string model_file = vm["model-file"].as<std::string>();
  options.model_source = model_file;
  auto loaded = models::load_model_file(model_file);
  auto& model = *loaded.model;
  const std::string data_file = vm["data"].as<std::string>();
  check_evaluation_data(model.config(), data::read_dataset_info(data_file), data_file);
  data::Loader loader(data_file, evaluation_loader_options(session, model.config(),
                                                           vm["batch-size"].as<int64_t>()));
  auto result = train::certify(model, loader, session.comm.get(), options);
  if (session.rank() != 0) return 0;

  const auto& s = result.summary;
  train::JsonLine line;
  line.add("command", "certify")
      .add("model_file", model_file)
      .add("data", data_file)
      .add("model", model.config().name)
      .add("count", s.n)
      .add("clean_accuracy", s.clean_accuracy)
      .add("eps", s.eps)
      .add("certified_accuracy", s.certified_accuracy)
      .add("median_radius", s.median_radius)
      .add("lipschitz_bound", result.sound_bound)
      .add("bound_kind", "sound: float64 SVD (dense) and circulant FFT spectrum (conv)")
      .add("power_iteration_bound", result.estimate_bound)
      .add("sound_over_power_iteration", result.sound_bound / result.estimate_bound)
      .add("radius_rule", result.head);
  std::cout << line.str() << std::endl;
  std::fprintf(stderr, "certify: %s on %s (%lld images)\n", model.config().name.c_str(),
               data_file.c_str(), (long long)s.n);
  std::fprintf(stderr, "  clean accuracy          %.4f\n", s.clean_accuracy);
  for (size_t i = 0; i < s.eps.size(); ++i)
    std::fprintf(stderr, "  certified @ eps=%-7.4g %.4f\n", s.eps[i], s.certified_accuracy[i]);
  std::fprintf(stderr, "  median certified radius %.4f   (radius rule: %s)\n", s.median_radius,
               result.head.c_str());
  std::fprintf(stderr, "  L (sound bound)         %.6g   = %.6f x power-iteration estimate %.6g\n",
               result.sound_bound, result.sound_bound / result.estimate_bound,
               result.estimate_bound);
  if (vm.count("metrics-out"))
    train::MetricsWriter(vm["metrics-out"].as<std::string>()).write(line);

  if (vm.count("plot")) {
    // Certified accuracy at radius r = fraction of points correct with radius >= r.
    auto radii = result.radii.masked_select(result.correct).contiguous();
    std::vector<double> sorted(radii.data_ptr<double>(), radii.data_ptr<double>() + radii.numel());
    std::sort(sorted.begin(), sorted.end());
    std::vector<double> xs{0.0}, ys{double(sorted.size()) / double(s.n)};
    for (size_t i = 0; i < sorted.size(); ++i) {
      xs.push_back(sorted[i]);
      ys.push_back(double(sorted.size() - i - 1) / double(s.n));
    }
    double x_max = *std::max_element(s.eps.begin(), s.eps.end()) * 1.25;
    if (!sorted.empty()) x_max = std::max(x_max, std::min(sorted.back(), 4 * x_max));
    write_line_plot_png(vm["plot"].as<std::string>(), xs, ys, x_max, s.eps, s.certified_accuracy);
    std::fprintf(stderr, "  plot written to %s\n", vm["plot"].as<std::string>().c_str());
  }
  return 0;
}

}  // namespace lmt::launch
