// PNG encoding (signature, IHDR, one zlib IDAT, IEND, CRC-32) and a minimal raster plotter.
#include "plot.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

#include "cli.h"

namespace lmt::launch {
namespace {

constexpr int kW = 640, kH = 420, kLeft = 60, kRight = 20, kTop = 20, kBottom = 50;

struct Canvas {
  std::vector<uint8_t> rgb = std::vector<uint8_t>(size_t(kW) * kH * 3, 255);
  void set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    if (x < 0 || y < 0 || x >= kW || y >= kH) return;
    uint8_t* p = &rgb[(size_t(y) * kW + x) * 3];
    p[0] = r, p[1] = g, p[2] = b;
  }
  void line(int x0, int y0, int x1, int y1, uint8_t r, uint8_t g, uint8_t b, int thick = 1) {
    const int steps = std::max(std::abs(x1 - x0), std::abs(y1 - y0)) + 1;
    for (int i = 0; i <= steps; ++i) {
      const int x = x0 + (x1 - x0) * i / steps, y = y0 + (y1 - y0) * i / steps;
      for (int dx = 0; dx < thick; ++dx)
        for (int dy = 0; dy < thick; ++dy) set(x + dx, y + dy, r, g, b);
    }
  }
};

// 3x5 glyphs for "0123456789." as 15-bit rows (top row first, 3 bits per row).
int glyph(char c) {
  static const int digits[10] = {0x7B6F, 0x2C97, 0x73E7, 0x73CF, 0x5BC9,
                                 0x79CF, 0x79EF, 0x7249, 0x7BEF, 0x7BCF};
  if (c >= '0' && c <= '9') return digits[c - '0'];
  if (c == '.') return 0x0002;
  return 0;
}

void text(Canvas& canvas, int x, int y, const std::string& s, int scale = 2) {
  for (char c : s) {
    const int bits = glyph(c);
    for (int row = 0; row < 5; ++row)
      for (int col = 0; col < 3; ++col)
        if (bits & (1 << (14 - (row * 3 + col))))
          for (int a = 0; a < scale; ++a)
            for (int b = 0; b < scale; ++b)
              canvas.set(x + col * scale + a, y + row * scale + b, 0, 0, 0);
    x += 4 * scale;
  }
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

void chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  put_u32(out, uint32_t(data.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32(out, uint32_t(crc32(0, &out[start], uInt(out.size() - start))));
}

std::string format_tick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v == std::floor(v) ? "%.0f" : "%.2g", v);
  return buf;
}

}  // namespace

void write_line_plot_png(const std::string& path, const std::vector<double>& x,
                         const std::vector<double>& y, double x_max,
                         const std::vector<double>& marker_x, const std::vector<double>& marker_y) {
  Canvas canvas;
  const int pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  auto px = [&](double v) { return kLeft + int(std::lround(v / x_max * pw)); };
  auto py = [&](double v) { return kTop + ph - int(std::lround(v * ph)); };
  for (int i = 0; i <= 10; ++i) {  // grid and ticks
    const int gy = py(i / 10.0), gx = px(x_max * i / 10.0);
    canvas.line(kLeft, gy, kLeft + pw, gy, 225, 225, 225);
    canvas.line(gx, kTop, gx, kTop + ph, 225, 225, 225);
    if (i % 2 == 0) {
      text(canvas, 8, gy - 5, format_tick(i / 10.0));
      text(canvas, gx - 8, kTop + ph + 10, format_tick(x_max * i / 10.0));
    }
  }
  canvas.line(kLeft, kTop, kLeft, kTop + ph, 0, 0, 0, 2);
  canvas.line(kLeft, kTop + ph, kLeft + pw, kTop + ph, 0, 0, 0, 2);
  for (size_t i = 1; i < x.size(); ++i) {  // step curve
    const double x0 = std::min(x[i - 1], x_max), x1 = std::min(x[i], x_max);
    canvas.line(px(x0), py(y[i - 1]), px(x1), py(y[i - 1]), 31, 119, 180, 2);
    canvas.line(px(x1), py(y[i - 1]), px(x1), py(y[i]), 31, 119, 180, 2);
  }
  for (size_t i = 0; i < marker_x.size() && i < marker_y.size(); ++i)
    for (int d = -4; d <= 4; ++d) {
      canvas.line(px(marker_x[i]) - 4, py(marker_y[i]) + d, px(marker_x[i]) + 4,
                  py(marker_y[i]) + d, 214, 39, 40);
    }

  std::vector<uint8_t> raw;
  raw.reserve(size_t(kH) * (kW * 3 + 1));
  for (int row = 0; row < kH; ++row) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), canvas.rgb.begin() + size_t(row) * kW * 3,
               canvas.rgb.begin() + size_t(row + 1) * kW * 3);
  }
  uLongf packed_size = compressBound(uLong(raw.size()));
  std::vector<uint8_t> packed(packed_size);
  if (compress2(packed.data(), &packed_size, raw.data(), uLong(raw.size()), 6) != Z_OK)
    throw std::runtime_error(path + ": PNG compression failed");
  packed.resize(packed_size);

  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> header;
  put_u32(header, kW);
  put_u32(header, kH);
  header.insert(header.end(), {8, 2, 0, 0, 0});  // 8-bit RGB
  chunk(png, "IHDR", header);
  chunk(png, "IDAT", packed);
  chunk(png, "IEND", {});
  write_file_atomic(path, std::string(png.begin(), png.end()));
}

}  // namespace lmt::launch
