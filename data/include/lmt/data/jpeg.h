// lmt::data: JPEG decoding to RGB (any JPEG colorspace: YCbCr, grayscale, CMYK/YCCK) and
// encoding (tests, benchmarks), wrapping libjpeg-turbo's TurboJPEG API; the header and
// DCT-scaled partial decodes of the loader through libjpeg's own API (scale_num/scale_denom,
// jpeg_crop_scanline, jpeg_skip_scanlines).
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

// What a JPEG's header says, read without decoding any pixel.
struct JpegHeader {
  int64_t height = 0, width = 0;
  bool cmyk = false;  // CMYK or YCCK (converted to RGB as decode_jpeg does)
};
// Throws DataError naming `what` when the bytes are not a readable JPEG header.
JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& what);

// A rectangle of a JPEG decoded at 1/scale (libjpeg-turbo's DCT-domain scaling).
struct JpegRegion {
  Image image;              // RGB pixels of the rectangle (as decode_jpeg: gray, CMYK)
  int scale = 1;            // 1, 2, 4 or 8
  int64_t y = 0, x = 0;     // the rectangle's top-left pixel in the scaled image
  int64_t full_height = 0;  // the scaled image: ceil(height / scale)
  int64_t full_width = 0;   //                   ceil(width / scale)
};
// Decodes the JPEG at 1/scale (scale 1, 2, 4 or 8) and returns at least rows [y0, y1) and
// columns [x0, x1) of the scaled image (coordinates clipped to it): only those rows go through
// the IDCT, upsampling and colour conversion (rows above are entropy-decoded and skipped, rows
// below are never read), and only the iMCU columns covering [x0, x1) (the column range is
// widened to libjpeg's iMCU boundaries, so region.x <= x0). At scale 1 the pixels equal
// decode_jpeg's except within 1 pixel of a cut edge (fancy upsampling of subsampled chroma
// sees the cut as the image edge); callers decode a margin. Errors and warnings of libjpeg in
// what is decoded throw DataError naming `what`; damage in rows below y1 is not seen (the
// sharded storage checks each sample's CRC-32, and the converter decodes every file whole).
JpegRegion decode_jpeg_region(const uint8_t* data, size_t size, const std::string& what, int scale,
                              int64_t y0, int64_t y1, int64_t x0, int64_t x1);
// The same into `region`, whose pixel buffer is reused (no allocation once it is large enough).
void decode_jpeg_region(const uint8_t* data, size_t size, const std::string& what, int scale,
                        int64_t y0, int64_t y1, int64_t x0, int64_t x1, JpegRegion& region);

// The pixel layout handed to encode_jpeg.
enum class JpegInput { kRgb, kGray, kCmyk };

// Encodes an 8-bit image (3, 1 or 4 interleaved channels per `input`) at `quality` (1..100),
// 4:2:0 for RGB, as-is for gray, YCCK with an Adobe marker for CMYK (TurboJPEG's behaviour).
std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int64_t height, int64_t width,
                                 JpegInput input, int quality = 90);

// True if the bytes begin with the JPEG SOI marker (FF D8 FF).
bool looks_like_jpeg(const uint8_t* data, size_t size);

}  // namespace lmt::data
