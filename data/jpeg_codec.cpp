// lmt::data: the TurboJPEG wrapper: one decompressor/compressor handle per thread, colorspace
// handling (CMYK/YCCK to RGB with Adobe inversion), errors naming the input; the header read and
// the DCT-scaled partial decode through libjpeg's API (one reused decompressor per thread, errors
// through setjmp/longjmp).
#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>
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

// CMYK (4 bytes per pixel) to RGB as PIL converts it; `inverted` for Adobe-marked files.
void cmyk_to_rgb(const uint8_t* ink, size_t pixels, bool inverted, uint8_t* rgb) {
  for (size_t p = 0; p < pixels; ++p) {
    const uint8_t* q = &ink[p * 4];
    const int k = inverted ? q[3] : 255 - q[3];
    for (int c = 0; c < 3; ++c) {
      const int v = inverted ? q[c] : 255 - q[c];
      rgb[p * 3 + c] = static_cast<uint8_t>((v * k + 127) / 255);
    }
  }
}

// libjpeg's decompressor, created once per thread and reused (jpeg_abort_decompress returns it
// to its idle state after each image and after an error). Errors and warnings longjmp back to
// the setjmp of the C-style function that drove libjpeg (no C++ object lives in those frames);
// a warning counts as an error, as TJFLAG_STOPONWARNING does for decode_jpeg.
struct LibjpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void libjpeg_error_exit(j_common_ptr c) {
  auto* e = reinterpret_cast<LibjpegErrors*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

void libjpeg_message(j_common_ptr c, int level) {
  if (level < 0) libjpeg_error_exit(c);  // a warning (corrupt data, premature end)
}

struct Libjpeg {
  jpeg_decompress_struct cinfo{};
  LibjpegErrors errors{};
  Libjpeg() {
    cinfo.err = jpeg_std_error(&errors.pub);
    errors.pub.error_exit = libjpeg_error_exit;
    errors.pub.emit_message = libjpeg_message;
    errors.message[0] = 0;
    jpeg_create_decompress(&cinfo);
  }
  ~Libjpeg() { jpeg_destroy_decompress(&cinfo); }
  Libjpeg(const Libjpeg&) = delete;
  Libjpeg& operator=(const Libjpeg&) = delete;
};

Libjpeg& libjpeg() {
  thread_local Libjpeg decoder;
  return decoder;
}

// Plain data exchanged with the setjmp frames below.
struct RegionJob {
  int scale;
  int64_t y0, y1, x0, x1;           // requested, in scaled coordinates (clipped here)
  int64_t height, width;            // out: whole image
  int64_t full_height, full_width;  // out: scaled image
  int64_t y, x, rows, cols;         // out: the rectangle decoded
  int components;                   // out: 3 (RGB) or 4 (CMYK)
  bool cmyk;
};

// Reads the header into job (height, width, cmyk); called inside a setjmp frame below.
void read_header(jpeg_decompress_struct* c, const uint8_t* data, size_t size, RegionJob* job) {
  jpeg_mem_src(c, data, static_cast<unsigned long>(size));
  jpeg_read_header(c, TRUE);
  job->height = c->image_height;
  job->width = c->image_width;
  job->cmyk = c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK;
}

// The header alone. Returns false on a libjpeg error.
bool libjpeg_header(Libjpeg& d, const uint8_t* data, size_t size, RegionJob* job) {
  jpeg_decompress_struct* c = &d.cinfo;
  if (setjmp(d.errors.jump) != 0) {
    jpeg_abort_decompress(c);
    return false;
  }
  read_header(c, data, size, job);
  jpeg_abort_decompress(c);
  return true;
}

// Decodes job's rectangle at 1/scale into *pixels (resized here; rows x cols x components).
// Returns false on a libjpeg error. Only plain data lives in this frame (setjmp/longjmp).
bool libjpeg_region(Libjpeg& d, const uint8_t* data, size_t size, RegionJob* job,
                    std::vector<uint8_t>* pixels) {
  jpeg_decompress_struct* c = &d.cinfo;
  if (setjmp(d.errors.jump) != 0) {
    jpeg_abort_decompress(c);
    return false;
  }
  read_header(c, data, size, job);
  // The defaults of TurboJPEG's tjDecompress2 (and PIL): islow IDCT, fancy upsampling.
  c->out_color_space = job->cmyk ? JCS_CMYK : JCS_RGB;
  c->dct_method = JDCT_ISLOW;
  c->do_fancy_upsampling = TRUE;
  c->scale_num = 1;
  c->scale_denom = static_cast<unsigned int>(job->scale);
  jpeg_start_decompress(c);
  job->components = c->output_components;
  job->full_height = c->output_height;
  job->full_width = c->output_width;
  const int64_t y0 = std::clamp<int64_t>(job->y0, 0, job->full_height);
  const int64_t y1 = std::clamp<int64_t>(job->y1, y0, job->full_height);
  const int64_t x0 = std::clamp<int64_t>(job->x0, 0, job->full_width);
  const int64_t x1 = std::clamp<int64_t>(job->x1, x0, job->full_width);
  JDIMENSION xoffset = static_cast<JDIMENSION>(x0);
  JDIMENSION width = static_cast<JDIMENSION>(std::max<int64_t>(x1 - x0, 1));
  if (x0 > 0 || x1 < job->full_width) jpeg_crop_scanline(c, &xoffset, &width);
  job->x = xoffset;
  job->cols = c->output_width;  // the cropped width
  job->y = y0;
  job->rows = y1 - y0;
  pixels->resize(size_t(job->rows) * size_t(job->cols) * size_t(job->components));
  if (y0 > 0) jpeg_skip_scanlines(c, static_cast<JDIMENSION>(y0));
  const size_t stride = size_t(job->cols) * size_t(job->components);
  while (c->output_scanline < JDIMENSION(y1)) {
    JSAMPROW row = pixels->data() + size_t(c->output_scanline - y0) * stride;
    jpeg_read_scanlines(c, &row, 1);
  }
  jpeg_abort_decompress(c);  // the rows below are not needed
  return true;
}

[[noreturn]] void libjpeg_fail(const std::string& what, const Libjpeg& d,
                               const std::string& stage) {
  throw DataError(what + ": corrupt or unreadable JPEG (" + stage + ": " + d.errors.message + ")");
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
  image.pixels.resize(size_t(height) * size_t(width) * 3);
  cmyk_to_rgb(ink.data(), size_t(height) * size_t(width), has_adobe_marker(data, size),
              image.pixels.data());
  return image;
}

JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& what) {
  if (!looks_like_jpeg(data, size)) throw DataError(what + ": not a JPEG file (no SOI marker)");
  Libjpeg& d = libjpeg();
  RegionJob job{};
  if (!libjpeg_header(d, data, size, &job)) libjpeg_fail(what, d, "header");
  if (job.width < 1 || job.height < 1) throw DataError(what + ": JPEG with an empty image");
  return {job.height, job.width, job.cmyk};
}

