// lmt plot RUN_DIR... --out FILE.png: training curves (loss, train/test accuracy, the Lipschitz
// bound, the learning rate) of one or more runs from their metrics.jsonl, overlaid with a legend.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include <lmt/io/atomic_file.h>
#include <lmt/io/json.h>

#include "cli.h"
#include "commands.h"
#include "plot.h"
#include "schema_cli.h"

namespace lmt::launch {
namespace {
enum class PlotAxis { kStep, kEpoch };
}  // namespace
}  // namespace lmt::launch

namespace lmt::options {
template <>
struct EnumNames<launch::PlotAxis> {
  static constexpr std::pair<launch::PlotAxis, const char*> table[] = {
      {launch::PlotAxis::kStep, "step"}, {launch::PlotAxis::kEpoch, "epoch"}};
};
}  // namespace lmt::options

namespace lmt::launch {
namespace fs = std::filesystem;
namespace {

struct PlotCommandOptions {
  std::string out;
  PlotAxis x = PlotAxis::kStep;
  std::string size = "1200x800";
  std::string title;  // empty: the runs' names
};

options::Schema<PlotCommandOptions> plot_schema() {
  using options::Spec;
  options::Schema<PlotCommandOptions> s;
  s.add<std::string>(
      Spec("out", "the PNG to write").required().value("FILE.png"),
      [](auto& o) -> auto& { return o.out; });
  s.add<PlotAxis>(
      Spec("x",
           "horizontal axis: optimizer steps (the step lines, every "
           "--log-every steps, and the epoch lines) or epochs (epoch lines)"),
      [](auto& o) -> auto& { return o.x; });
  s.add<std::string>(
      Spec("size", "image size in pixels").value("WxH"), [](auto& o) -> auto& { return o.size; });
  s.add<std::string>(
      Spec("title", "the figure's title (default: the runs' names)").value("TEXT"),
      [](auto& o) -> auto& { return o.title; });
  return s;
}

// One metrics.jsonl line kind ("step" or "epoch") of one run, in step order.
struct Curve {
  std::vector<double> step, epoch;
  std::map<std::string, std::vector<double>> values;  // loss, train_accuracy, ... (NaN: absent)
};

struct Run {
  std::string name, file;
  Curve steps, epochs;
};

const char* const kFields[] = {"loss", "train_accuracy", "test_accuracy", "lipschitz_bound", "lr"};

// Adds a line's values; a line whose step is not past the last kept one starts over from there
// (a resumed run repeats the steps after its checkpoint: the later lines win).
void add_line(Curve& c, const io::Json& line) {
  const double* step = line.number_at("step");
  const double* epoch = line.number_at("epoch");
  if (!step || !epoch) return;
  size_t keep = c.step.size();
  while (keep > 0 && c.step[keep - 1] >= *step) --keep;
  c.step.resize(keep);
  c.epoch.resize(keep);
  for (auto& [name, v] : c.values) v.resize(keep);
  c.step.push_back(*step);
  c.epoch.push_back(*epoch);
  for (const char* field : kFields) {
    const double* v = line.number_at(field);
    auto& column = c.values[field];
    column.resize(keep, NAN);
    column.push_back(v ? *v : NAN);
  }
}

Run read_run(const std::string& given) {
  Run run;
  std::string name = given;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  if (!fs::exists(name)) throw io::IoError(name + ": no such run directory or metrics.jsonl file");
  run.file = fs::is_directory(name) ? name + "/metrics.jsonl" : name;
  if (!fs::is_directory(name) && fs::path(name).filename() == "metrics.jsonl")
    name = fs::path(name).parent_path().string();
  run.name = name.empty() ? "." : name;
  std::istringstream in(io::read_file(run.file));  // IoError names the file
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    io::Json line;
    try {
      line = io::parse_json(text);
    } catch (const io::IoError& e) {
      throw io::IoError(run.file + ":" + std::to_string(number) + ": " + e.what());
    }
    const io::Json* type = line.find("type");
    const std::string kind = type && type->kind == io::Json::kString ? type->string : "";
    if (kind == "step") add_line(run.steps, line);
    // Epoch lines (and those of runs written before lines had a type) carry test_accuracy.
    if (kind == "epoch" || (kind.empty() && line.find("test_accuracy"))) add_line(run.epochs, line);
  }
  if (run.steps.step.empty() && run.epochs.step.empty())
    throw io::IoError(run.file + ": no step or epoch lines to plot");
  return run;
}

PlotSeries series(const Curve& c, PlotAxis axis, const std::string& field, double scale) {
  PlotSeries s;
  const auto& x = axis == PlotAxis::kStep ? c.step : c.epoch;
  const auto& y = c.values.at(field);
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(y[i])) continue;
    s.x.push_back(x[i]);
    s.y.push_back(y[i] * scale);
  }
  return s;
}

