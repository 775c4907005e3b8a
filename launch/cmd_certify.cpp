// lmt certify --model-file PATH --data FILE --eps LIST: certified accuracy from a sound bound.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include <lmt/data/dataset_file.h>
#include <lmt/data/loader.h>
#include <lmt/dist/communicator.h>
#include <lmt/io/atomic_file.h>
#include <lmt/io/json_lines.h>
#include <lmt/models/model.h>
#include <lmt/train/certification.h>
#include <lmt/train/device.h>

#include "cli.h"
#include "commands.h"
#include "model_command.h"
#include "plot.h"
#include "progress.h"
#include "schema_cli.h"

namespace lmt::launch {
namespace {
// The radius rule, named as train::CertifyOptions::head takes it.
enum class RadiusRule { kGlobal, kPairwise, kBest };
}  // namespace
}  // namespace lmt::launch

namespace lmt::options {
template <>
struct EnumNames<launch::RadiusRule> {
  static constexpr std::pair<launch::RadiusRule, const char*> table[] = {
      {launch::RadiusRule::kGlobal, "global"},
      {launch::RadiusRule::kPairwise, "pairwise"},
      {launch::RadiusRule::kBest, "best"}};
};
}  // namespace lmt::options

namespace lmt::launch {
namespace {

struct CertifyCommandOptions : ModelCommandOptions {
  std::vector<double> eps = train::CertifyOptions().eps();
  RadiusRule head = RadiusRule::kBest;
  std::string plot;  // empty: no plot
  std::string plot_size = "960x640";
  std::string curve_csv;  // empty: none
  bool tight_bounds = true;
};

options::Schema<CertifyCommandOptions> certify_schema() {
  using options::Spec;
  options::Schema<CertifyCommandOptions> s;
  add_model_command_options(s);
  s.add<std::vector<double>>(
      Spec("eps", "l2 radii to report certified accuracy at (pixel scale [0,1])")
          .at_least(0)
          .below(options::kInf),
      [](auto& o) -> auto& { return o.eps; });
  s.add<RadiusRule>(
      Spec("head", "radius rule (best: per point the larger; both are sound)"),
      [](auto& o) -> auto& { return o.head; });
  s.add<std::string>(
      Spec("plot", "draw certified accuracy against radius (gnuplot's PNG terminal)")
          .operational()
          .value("FILE.png"),
      [](auto& o) -> auto& { return o.plot; });
  s.add<std::string>(
      Spec("plot-size", "the --plot image's size in pixels").operational().value("WxH"),
      [](auto& o) -> auto& { return o.plot_size; });
  s.add<std::string>(
      Spec("curve-csv",
           "write the certified-accuracy curve as CSV: radius,certified_accuracy (the fraction of "
           "points classified correctly with certified radius >= radius) at 0 and at every "
           "distinct radius")
          .operational()
          .value("FILE.csv"),
      [](auto& o) -> auto& { return o.curve_csv; });
  s.add<bool>(
      Spec("tight-bounds",
           "bound small convs by their explicit matrix (exact or banded certificate, "
           "docs/methods.md#sound-bounds); false: the circulant bound only (faster)"),
      [](auto& o) -> auto& { return o.tight_bounds; });
  return s;
}

std::string format_percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * fraction);
  return buf;
}

// Certified accuracy as a function of the radius: at 0 and at each distinct radius of a correctly
// classified point, the fraction of all n points that are correct with radius >= it.
struct CertifiedCurve {
  std::vector<double> radius, accuracy;
};

CertifiedCurve certified_curve(const at::Tensor& radii, const at::Tensor& correct, int64_t n) {
  at::Tensor r = radii.masked_select(correct.to(at::kBool)).to(at::kDouble).contiguous();
  std::vector<double> sorted(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
  std::sort(sorted.begin(), sorted.end());
  CertifiedCurve c;
  const double total = double(std::max<int64_t>(n, 1));
  c.radius.push_back(0);
  c.accuracy.push_back(double(sorted.size()) / total);
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] <= c.radius.back()) continue;  // equal radii: one row, counted from the first
    c.radius.push_back(sorted[i]);
    c.accuracy.push_back(double(sorted.size() - i) / total);
  }
  return c;
}