JpegRegion decode_jpeg_region(const uint8_t* data, size_t size, const std::string& what, int scale,
                              int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  JpegRegion region;
  decode_jpeg_region(data, size, what, scale, y0, y1, x0, x1, region);
  return region;
}

void decode_jpeg_region(const uint8_t* data, size_t size, const std::string& what, int scale,
                        int64_t y0, int64_t y1, int64_t x0, int64_t x1, JpegRegion& region) {
  if (scale != 1 && scale != 2 && scale != 4 && scale != 8)
    throw DataError(what + ": JPEG scale 1/" + std::to_string(scale) + " is not 1, 2, 4 or 8");
  if (!looks_like_jpeg(data, size)) throw DataError(what + ": not a JPEG file (no SOI marker)");
  Libjpeg& d = libjpeg();
  RegionJob job{};
  job.scale = scale;
  job.y0 = y0;
  job.y1 = y1;
  job.x0 = x0;
  job.x1 = x1;
  bool ok = false;
  try {  // CMYK is decoded into the same buffer and converted in place below
    ok = libjpeg_region(d, data, size, &job, &region.image.pixels);
  } catch (...) {  // bad_alloc from the pixel buffer: leave the decompressor idle
    jpeg_abort_decompress(&d.cinfo);
    throw;
  }
  if (!ok) libjpeg_fail(what, d, "decode");
  if (job.width < 1 || job.height < 1) throw DataError(what + ": JPEG with an empty image");
  region.scale = scale;
  region.y = job.y;
  region.x = job.x;
  region.full_height = job.full_height;
  region.full_width = job.full_width;
  region.image.height = job.rows;
  region.image.width = job.cols;
  region.image.channels = 3;
  if (job.components == 4) {  // 4 -> 3 bytes per pixel, in place (each pixel read first)
    uint8_t* px = region.image.pixels.data();
    const bool inverted = has_adobe_marker(data, size);
    for (size_t p = 0; p < size_t(job.rows) * size_t(job.cols); ++p) {
      uint8_t ink[4] = {px[p * 4], px[p * 4 + 1], px[p * 4 + 2], px[p * 4 + 3]};
      cmyk_to_rgb(ink, 1, inverted, px + p * 3);
    }
    region.image.pixels.resize(size_t(job.rows) * size_t(job.cols) * 3);
  }
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
