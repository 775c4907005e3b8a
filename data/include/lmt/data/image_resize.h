// lmt::data: antialiased bilinear resampling of a crop box of an 8-bit HWC image (PIL's and
// torch's antialias=True filter), and the crop boxes of resize/centre-crop and random-resized-crop.
#pragma once

#include <cstdint>
#include <string>
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

// The pixels of a height x width image that resize_box reads for `box` at out_height x
// out_width: rows [y0, y1), columns [x0, x1) (the filter's support, clipped to the image).
struct PixelRange {
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
};
PixelRange resize_support(int64_t height, int64_t width, const CropBox& box, int64_t out_height,
                          int64_t out_width);

// The largest libjpeg DCT scale s in {8, 4, 2, 1} at which the box, decoded at 1/s, still has at
// least out_height x out_width pixels (PIL's Image.draft rule: s <= box / out in both axes).
int jpeg_draft_scale(const CropBox& box, int64_t out_height, int64_t out_width);

// The JPEG loader's decode: `box` (in the JPEG's full-size pixel coordinates, as from its
// header) resized to out_height x out_width, written as resize_box_chw writes. The JPEG is
// decoded at 1/s, s = jpeg_draft_scale(box) (libjpeg-turbo's DCT-domain scaling), and only the
// rows and iMCU columns the resize filter reads (plus a 2-pixel margin) are decoded
// (decode_jpeg_region); the box divided by s is then resized as resize_box_chw does. At s = 1
// the result equals decode_jpeg + resize_box_chw up to JPEG edge effects (tests/data/
// test_jpeg_scaled.cpp measures them); at s > 1 it matches PIL's draft (reduce) + crop + resize.
// `header` (optional) saves reading the header again. Throws DataError naming `what`.
void decode_crop_resize_chw(const uint8_t* data, size_t size, const std::string& what,
                            const CropBox& box, int64_t out_height, int64_t out_width, bool flip,
                            float* out_chw, const JpegHeader* header = nullptr);

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
