// lmt::data: antialiased bilinear resampling of a crop box of an 8-bit HWC image (PIL's and
// torch's antialias=True filter), and the crop boxes of resize/centre-crop and random-resized-crop.
#pragma once

#include <cstdint>
#include <vector>

#include <lmt/data/jpeg.h>

namespace lmt::data {

// A box in source pixel coordinates (continuous; pixel i covers [i, i+1)).
struct CropBox {
  double y = 0, x = 0, height = 0, width = 0;
};

// Resamples `box` of the image to out_height x out_width with the triangle filter widened by the
// scale when downsampling (antialias), as PIL's BILINEAR and torch's interpolate(mode=bilinear,
// antialias=True, align_corners=False). The filter support is clipped to the whole image.
// Output: uint8 HWC (rounded, clamped).
std::vector<uint8_t> resize_box(const Image& image, const CropBox& box, int64_t out_height,
                                int64_t out_width);
// The same, written as float CHW divided by 255, mirrored left-right if flip.
void resize_box_chw(const Image& image, const CropBox& box, int64_t out_height, int64_t out_width,
                    bool flip, float* out_chw);

// Resize the short side to `size / crop_fraction`, then centre-crop size x size: the centred
// square of side crop_fraction * min(height, width). crop_fraction 1 = short side + centre crop.
CropBox centre_crop_box(int64_t height, int64_t width, double crop_fraction = 1.0);

// torchvision's RandomResizedCrop box: up to 10 tries of area fraction in [scale_lo, scale_hi] and
// log-uniform aspect ratio in [ratio_lo, ratio_hi] fitting the image, else the centre crop at the
// clamped ratio. Random numbers come from SplitMix64 seeded by `key` (see augment.h).
CropBox random_resized_crop_box(uint64_t key, int64_t height, int64_t width, double scale_lo = 0.08,
                                double scale_hi = 1.0, double ratio_lo = 3.0 / 4.0,
                                double ratio_hi = 4.0 / 3.0);

}  // namespace lmt::data
