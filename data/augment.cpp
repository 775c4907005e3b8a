// lmt::data: per-sample augmentation choices (hashed from seed, epoch, position) and the
// rendering of a uint8 HWC image into a float CHW input.
#include <lmt/data/augment.h>

#include <lmt/data/sampler.h>

#include <algorithm>
#include <array>

namespace lmt::data {

SampleAugment sample_augment(uint64_t seed, int64_t epoch, int64_t position, int64_t crop_padding,
                             bool horizontal_flip) {
  SampleAugment a;
  if (crop_padding <= 0 && !horizontal_flip) return a;
  // A stream separate from the permutation's: key differs by the domain constant.
  uint64_t state = mix_key(seed ^ 0x6175676d656e74ULL /* "augment" */, static_cast<uint64_t>(epoch),
                           static_cast<uint64_t>(position));
  if (crop_padding > 0) {
    const auto range = static_cast<uint64_t>(2 * crop_padding + 1);
    a.crop_dy = static_cast<int64_t>(uniform_below(state, range));
    a.crop_dx = static_cast<int64_t>(uniform_below(state, range));
  }
  if (horizontal_flip) a.flip = (splitmix64_next(state) >> 63) != 0;
  return a;
}

void render_sample(const uint8_t* image, const ImageGeometry& g, const SampleAugment& a,
                   float* out) {
  // v / 255.0f for every byte: the same float ToTensor's division gives, looked up (a division
  // per pixel made this the loader's whole cost: 2.1 us per 28x28 image, 0.35 ms per batch of
  // 128, taken from the training threads' cores when ranks fill every core).
  static const std::array<float, 256> kScaled = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[size_t(v)] = float(v) / 255.0f;
    return t;
  }();
  const int64_t off_y = (g.out_height - g.height) / 2 + g.crop_padding - a.crop_dy;
  const int64_t off_x = (g.out_width - g.width) / 2 + g.crop_padding - a.crop_dx;
  const int64_t W = g.out_width, C = g.channels;
  // Output columns x whose source column ix = (flip ? W-1-x : x) - off_x lies in [0, width).
  const int64_t first = a.flip ? W - off_x - g.width : off_x;
  const int64_t x0 = std::clamp<int64_t>(first, 0, W);
  const int64_t x1 = std::clamp<int64_t>(first + g.width, 0, W);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < g.out_height; ++y) {
      float* row = out + (c * g.out_height + y) * W;
      const int64_t iy = y - off_y;  // row in the stored image
      if (iy < 0 || iy >= g.height || x0 >= x1) {
        std::fill(row, row + W, 0.0f);
        continue;
      }
      std::fill(row, row + x0, 0.0f);
      std::fill(row + x1, row + W, 0.0f);
      const uint8_t* src = image + iy * g.width * C + c;
      if (a.flip) {
        for (int64_t x = x0; x < x1; ++x) row[x] = kScaled[src[(W - 1 - x - off_x) * C]];
      } else {
        for (int64_t x = x0; x < x1; ++x) row[x] = kScaled[src[(x - off_x) * C]];
      }
    }
  }
}

}  // namespace lmt::data
