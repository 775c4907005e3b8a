// lmt::data: the TurboJPEG wrapper: one decompressor/compressor handle per thread, colorspace
// handling (CMYK/YCCK to RGB with Adobe inversion), errors naming the input.
#include <turbojpeg.h>

#include <lmt/data/jpeg.h>

namespace lmt::data {
namespace {

// One TurboJPEG handle per thread (handles are not thread-safe), destroyed at thread exit.
struct Handle {
  tjhandle h = nullptr;
  explicit Handle(bool compress) : h(compress ? tjInitCompress() : tjInitDecompress()) {}
  ~Handle() {
    if (h != nullptr) tjDestroy(h);
  }
};

Handle& decompressor_handle() {
  thread_local Handle handle(false);
  return handle;
}

tjhandle decompressor() {
  Handle& handle = decompressor_handle();
  if (handle.h == nullptr) handle.h = tjInitDecompress();
  if (handle.h == nullptr) throw DataError("libturbojpeg: cannot create a decompressor");
  return handle.h;
}

tjhandle compressor() {
  thread_local Handle handle(true);
  if (handle.h == nullptr) throw DataError("libturbojpeg: cannot create a compressor");
  return handle.h;
}

// Scans the markers before the first SOS for an APP14 segment starting with "Adobe".
bool has_adobe_marker(const uint8_t* d, size_t n) {
  size_t i = 2;
  while (i + 4 <= n) {
    if (d[i] != 0xFF) return false;
    const uint8_t marker = d[i + 1];
    if (marker == 0xFF) {
      ++i;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return false;  // start of scan / end of image
    const size_t length = (size_t{d[i + 2]} << 8) | d[i + 3];
    if (marker == 0xEE && length >= 7 && i + 9 <= n && d[i + 4] == 'A' && d[i + 5] == 'd' &&
        d[i + 6] == 'o' && d[i + 7] == 'b' && d[i + 8] == 'e')
      return true;
    i += 2 + length;
  }
  return false;
}

// A handle that saw an error may keep error state (TurboJPEG 2.1): it is replaced.
[[noreturn]] void jpeg_fail(const std::string& what, tjhandle h, const std::string& stage) {
  const std::string message =
      what + ": corrupt or unreadable JPEG (" + stage + ": " + tjGetErrorStr2(h) + ")";
  Handle& handle = decompressor_handle();
  tjDestroy(handle.h);
  handle.h = nullptr;
  throw DataError(message);
}
}  // namespace

bool looks_like_jpeg(const uint8_t* data, size_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& what) {
  if (!looks_like_jpeg(data, size)) throw DataError(what + ": not a JPEG file (no SOI marker)");
  tjhandle h = decompressor();
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(h, data, static_cast<unsigned long>(size), &width, &height, &subsamp,
                          &colorspace) != 0)
    jpeg_fail(what, h, "header");
  if (width < 1 || height < 1) throw DataError(what + ": JPEG with an empty image");
  Image image;
  image.height = height;
  image.width = width;
  image.channels = 3;
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  if (!cmyk) {
    image.pixels.resize(size_t(height) * size_t(width) * 3);
    if (tjDecompress2(h, data, static_cast<unsigned long>(size), image.pixels.data(), width, 0,
                      height, TJPF_RGB, TJFLAG_STOPONWARNING) != 0)
      jpeg_fail(what, h, "decode");
    return image;
  }
  std::vector<uint8_t> ink(size_t(height) * size_t(width) * 4);
  if (tjDecompress2(h, data, static_cast<unsigned long>(size), ink.data(), width, 0, height,
                    TJPF_CMYK, TJFLAG_STOPONWARNING) != 0)
    jpeg_fail(what, h, "decode");
  const bool inverted = has_adobe_marker(data, size);
  image.pixels.resize(size_t(height) * size_t(width) * 3);
  for (size_t p = 0; p < size_t(height) * size_t(width); ++p) {
    const uint8_t* q = &ink[p * 4];
    const int k = inverted ? q[3] : 255 - q[3];
    for (int c = 0; c < 3; ++c) {
      const int v = inverted ? q[c] : 255 - q[c];
      image.pixels[p * 3 + c] = static_cast<uint8_t>((v * k + 127) / 255);
    }
  }
  return image;
}

std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int64_t height, int64_t width,
                                 JpegInput input, int quality) {
  tjhandle h = compressor();
  const int format = input == JpegInput::kRgb    ? TJPF_RGB
                     : input == JpegInput::kGray ? TJPF_GRAY
                                                 : TJPF_CMYK;
  const int subsamp = input == JpegInput::kGray ? TJSAMP_GRAY : TJSAMP_420;
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  if (tjCompress2(h, pixels, int(width), 0, int(height), format, &out, &out_size, subsamp, quality,
                  0) != 0) {
    if (out != nullptr) tjFree(out);
    throw DataError(std::string("libturbojpeg: cannot encode: ") + tjGetErrorStr2(h));
  }
  std::vector<uint8_t> bytes(out, out + out_size);
  tjFree(out);
  return bytes;
}

}  // namespace lmt::data