// The step lines when the axis is steps and the run wrote any with this field, else the epochs'.
PlotSeries finest(const Run& run, PlotAxis axis, const std::string& field, double scale) {
  if (axis == PlotAxis::kStep) {
    PlotSeries s = series(run.steps, axis, field, scale);
    if (!s.x.empty()) return s;
  }
  PlotSeries s = series(run.epochs, axis, field, scale);
  s.style = PlotSeries::Style::kLinesPoints;
  return s;
}

std::vector<PlotPanel> make_panels(const std::vector<Run>& runs, PlotAxis axis) {
  const std::string x_label = axis == PlotAxis::kStep ? "optimizer step" : "epoch";
  PlotPanel loss{"training loss", x_label, "loss (mean over the logged steps)"};
  PlotPanel accuracy{"accuracy", x_label, "accuracy (%)"};
  PlotPanel bound{"Lipschitz bound L (training estimate)", x_label, "L"};
  PlotPanel lr{"learning rate", x_label, "lr"};
  accuracy.y_min = 0;
  accuracy.y_max = 100;
  accuracy.key = "bottom right";
  double lo = INFINITY, hi = 0, lr_max = 0;
  for (size_t r = 0; r < runs.size(); ++r) {
    const int color = int(r);
    auto add = [&](PlotPanel& panel, PlotSeries s, const std::string& title, bool dashed) {
      s.color = color;
      s.title = title;
      s.dashed = dashed;
      panel.series.push_back(std::move(s));
    };
    add(loss, finest(runs[r], axis, "loss", 1), runs[r].name, false);
    PlotSeries test = series(runs[r].epochs, axis, "test_accuracy", 100);
    test.style = PlotSeries::Style::kLinesPoints;
    add(accuracy, test, runs[r].name + " test", false);
    add(accuracy, finest(runs[r], axis, "train_accuracy", 100), runs[r].name + " train", true);
    PlotSeries b = finest(runs[r], axis, "lipschitz_bound", 1);
    for (double v : b.y)
      if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
    add(bound, b, b.x.empty() ? runs[r].name + " (no bound)" : runs[r].name, false);
    add(lr, finest(runs[r], axis, "lr", 1), runs[r].name, false);
    for (double v : lr.series.back().y) lr_max = std::max(lr_max, v);
  }
  lr.y_min = 0;  // a constant rate then sits inside the frame, not on its edge
  if (lr_max > 0) lr.y_max = 1.15 * lr_max;
  bound.log_y = hi > 20 * lo;  // a bound that spans decades reads on a log scale
  return {loss, accuracy, bound, lr};
}

}  // namespace

int run_plot(int argc, char** argv, Session&) {
  const auto schema = plot_schema();
  PlotCommandOptions o;
  CommandLine cli;
  cli.command = "plot";
  cli.usage = "lmt plot RUN_DIR... --out FILE.png [--x step|epoch] [--size WxH]";
  add_schema_flags(cli, schema);
  // The runs: run directories or metrics.jsonl files, as bare words.
  cli.options.add_options()("run", po::value<std::vector<std::string>>()->value_name("RUN_DIR"),
                            "run directories (their metrics.jsonl) or metrics.jsonl files");
  cli.positional.add("run", -1);
  po::variables_map vm;
  if (!parse(cli, argc, argv, vm)) return 0;
  apply_schema_flags(cli, vm, schema, o);
  if (!vm.count("run")) throw UsageError("give at least one run directory (lmt plot RUN_DIR...)");
  const PlotSize size = parse_plot_size("--size", o.size);
  std::vector<Run> runs;
  std::string names;
  for (const auto& given : vm["run"].as<std::vector<std::string>>()) {
    runs.push_back(read_run(given));
    names += (names.empty() ? "" : ", ") + runs.back().name;
  }
  const std::string title = o.title.empty() ? "lmt: " + names : o.title;
  write_plot_png(o.out, "lmt plot --out", title, make_panels(runs, o.x), size);
  std::fprintf(stderr, "plot: %zu run(s) drawn to %s (%dx%d)\n", runs.size(), o.out.c_str(),
               size.width, size.height);
  return 0;
}

}  // namespace lmt::launch
