// lmt::data: separable antialiased bilinear resampling (horizontal pass, then vertical) and the
// crop-box rules (centre crop, random-resized-crop) used by the converters and the JPEG loader.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <lmt/data/image_resize.h>
#include <lmt/data/sampler.h>

namespace lmt::data {
namespace {

// For each output coordinate: the first source index and the normalised weights.
struct Taps {
  std::vector<int64_t> first;
  std::vector<int64_t> count;
  std::vector<float> weights;  // out_size * max_taps
  int64_t max_taps = 0;
};

// The source range [lo, hi) of output coordinate i (the filter's support, clipped to the image).
struct TapRange {
  int64_t lo, hi;
  double center;
};
TapRange tap_range(int64_t in_size, double start, double scale, double support, int64_t i) {
  const double center = start + (double(i) + 0.5) * scale;
  int64_t lo = std::max<int64_t>(int64_t(center - support + 0.5), 0);
  int64_t hi = std::min<int64_t>(int64_t(center + support + 0.5), in_size);
  if (hi <= lo) {  // box entirely outside (cannot happen for valid boxes); nearest pixel
    lo = std::clamp<int64_t>(int64_t(center), 0, in_size - 1);
    hi = lo + 1;
  }
  return {lo, hi, center};
}

double filter_support(double scale) { return scale >= 1.0 ? scale : 1.0; }

Taps compute_taps(int64_t in_size, double start, double extent, int64_t out_size) {
  const double scale = extent / double(out_size);
  const double support = filter_support(scale);  // triangle of half-width 1, widened
  const double inv = scale >= 1.0 ? 1.0 / scale : 1.0;
  Taps t;
  t.max_taps = int64_t(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(size_t(out_size * t.max_taps), 0.f);
  std::vector<double> w(size_t(t.max_taps) + 2);
  for (int64_t i = 0; i < out_size; ++i) {
    const TapRange r = tap_range(in_size, start, scale, support, i);
    const int64_t lo = r.lo, hi = r.hi;
    w.assign(size_t(hi - lo), 0.0);
    double total = 0;
    for (int64_t j = lo; j < hi; ++j) {
      const double x = (double(j) - r.center + 0.5) * inv;
      w[j - lo] = std::max(0.0, 1.0 - std::abs(x));
      total += w[j - lo];
    }
    if (total <= 0) {
      w.assign(w.size(), 0.0);
      w[0] = 1.0;
      total = 1.0;
    }
    t.first[i] = lo;
    t.count[i] = hi - lo;
    for (int64_t j = 0; j < hi - lo && j < t.max_taps; ++j)
      t.weights[i * t.max_taps + j] = float(w[j] / total);
  }
  return t;
}

// One RGB pixel in a 4-lane float vector (GCC/Clang vector extension: SSE on x86-64, NEON on
// ARM); each lane computes exactly the scalar multiply-add of its channel.
typedef float Rgbx __attribute__((vector_size(16)));

// Resamples to float HWC rows in [0, 255] (before clamping): horizontal pass over the rows the
// vertical pass needs, then one output row at a time handed to emit(y, row) (which may change it).
// `im` holds the pixels [y0, y0 + im.height) x [x0, x0 + im.width) of a full_h x full_w image; the
// taps are those of the whole image (so a region holding every tap gives resize_box's result),
// shifted into the region. Each output is the same sum in the same order as a plain two-pass loop;
// the scratch rows are reused per thread (a sample's ~1 MB of fresh buffers would be mapped, zeroed
// and faulted in anew every time).
template <typename Emit>
void resample(const Image& im, int64_t y0, int64_t x0, int64_t full_h, int64_t full_w,
              const CropBox& box, int64_t oh, int64_t ow, Emit emit) {
  if (im.height < 1 || im.width < 1 || oh < 1 || ow < 1 || box.height <= 0 || box.width <= 0)
    throw DataError("resize: empty image, box or output size");
  const int64_t c = im.channels;
  Taps tx = compute_taps(full_w, box.x, box.width, ow);
  Taps ty = compute_taps(full_h, box.y, box.height, oh);
  for (int64_t& f : tx.first) f -= x0;
  for (int64_t& f : ty.first) f -= y0;
  if (tx.first.front() < 0 || tx.first.back() + tx.count.back() > im.width ||
      ty.first.front() < 0 || ty.first.back() + ty.count.back() > im.height)
    throw DataError("resize: the decoded region does not hold the filter's support");
  const int64_t row_lo = ty.first.front();
  const int64_t row_hi = ty.first.back() + ty.count.back();
  const int64_t col_lo = tx.first.front(), col_hi = tx.first.back() + tx.count.back();
  thread_local std::vector<float> horizontal, row, source;
  horizontal.resize(size_t((row_hi - row_lo) * ow * c));
  row.resize(size_t(ow * c));
  for (int64_t y = row_lo; y < row_hi; ++y) {
    const uint8_t* src = im.pixels.data() + (y * im.width + col_lo) * c;
    float* dst = horizontal.data() + (y - row_lo) * ow * c;
    if (c == 3) {  // RGB: each pixel loaded as 4 lanes (the 4th unused), one vector op per tap
      const int64_t m = (col_hi - col_lo) * 3;
      source.resize(size_t(m + 1));  // + 1: the unused lane of the last pixel
      for (int64_t i = 0; i < m; ++i) source[size_t(i)] = float(src[i]);
      source[size_t(m)] = 0.f;
      for (int64_t x = 0; x < ow; ++x) {
        const float* w = &tx.weights[x * tx.max_taps];
        const float* s = source.data() + (tx.first[x] - col_lo) * 3;
        Rgbx acc = {0.f, 0.f, 0.f, 0.f};
        for (int64_t k = 0; k < tx.count[x]; ++k) {
          Rgbx p;
          std::memcpy(&p, s + k * 3, sizeof p);
          acc += w[k] * p;
        }
        std::memcpy(dst + x * 3, &acc, 3 * sizeof(float));
      }
      continue;
    }
    source.resize(size_t((col_hi - col_lo) * c));
    for (int64_t i = 0; i < (col_hi - col_lo) * c; ++i) source[size_t(i)] = float(src[i]);
    for (int64_t x = 0; x < ow; ++x) {
      const float* w = &tx.weights[x * tx.max_taps];
      const float* s = source.data() + (tx.first[x] - col_lo) * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        float acc = 0.f;
        for (int64_t k = 0; k < tx.count[x]; ++k) acc += w[k] * s[k * c + ch];
        dst[x * c + ch] = acc;
      }
    }
  }
  const int64_t n = ow * c;
  for (int64_t y = 0; y < oh; ++y) {
    const float* w = &ty.weights[y * ty.max_taps];
    float* dst = row.data();
    const float* s0 = horizontal.data() + (ty.first[y] - row_lo) * n;
    for (int64_t i = 0; i < n; ++i) dst[i] = 0.f + w[0] * s0[i];
    for (int64_t k = 1; k < ty.count[y]; ++k) {
      const float* s = s0 + k * n;
      const float wk = w[k];
      for (int64_t i = 0; i < n; ++i) dst[i] += wk * s[i];
    }
    emit(y, dst);
  }
}

// Writes resampled rows as float CHW / 255 (clamped), mirrored if flip.
// The row is clamped and divided in place first (4-lane vectors: the same values as std::clamp
// and a scalar division, for every non-NaN input), then scattered to the planes.
struct ChwWriter {
  int64_t c, oh, ow;
  bool flip;
  float* out;
  void operator()(int64_t y, float* row) const {
    const int64_t n = ow * c;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {  // 4 lanes at a time, each as the scalar tail below
      Rgbx v;
      std::memcpy(&v, row + i, sizeof v);
      v = v < 0.f ? Rgbx{} : v;
      v = v > 255.f ? Rgbx{} + 255.f : v;
      v = v / 255.0f;
      std::memcpy(row + i, &v, sizeof v);
    }
    for (; i < n; ++i) row[i] = std::clamp(row[i], 0.f, 255.f) / 255.0f;
    for (int64_t ch = 0; ch < c; ++ch) {
      float* o = out + ch * oh * ow + y * ow;
      const float* r = row + ch;
      if (flip) {
        for (int64_t x = 0; x < ow; ++x) o[x] = r[(ow - 1 - x) * c];
      } else {
        for (int64_t x = 0; x < ow; ++x) o[x] = r[x * c];
      }
    }
  }
};
}  // namespace

std::vector<uint8_t> resize_box(const Image& image, const CropBox& box, int64_t oh, int64_t ow) {
  std::vector<uint8_t> out(size_t(oh * ow * image.channels));
  const int64_t n = ow * image.channels;
  resample(image, 0, 0, image.height, image.width, box, oh, ow, [&](int64_t y, const float* row) {
    for (int64_t i = 0; i < n; ++i)
      out[size_t(y * n + i)] = static_cast<uint8_t>(std::clamp(std::lround(row[i]), 0L, 255L));
  });
  return out;
}

void resize_box_chw(const Image& image, const CropBox& box, int64_t oh, int64_t ow, bool flip,
                    float* out) {
  resample(image, 0, 0, image.height, image.width, box, oh, ow,
           ChwWriter{image.channels, oh, ow, flip, out});
}

namespace {
double uniform01(uint64_t& state) { return double(splitmix64_next(state) >> 11) * 0x1.0p-53; }
}  // namespace

PixelRange resize_support(int64_t height, int64_t width, const CropBox& box, int64_t oh,
                          int64_t ow) {
  if (height < 1 || width < 1 || oh < 1 || ow < 1 || box.height <= 0 || box.width <= 0)
    throw DataError("resize: empty image, box or output size");
  const double sy = box.height / double(oh), sx = box.width / double(ow);
  const TapRange top = tap_range(height, box.y, sy, filter_support(sy), 0);
  const TapRange bottom = tap_range(height, box.y, sy, filter_support(sy), oh - 1);
  const TapRange left = tap_range(width, box.x, sx, filter_support(sx), 0);
  const TapRange right = tap_range(width, box.x, sx, filter_support(sx), ow - 1);
  return {top.lo, bottom.hi, left.lo, right.hi};
}

int jpeg_draft_scale(const CropBox& box, int64_t oh, int64_t ow) {
  for (int scale : {8, 4, 2})
    if (box.height >= double(scale * oh) && box.width >= double(scale * ow)) return scale;
  return 1;
}

void decode_crop_resize_chw(const uint8_t* data, size_t size, const std::string& what,
                            const CropBox& box, int64_t oh, int64_t ow, bool flip, float* out,
                            const JpegHeader* header) {
  const JpegHeader h = header != nullptr ? *header : read_jpeg_header(data, size, what);
  const int scale = jpeg_draft_scale(box, oh, ow);
  // The scaled image is ceil(h / scale) x ceil(w / scale); its pixel i covers the original's
  // [scale i, scale (i + 1)), so the box scales by 1/scale.
  const auto up = [scale](int64_t n) { return (n + scale - 1) / scale; };
  const int64_t sh = up(h.height), sw = up(h.width);
  const CropBox sbox{box.y / scale, box.x / scale, box.height / scale, box.width / scale};
  const PixelRange need = resize_support(sh, sw, sbox, oh, ow);
  // 2 more pixels each side (where the image goes on): fancy upsampling of subsampled chroma
  // treats a cut edge as the image edge, which changes the outermost decoded pixel.
  const int64_t margin = 2;
  thread_local JpegRegion region;  // its pixel buffer is reused sample after sample
  decode_jpeg_region(data, size, what, scale, need.y0 - margin, need.y1 + margin, need.x0 - margin,
                     need.x1 + margin, region);
  if (region.full_height != sh || region.full_width != sw)
    throw DataError(what + ": the JPEG's scaled size " + std::to_string(region.full_height) + "x" +
                    std::to_string(region.full_width) + " differs from the header's");
  resample(region.image, region.y, region.x, sh, sw, sbox, oh, ow, ChwWriter{3, oh, ow, flip, out});
}

CropBox centre_crop_box(int64_t height, int64_t width, double crop_fraction) {
  const double side = crop_fraction * double(std::min(height, width));
  return {(double(height) - side) / 2, (double(width) - side) / 2, side, side};
}

CropBox random_resized_crop_box(uint64_t key, int64_t height, int64_t width, double scale_lo,
                                double scale_hi, double ratio_lo, double ratio_hi) {
  uint64_t state = key;
  const double area = double(height) * double(width);
  const double log_lo = std::log(ratio_lo), log_hi = std::log(ratio_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (scale_lo + (scale_hi - scale_lo) * uniform01(state));
    const double ratio = std::exp(log_lo + (log_hi - log_lo) * uniform01(state));
    const auto w = int64_t(std::lround(std::sqrt(target * ratio)));
    const auto h = int64_t(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const auto y = int64_t(uniform_below(state, uint64_t(height - h + 1)));
      const auto x = int64_t(uniform_below(state, uint64_t(width - w + 1)));
      return {double(y), double(x), double(h), double(w)};
    }
  }
  // Fallback (torchvision): centre crop of the whole image at the clamped aspect ratio.
  const double in_ratio = double(width) / double(height);
  double w = double(width), h = double(height);
  if (in_ratio < ratio_lo) {
    h = std::round(w / ratio_lo);
  } else if (in_ratio > ratio_hi) {
    w = std::round(h * ratio_hi);
  }
  return {std::floor((double(height) - h) / 2), std::floor((double(width) - w) / 2), h, w};
}

}  // namespace lmt::data
