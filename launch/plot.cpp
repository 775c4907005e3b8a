// Plots through gnuplot's pngcairo terminal (launch/plot.h): data files and a script in a private
// temporary directory, gnuplot run there with posix_spawn, the PNG checked, then written to the
// target with io's atomic write.
#include "plot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include <lmt/io/atomic_file.h>

#include "cli.h"

extern char** environ;

namespace lmt::launch {
namespace fs = std::filesystem;
namespace {

// Colour-blind-safe (Okabe-Ito), one colour per run or curve.
constexpr const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#F0E442"};

// A double-quoted gnuplot string: backslash and quote escaped (the terminal is noenhanced, so
// underscores in run names stay underscores).
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string number(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// A directory of our own under $TMPDIR (or /tmp), removed with everything in it on scope exit.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/lmt-plot-XXXXXX";
    if (!mkdtemp(pattern.data()))
      throw io::IoError(pattern + ": cannot create: " + std::strerror(errno));
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs `program script` with stdout and stderr into `log`; returns gnuplot's exit status, or
// throws when it cannot be started.
int run_program(const std::string& program, const std::string& script, const std::string& log,
                const std::string& flag) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv{const_cast<char*>(program.c_str()), const_cast<char*>(script.c_str()),
                          nullptr};
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    if (rc == ENOENT)
      throw std::runtime_error(flag + ": '" + program +
                               "' not found: lmt draws plots with gnuplot (Debian: apt-get "
                               "install gnuplot-nox; or set LMT_GNUPLOT to its path)");
    throw std::runtime_error(flag + ": cannot start '" + program + "': " + std::strerror(rc));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error(flag + ": waitpid: " + std::strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

const char* style_of(PlotSeries::Style style) {
  switch (style) {
    case PlotSeries::Style::kSteps:
      return "steps";
    case PlotSeries::Style::kPoints:
      return "points";
    case PlotSeries::Style::kLinesPoints:
      return "linespoints";
    case PlotSeries::Style::kLines:
      break;
  }
  return "lines";
}

// The script for the panels; series i of panel p reads DIR/pP-sI.dat.
std::string make_script(const std::string& dir, const std::string& png, const std::string& title,
                        const std::vector<PlotPanel>& panels, PlotSize size) {
  std::ostringstream gp;
  gp << "set encoding utf8\n"
     << "set terminal pngcairo size " << size.width << "," << size.height
     << " noenhanced font 'DejaVu Sans,11' linewidth 1.5\n"
     << "set output " << quoted(png) << "\n"
     << "set grid lc rgb '#dddddd'\nset border lc rgb '#444444'\n"
     << "set key opaque box lc rgb '#bbbbbb' samplen 2.5\n"
     << "set format y '%g'\nset format x '%g'\n";
  const int columns = panels.size() > 1 ? 2 : 1;
  const int rows = int(panels.size() + columns - 1) / columns;
  if (panels.size() > 1)
    gp << "set multiplot layout " << rows << "," << columns << " title " << quoted(title)
       << " font ',13'\n";
  for (size_t p = 0; p < panels.size(); ++p) {
    const PlotPanel& panel = panels[p];
    gp << "unset label\nunset logscale\n";
    gp << "set title " << quoted(panels.size() > 1 ? panel.title : title) << "\n";
    gp << "set xlabel " << quoted(panel.x_label) << "\nset ylabel " << quoted(panel.y_label)
       << "\n";
    auto range = [&](const char* axis, const std::optional<double>& lo,
                     const std::optional<double>& hi) {
      gp << "set " << axis << "range [" << (lo ? number(*lo) : "*") << ":"
         << (hi ? number(*hi) : "*") << "]\n";
    };
    range("x", panel.x_min, panel.x_max);
    range("y", panel.y_min, panel.y_max);
    if (panel.log_y) gp << "set logscale y\n";
    gp << "set key " << panel.key << "\n";
    for (const auto& [at, text] : panel.labels)
      gp << "set label " << quoted(text) << " at " << number(at.first) << "," << number(at.second)
         << " offset 0.6,0.6 font ',10'\n";
    std::string plot;
    for (size_t i = 0; i < panel.series.size(); ++i) {
      const PlotSeries& s = panel.series[i];
      const std::string file = dir + "/p" + std::to_string(p) + "-s" + std::to_string(i) + ".dat";
      std::string data;
      for (size_t k = 0; k < s.x.size() && k < s.y.size(); ++k)
        if (std::isfinite(s.x[k]) && std::isfinite(s.y[k]) && (!panel.log_y || s.y[k] > 0))
          data += number(s.x[k]) + " " + number(s.y[k]) + "\n";
      if (data.empty()) data = "NaN NaN\n";  // an empty series keeps its legend entry
      io::write_file_synced(file, data);
      const char* color = kPalette[size_t(s.color) % (sizeof kPalette / sizeof *kPalette)];
      plot += std::string(plot.empty() ? "plot " : ", \\\n     ") + quoted(file) +
              " using 1:2 with " + style_of(s.style) + " lc rgb '" + color + "'" +
              (s.dashed ? " dt 2" : "") +
              (s.style == PlotSeries::Style::kPoints ||
                       s.style == PlotSeries::Style::kLinesPoints
                   ? " pt 7 ps 1.1"
                   : "") +
              (s.style != PlotSeries::Style::kPoints ? " lw 1.5" : "") +
              (s.title.empty() ? " notitle" : " title " + quoted(s.title));
    }
    gp << (plot.empty() ? "plot NaN notitle" : plot) << "\n";
  }
  if (panels.size() > 1) gp << "unset multiplot\n";
  gp << "set output\n";
  return gp.str();
}

}  // namespace

PlotSize parse_plot_size(const std::string& flag, const std::string& text) {
  PlotSize size;
  char x = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &size.width, &x, &size.height, &extra) != 3 ||
      x != 'x' || size.width < 200 || size.height < 200 || size.width > 10000 ||
      size.height > 10000)
    throw UsageError("option '" + flag + "' must be WIDTHxHEIGHT in pixels, each 200..10000 (got '" +
                     text + "')");
  return size;
}

std::optional<std::pair<int, int>> png_size(const std::string& bytes) {
  static const char kSignature[] = "\x89PNG\r\n\x1a\n";
  if (bytes.size() < 24 || bytes.compare(0, 8, kSignature, 8) != 0 ||
      bytes.compare(12, 4, "IHDR") != 0)
    return std::nullopt;
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | uint8_t(bytes[at + i]);
    return int(v);
  };
  return std::make_pair(u32(16), u32(20));
}