void write_certified_plot(const std::string& path, PlotSize size, const CertifiedCurve& curve,
                          const lipschitz::CertificationSummary& s, const std::string& model,
                          double bound) {
  PlotPanel panel;
  panel.x_label = "l2 radius ε (pixels in [0, 1])";
  panel.y_label = "certified accuracy (%)";
  panel.y_min = 0;
  panel.y_max = 100;
  panel.x_min = 0;
  // The requested radii with room to their right; the tail of large radii cut at 4x that.
  double x_max = *std::max_element(s.eps.begin(), s.eps.end()) * 1.25;
  if (curve.radius.size() > 1) x_max = std::max(x_max, std::min(curve.radius.back(), 4 * x_max));
  panel.x_max = x_max > 0 ? x_max : 1;
  PlotSeries line;
  line.title = "certified accuracy (clean " + format_percent(s.clean_accuracy) + ")";
  line.style = PlotSeries::Style::kSteps;
  // The curve is a_{i+1} on (r_i, r_{i+1}] (a point with radius r is certified at eps <= r).
  // gnuplot's steps draw each point's y rightwards to the next x, so the points (r_i, a_{i+1})
  // draw exactly that, after (0, a_0).
  line.x = curve.radius;
  for (size_t i = 0; i < curve.radius.size(); ++i)
    line.y.push_back(100 * (i + 1 < curve.accuracy.size() ? curve.accuracy[i + 1] : 0.0));
  line.x.insert(line.x.begin(), 0.0);
  line.y.insert(line.y.begin(), 100 * curve.accuracy.front());
  panel.series.push_back(line);
  for (size_t i = 0; i < s.eps.size(); ++i) {
    PlotSeries mark;
    mark.title =
        "ε = " + options::format_number(s.eps[i]) + ": " + format_percent(s.certified_accuracy[i]);
    mark.style = PlotSeries::Style::kPoints;
    mark.color = int(i) + 1;
    mark.x = {s.eps[i]};
    mark.y = {100 * s.certified_accuracy[i]};
    panel.series.push_back(mark);
  }
  char title[256];
  std::snprintf(title, sizeof title, "%s: certified accuracy, %lld test images, L = %.4g (sound)",
                model.c_str(), (long long)s.n, bound);
  write_plot_png(path, "--plot", title, {panel}, size);
}

}  // namespace

