// lmt::data: per-sample augmentation choices (hashed from seed, epoch, position) and the
// rendering of a uint8 HWC image into a float CHW input.
#include <lmt/data/augment.h>

#include <lmt/data/sampler.h>

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
  const int64_t off_y = (g.out_height - g.height) / 2 + g.crop_padding - a.crop_dy;
  const int64_t off_x = (g.out_width - g.width) / 2 + g.crop_padding - a.crop_dx;
  const int64_t plane = g.out_height * g.out_width;
  for (int64_t y = 0; y < g.out_height; ++y) {
    const int64_t iy = y - off_y;  // row in the stored image
    for (int64_t x = 0; x < g.out_width; ++x) {
      const int64_t ix = (a.flip ? g.out_width - 1 - x : x) - off_x;
      const bool inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
      const uint8_t* pixel = inside ? image + (iy * g.width + ix) * g.channels : nullptr;
      for (int64_t c = 0; c < g.channels; ++c)
        out[c * plane + y * g.out_width + x] = inside ? pixel[c] / 255.0f : 0.0f;  // as ToTensor
    }
  }
}

}  // namespace lmt::data
