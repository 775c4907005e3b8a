// A dependency-free line plot written as PNG (zlib-compressed RGB): certified accuracy against
// radius for `lmt certify --plot`. Axes, ticks and tick labels in a built-in 3x5 digit font.
#pragma once

#include <string>
#include <vector>

namespace lmt::launch {

// Draws y(x) as a step curve (x ascending, y in [0,1]) on [0, x_max] x [0, 1] and writes `path`
// atomically. Markers are drawn at (marker_x[i], marker_y[i]).
void write_line_plot_png(const std::string& path, const std::vector<double>& x,
                         const std::vector<double>& y, double x_max,
                         const std::vector<double>& marker_x, const std::vector<double>& marker_y);

}  // namespace lmt::launch
