// Plots as PNG files, drawn by gnuplot (Debian's gnuplot-nox, its cairo PNG terminal): certified
// accuracy against radius (`lmt certify --plot`) and training curves (`lmt plot`). lmt writes the
// data and a gnuplot script into a private temporary directory, runs gnuplot there, checks that
// the result is a PNG of the requested size and only then puts it at PATH (io's atomic write):
// a failed plot leaves no file behind.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace lmt::launch {

struct PlotSeries {
  enum class Style { kLines, kSteps, kPoints, kLinesPoints };
  std::string title;  // the legend entry (empty: none)
  std::vector<double> x, y;
  Style style = Style::kLines;
  int color = 0;    // index into the palette (one colour per run or curve)
  bool dashed = false;
};

struct PlotPanel {
  explicit PlotPanel(std::string title = "", std::string x_label = "", std::string y_label = "")
      : title(std::move(title)), x_label(std::move(x_label)), y_label(std::move(y_label)) {}
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;
  std::optional<double> x_min, x_max, y_min, y_max;
  bool log_y = false;
  std::string key = "top right";  // where the legend goes (gnuplot's words)
  std::vector<std::pair<std::pair<double, double>, std::string>> labels;  // (x, y) -> text
};

struct PlotSize {
  int width = 960, height = 640;
};

// "WxH" as --plot-size / --size give it: 200..10000 pixels each. Throws UsageError naming `flag`.
PlotSize parse_plot_size(const std::string& flag, const std::string& text);

// Draws the panels (one, or a grid of up to 2 columns) under `title` and writes the PNG to
// `path`. Throws std::runtime_error naming `flag` (the option that asked for the plot) when
// gnuplot is missing or fails, with gnuplot's own message. LMT_GNUPLOT names another gnuplot.
void write_plot_png(const std::string& path, const std::string& flag, const std::string& title,
                    const std::vector<PlotPanel>& panels, PlotSize size);

// The width and height in a PNG's IHDR chunk; nullopt when `bytes` is not a PNG.
std::optional<std::pair<int, int>> png_size(const std::string& bytes);

}  // namespace lmt::launch