void write_plot_png(const std::string& path, const std::string& flag, const std::string& title,
                    const std::vector<PlotPanel>& panels, PlotSize size) {
  TempDir dir;
  const std::string png = dir.path() + "/plot.png", script = dir.path() + "/plot.gp",
                    log = dir.path() + "/gnuplot.log";
  io::write_file_synced(script, make_script(dir.path(), png, title, panels, size));
  const char* custom = std::getenv("LMT_GNUPLOT");
  const std::string program = custom && *custom ? custom : "gnuplot";
  const int status = run_program(program, script, log, flag);
  std::string message;
  try {
    message = io::read_file(log);
  } catch (const io::IoError&) {
  }
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back())))
    message.pop_back();
  if (status != 0)
    throw std::runtime_error(flag + ": gnuplot failed (exit " + std::to_string(status) +
                             "): " + message.substr(message.rfind('\n') + 1));
  std::string bytes;
  try {
    bytes = io::read_file(png);
  } catch (const io::IoError&) {
    throw std::runtime_error(flag + ": gnuplot wrote no image" +
                             (message.empty() ? "" : ": " + message));
  }
  const auto dims = png_size(bytes);
  if (!dims || dims->first != size.width || dims->second != size.height)
    throw std::runtime_error(flag + ": gnuplot's output is not a " + std::to_string(size.width) +
                             "x" + std::to_string(size.height) + " PNG");
  io::write_file_atomic(path, bytes);
}

}  // namespace lmt::launch
