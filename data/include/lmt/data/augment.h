// lmt::data: turning one stored uint8 HWC image into the float CHW model input: centred zero
// padding to the model size, random crop with zero padding, horizontal flip, scale to [0,1].
#pragma once

#include <cstdint>

namespace lmt::data {

// The random choices for one sample. They are a pure function of (seed, epoch, position in the
// epoch permutation), so any world size and any thread timing produce the same inputs.
struct SampleAugment {
  int64_t crop_dy = 0, crop_dx = 0;  // offsets in [0, 2*padding] into the padded image
  bool flip = false;
};

SampleAugment sample_augment(uint64_t seed, int64_t epoch, int64_t position, int64_t crop_padding,
                             bool horizontal_flip);

struct ImageGeometry {
  int64_t height = 0, width = 0, channels = 0;  // stored image
  int64_t out_height = 0, out_width = 0;        // model input (>= stored; centred zero padding)
  int64_t crop_padding = 0;
};

// Writes out[c][y][x] (out_height x out_width per channel), the composition of: place the image
// centred on a zero canvas of the output size (offset floor((out - in) / 2)); pad by
// crop_padding zeros and crop the output size at (crop_dy, crop_dx); mirror left-right if flip;
// divide by 255.
void render_sample(const uint8_t* image_hwc, const ImageGeometry& geometry,
                   const SampleAugment& augment, float* out_chw);

}  // namespace lmt::data
