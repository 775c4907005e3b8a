// lmt::data: JPEG decoding to RGB (any JPEG colorspace: YCbCr, grayscale, CMYK/YCCK) and
// encoding (tests, benchmarks), wrapping libjpeg-turbo's TurboJPEG API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <lmt/data/error.h>

namespace lmt::data {

// A decoded image, 8-bit interleaved HWC.
struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// Decodes a JPEG to 3-channel RGB. Grayscale is replicated to R=G=B. CMYK/YCCK JPEGs are
// converted as PIL does: with an Adobe APP14 marker the stored values are inverted (Photoshop's
// convention), so R = C*K/255; without it R = (255-C)(255-K)/255 (same for G/M, B/Y). Any
// libjpeg error or warning (corrupt or truncated data) throws DataError naming `what` (a path).
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& what);

// The pixel layout handed to encode_jpeg.
enum class JpegInput { kRgb, kGray, kCmyk };

// Encodes an 8-bit image (3, 1 or 4 interleaved channels per `input`) at `quality` (1..100),
// 4:2:0 for RGB, as-is for gray, YCCK with an Adobe marker for CMYK (TurboJPEG's behaviour).
std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int64_t height, int64_t width,
                                 JpegInput input, int quality = 90);

// True if the bytes begin with the JPEG SOI marker (FF D8 FF).
bool looks_like_jpeg(const uint8_t* data, size_t size);

}  // namespace lmt::data