int run_certify(int argc, char** argv, Session& session) {
  const auto schema = certify_schema();
  CertifyCommandOptions o;
  if (!parse_options(
          "certify",
          "lmt certify --model-file PATH --data FILE.h5 [--eps 0.1,0.3,1.0,1.58] [--plot FILE.png]",
          schema, argc, argv, o))
    return 0;
  if (o.eps.empty()) throw UsageError("option '--eps' needs at least one radius");
  const PlotSize plot_size = parse_plot_size("--plot-size", o.plot_size);
  train::CertifyOptions settings;
  settings.eps(o.eps);
  settings.head(options::to_string(o.head));
  settings.model_source(o.model_file);
  if (!o.tight_bounds) settings.bound_limits(lipschitz::SoundBoundLimits::circulant_only());
  const at::Device device = model_command_device(o);  // a usage error before MPI
  join_ranks(session, o.threads);

  auto loaded = models::load_model_file(o.model_file);
  auto& model = *loaded.model;
  train::move_model(model, device);
  check_evaluation_data(model.config(), data::read_dataset_info(o.data), o.data);
  data::Loader loader(o.data, evaluation_loader_options(session, model.config(), o.batch_size));
  PassProgress progress("certify", loader.plan().num_samples, session.comm->size());
  auto result = train::certify(model, loader, session.comm.get(), settings,
                               session.rank() == 0 ? progress.visitor() : nullptr);
  if (session.rank() != 0) return 0;

  const auto& s = result.summary;
  // Per spectral operator: the sound bound and the exact norm (explicit matrix, dense SVD) or
  // the converged estimate from below that it is compared with.
  std::string layers = "[";
  for (const auto& [name, b] : result.layers) {
    io::JsonLine layer;
    layer.add("name", name)
        .add("sound", b.bound)
        .add(b.exact ? "exact" : "estimate", b.reference)
        .add("method", b.method)
        .add("seconds", b.seconds);
    layers += (layers.size() > 1 ? "," : "") + layer.str();
  }
  layers += "]";
  io::JsonLine line;
  line.add("command", "certify")
      .add("model_file", o.model_file)
      .add("data", o.data)
      .add("model", model.config().name)
      .add("count", s.n)
      .add("clean_accuracy", s.clean_accuracy)
      .add("eps", s.eps)
      .add("certified_accuracy", s.certified_accuracy)
      .add("median_radius", s.median_radius)
      .add("lipschitz_bound", result.sound_bound)
      .add("bound_kind",
           "sound: float64 SVD (dense); conv: the smaller of the circulant FFT spectrum and the "
           "explicit matrix's exact norm or banded Cholesky certificate")
      .add("power_iteration_bound", result.estimate_bound)
      .add("sound_over_power_iteration", result.sound_bound / result.estimate_bound)
      .add("bound_seconds", result.bound_seconds)
      .add_raw("layer_bounds", layers)
      .add("radius_rule", result.head);
  std::cout << line.str() << std::endl;
  std::fprintf(stderr, "certify: %s on %s (%lld images)\n", model.config().name.c_str(),
               o.data.c_str(), (long long)s.n);
  std::fprintf(stderr, "  clean accuracy          %.4f\n", s.clean_accuracy);
  for (size_t i = 0; i < s.eps.size(); ++i)
    std::fprintf(stderr, "  certified @ eps=%-7.4g %.4f\n", s.eps[i], s.certified_accuracy[i]);
  std::fprintf(stderr, "  median certified radius %.4f   (radius rule: %s)\n", s.median_radius,
               result.head.c_str());
  std::fprintf(stderr, "  L (sound bound)         %.6g   = %.6f x power-iteration estimate %.6g\n",
               result.sound_bound, result.sound_bound / result.estimate_bound,
               result.estimate_bound);
  std::fprintf(stderr, "  %-28s %12s %14s %9s  %-9s %7s\n", "layer", "sound", "exact/estimate",
               "sound/ref", "method", "seconds");
  for (const auto& [name, b] : result.layers)
    std::fprintf(stderr, "  %-28s %12.6g %12.6g %s %9.6f  %-9s %7.2f\n", name.c_str(), b.bound,
                 b.reference, b.exact ? "ex" : "es", b.bound / b.reference, b.method.c_str(),
                 b.seconds);
  std::fprintf(stderr, "  bounds computed in %.1f s\n", result.bound_seconds);
  if (!o.metrics_out.empty()) io::MetricsWriter(o.metrics_out).write(line);

  if (!o.plot.empty() || !o.curve_csv.empty()) {
    const auto curve = certified_curve(result.radii, result.correct, s.n);
    if (!o.curve_csv.empty()) {
      std::string csv = "radius,certified_accuracy\n";
      char row[64];
      for (size_t i = 0; i < curve.radius.size(); ++i) {
        std::snprintf(row, sizeof row, "%.17g,%.17g\n", curve.radius[i], curve.accuracy[i]);
        csv += row;
      }
      io::write_file_atomic(o.curve_csv, csv);
      std::fprintf(stderr, "  curve written to %s\n", o.curve_csv.c_str());
    }
    if (!o.plot.empty()) {
      write_certified_plot(o.plot, plot_size, curve, s, model.config().name, result.sound_bound);
      std::fprintf(stderr, "  plot written to %s\n", o.plot.c_str());
    }
  }
  return 0;
}

}  // namespace lmt::launch
