// Tests of the loader's DCT-scaled partial JPEG decode (decode_crop_resize_chw): PIL's draft
// rule, unscaled partial decodes against the full decode + resize, scaled decodes against PIL's
// draft (reduce) + crop + resize computed by Debian's /usr/bin/python3, grayscale and CMYK,
// corrupt data, and the loader's order and pixels with the scaled decode on and off.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include <lmt/data/convert.h>
#include <lmt/data/dataset_file.h>
#include <lmt/data/image_resize.h>
#include <lmt/data/jpeg.h>
#include <lmt/data/loader.h>

#include "jpeg_tree.h"
#include "test_util.h"

namespace lmt::data {
namespace {
using testing::ScratchDir;
namespace fs = std::filesystem;

// A photograph-like test image: smooth colour gradients, a soft disc, stripes of a few pixels'
// period and a little deterministic grain (plain arithmetic, no code under test).
std::vector<uint8_t> photo_like(int64_t h, int64_t w, int seed) {
  std::vector<uint8_t> px(size_t(h * w * 3));
  uint32_t x = 2463534242u + uint32_t(seed);
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      const double u = double(j) / double(w), v = double(i) / double(h);
      const double disc = std::hypot(u - 0.6, v - 0.4) < 0.25 ? 60.0 : 0.0;
      const double stripes = 25.0 * std::sin(double(i + 2 * j) * 0.9 + seed);
      const double grain = double(x % 9) - 4.0;
      const double rgb[3] = {40 + 150 * u + disc + grain, 30 + 120 * v + stripes + grain,
                             200 - 140 * u * v - disc + grain};
      for (int c = 0; c < 3; ++c)
        px[size_t((i * w + j) * 3 + c)] = uint8_t(std::clamp(std::lround(rgb[c]), 0L, 255L));
    }
  return px;
}

std::vector<uint8_t> photo_jpeg(int64_t h, int64_t w, int seed) {
  const auto px = photo_like(h, w, seed);
  return encode_jpeg(px.data(), h, w, JpegInput::kRgb, 90);  // 4:2:0, as ImageNet's files
}

// The reference: the whole image decoded at full size, then the box resized.
std::vector<float> reference(const std::vector<uint8_t>& jpeg, const CropBox& box, int64_t size,
                             bool flip) {
  const Image im = decode_jpeg(jpeg.data(), jpeg.size(), "ref");
  std::vector<float> out(size_t(3 * size * size));
  resize_box_chw(im, box, size, size, flip, out.data());
  return out;
}

std::vector<float> scaled(const std::vector<uint8_t>& jpeg, const CropBox& box, int64_t size,
                          bool flip) {
  std::vector<float> out(size_t(3 * size * size));
  decode_crop_resize_chw(jpeg.data(), jpeg.size(), "mem.jpg", box, size, size, flip, out.data());
  return out;
}

// Largest difference in 8-bit levels.
double max_levels(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]) * 255.0);
  return m;
}

double psnr(const std::vector<float>& a, const std::vector<float>& b) {
  double se = 0;
  for (size_t i = 0; i < a.size(); ++i) se += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  const double mse = se / double(a.size());
  return mse == 0 ? 99.0 : 10 * std::log10(1.0 / mse);
}

TEST(ScaledJpeg, DraftScaleIsPilsRule) {
  EXPECT_EQ(jpeg_draft_scale({0, 0, 375, 500}, 224, 224), 1);
  EXPECT_EQ(jpeg_draft_scale({0, 0, 448, 448}, 224, 224), 2);
  EXPECT_EQ(jpeg_draft_scale({0, 0, 447.9, 900}, 224, 224), 1);
  EXPECT_EQ(jpeg_draft_scale({0, 0, 900, 1000}, 224, 224), 4);
  EXPECT_EQ(jpeg_draft_scale({0, 0, 1792, 3000}, 224, 224), 8);
  EXPECT_EQ(jpeg_draft_scale({0, 0, 5000, 5000}, 224, 224), 8);  // 1/8 is libjpeg's smallest
  EXPECT_EQ(jpeg_draft_scale({0, 0, 130, 64}, 32, 32), 2);
}

TEST(ScaledJpeg, SupportRangeIsTheFiltersTaps) {
  // Downscale by 2: the support is 2 pixels each side of the first and last output pixel's
  // centre, clipped to the image.
  const PixelRange r = resize_support(375, 500, {100, 0, 200, 448}, 100, 224);
  EXPECT_EQ(r.y0, 99);   // centre 101 - 2, rounded as the taps are: int(99 + 0.5)
  EXPECT_EQ(r.y1, 301);  // centre 299 + 2
  EXPECT_EQ(r.x0, 0);
  EXPECT_EQ(r.x1, 449);
}

// Unscaled (s = 1) partial decodes against the full decode on ImageNet-sized 4:2:0 images: the
// training boxes of 375x500 images never scale (375 < 2 x 224). Measured: identical pixels
// (0 levels) for every box, because the region is decoded with a 2-pixel margin beyond the
// filter's taps; without the margin the same boxes differ by up to 3 levels (libjpeg-turbo's
// fancy upsampling of the 4:2:0 chroma treats a cut as the image edge, changing the outermost
// decoded pixel). The decoder is deterministic integer arithmetic (islow IDCT) and the resize
// runs the same float operations on the same pixels, so the result is exact on any CPU; 1e-4
// levels is only a float-comparison guard.
TEST(ScaledJpeg, UnscaledPartialDecodeEqualsFullDecode) {
  for (const auto& [h, w] : {std::pair<int64_t, int64_t>{375, 500}, {500, 375}, {333, 451}}) {
    const auto jpeg = photo_jpeg(h, w, int(h));
    double worst = 0;
    for (uint64_t key = 0; key < 60; ++key) {
      const CropBox box = random_resized_crop_box(key * 7919 + 1, h, w);
      ASSERT_EQ(jpeg_draft_scale(box, 224, 224), 1);
      worst = std::max(worst, max_levels(scaled(jpeg, box, 224, key % 2 == 1),
                                         reference(jpeg, box, 224, key % 2 == 1)));
    }
    const CropBox centre = centre_crop_box(h, w, 0.875);
    worst = std::max(
        worst, max_levels(scaled(jpeg, centre, 224, false), reference(jpeg, centre, 224, false)));
    EXPECT_LE(worst, 1e-4) << h << "x" << w;
  }
}

// Grayscale and CMYK (Adobe) files take the same path (libjpeg's gray -> RGB, CMYK converted as
// decode_jpeg does) and give the full decode's pixels (same bound as above).
TEST(ScaledJpeg, GrayAndCmykMatchTheFullDecode) {
  const auto gray = testing::gray_jpeg(300, 420);
  const auto cmyk = testing::cmyk_jpeg(300, 420);
  for (const auto* jpeg : {&gray, &cmyk})
    for (uint64_t key = 0; key < 10; ++key) {
      const CropBox box = random_resized_crop_box(key, 300, 420);
      EXPECT_LE(max_levels(scaled(*jpeg, box, 64, false), reference(*jpeg, box, 64, false)), 1e-4);
    }
  const CropBox big{0, 0, 300, 420};  // scale 4 at 64 px
  ASSERT_EQ(jpeg_draft_scale(big, 64, 64), 4);
  const auto out = scaled(cmyk, big, 64, false);
  for (size_t p = 0; p < out.size(); ++p)  // a solid colour stays itself (JPEG: +-3 levels)
    EXPECT_NEAR(out[p] * 255, testing::kCmykColour[p / (64 * 64)], 3.0);
}

// The scaled decode against PIL: Image.draft('RGB', size) (libjpeg's scale 1/s, the same
// library), then resize(BILINEAR, box=box/s) — what torchvision would compute if it drafted.
// PSNR >= 30 dB is the bar; measured here 45-60 dB (the remaining differences: PIL's
// 8-bit fixed-point resampling vs our float filter, +-1 level).
TEST(ScaledJpeg, ScaledDecodeMatchesPilDraftReference) {
  const char* python = "/usr/bin/python3";
  if (std::system((std::string(python) + " -c 'import PIL' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "no /usr/bin/python3 with PIL (python3-pil)";
  ScratchDir dir;
  const int64_t h = 1200, w = 1600, size = 224;
  const auto jpeg = photo_jpeg(h, w, 3);
  testing::write_bytes(dir.path() / "photo.jpg", jpeg);
  // Boxes at scales 1, 2, 4 and 8 (the last at 112 px output), fractional centre crop included.
  struct Case {
    CropBox box;
    int64_t out;
    int scale;
  };
  const std::vector<Case> cases = {{{37, 91, 400, 300}, size, 1},
                                   {{0, 0, 1200, 1600}, size, 4},
                                   {{100, 200, 900, 1000}, size, 4},
                                   {{161, 333, 600, 470}, size, 2},
                                   {centre_crop_box(h, w, 0.875), size, 4},
                                   {{0, 0, 1200, 1600}, 112, 8},
                                   {{5, 640, 460, 955}, size, 2}};
  std::ofstream script(dir.path() / "ref.py");
  script << "import sys\nfrom PIL import Image\n"
            "for line in open(sys.argv[1]):\n"
            "    y, x, h, w, out, s, name = line.split()\n"
            "    y, x, h, w, out, s = float(y), float(x), float(h), float(w), int(out), int(s)\n"
            "    im = Image.open(sys.argv[2])\n"
            "    im.draft('RGB', (im.size[0] // s, im.size[1] // s))\n"
            "    assert im.size == ((1600 + s - 1) // s, (1200 + s - 1) // s), im.size\n"
            "    im = im.convert('RGB').resize((out, out), Image.BILINEAR,\n"
            "                                  box=(x / s, y / s, (x + w) / s, (y + h) / s))\n"
            "    open(name, 'wb').write(im.tobytes())\n";
  script.close();
  std::ofstream list(dir.path() / "cases.txt");
  for (size_t k = 0; k < cases.size(); ++k) {
    const CropBox& b = cases[k].box;
    list << b.y << " " << b.x << " " << b.height << " " << b.width << " " << cases[k].out << " "
         << cases[k].scale << " " << (dir.path() / ("ref" + std::to_string(k))).string() << "\n";
  }
  list.close();
  const std::string command = std::string(python) + " " + (dir.path() / "ref.py").string() + " " +
                              (dir.path() / "cases.txt").string() + " " +
                              (dir.path() / "photo.jpg").string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    ASSERT_EQ(jpeg_draft_scale(c.box, c.out, c.out), c.scale) << k;
    std::ifstream in(dir.path() / ("ref" + std::to_string(k)), std::ios::binary);
    const std::vector<uint8_t> hwc((std::istreambuf_iterator<char>(in)), {});
    ASSERT_EQ(hwc.size(), size_t(3 * c.out * c.out));
    std::vector<float> pil(hwc.size());
    for (int64_t p = 0; p < c.out * c.out; ++p)
      for (int ch = 0; ch < 3; ++ch) pil[ch * c.out * c.out + p] = hwc[p * 3 + ch] / 255.0f;
    std::vector<float> ours(hwc.size());
    decode_crop_resize_chw(jpeg.data(), jpeg.size(), "photo.jpg", c.box, c.out, c.out, false,
                           ours.data());
    const double db = psnr(ours, pil);
    EXPECT_GE(db, 30.0) << "case " << k << " scale " << c.scale;
    // Versus the full-size decode, a scaled decode is a different (also valid) low-pass.
    const double full_db = psnr(ours, reference(jpeg, c.box, c.out, false));
    std::printf("case %zu scale 1/%d: PSNR vs PIL draft %.1f dB, vs full decode %.1f dB\n", k,
                c.scale, db, full_db);
  }
}

// Corrupt data in the decoded rows throws a DataError naming the sample; so does a bad header.
TEST(ScaledJpeg, CorruptDataThrowsNamingTheSample) {
  auto jpeg = photo_jpeg(375, 500, 1);
  jpeg.resize(jpeg.size() / 2);  // the lower half of the image is missing
  std::vector<float> out(3 * 64 * 64);
  try {
    decode_crop_resize_chw(jpeg.data(), jpeg.size(), "shard.h5 sample 17", {300, 0, 75, 100}, 64,
                           64, false, out.data());
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("shard.h5 sample 17"), std::string::npos) << e.what();
  }
  std::vector<uint8_t> header_only(jpeg.begin(), jpeg.begin() + 40);
  EXPECT_THROW(read_jpeg_header(header_only.data(), header_only.size(), "x"), DataError);
  std::vector<uint8_t> text = {'n', 'o', 'p', 'e'};
  EXPECT_THROW(read_jpeg_header(text.data(), text.size(), "x"), DataError);
  // The thread's decompressor is usable again after an error.
  const auto good = photo_jpeg(100, 120, 2);
  EXPECT_LE(max_levels(scaled(good, {10, 10, 50, 60}, 32, false),
                       reference(good, {10, 10, 50, 60}, 32, false)),
            1e-4);
}

// A JPEG-storage dataset of photograph-like 375x500 / 500x375 / 1200x900 images.
std::string write_photo_dataset(const ScratchDir& dir) {
  for (int i = 0; i < 24; ++i) {
    const int64_t h = i % 4 == 3 ? 1200 : (i % 3 == 0 ? 500 : 375);
    const int64_t w = i % 4 == 3 ? 900 : (i % 3 == 0 ? 375 : 500);
    testing::write_bytes(dir.path() / "src" / "train" / testing::kWnids[size_t(i % 3)] /
                             ("p" + std::to_string(i) + ".JPEG"),
                         photo_jpeg(h, w, i));
    if (i < 6)
      testing::write_bytes(dir.path() / "src" / "val" / testing::kWnids[size_t(i % 3)] /
                               ("v" + std::to_string(i) + ".JPEG"),
                           photo_jpeg(h, w, 100 + i));
  }
  convert_imagenet((dir.path() / "src").string(), (dir.path() / "out").string(),
                   ImageConvertOptions().jpeg(true).size(224).threads(1),
                   [](const std::string&) {});
  return (dir.path() / "out").string();
}

// Same (seed, epoch) -> the same indices as the full-decode path, and the same pixels for the
// unscaled samples (at 224 px every 375x500 sample; bound as in
// UnscaledPartialDecodeEqualsFullDecode); the 1200x900 samples whose box allows a scale differ
// from the full decode as a scaled decode does (measured 41-57 dB against the full decode in
// ScaledDecodeMatchesPilDraftReference: a different low-pass of the same image; 30 dB, the
// issue's bar, leaves room; the PIL test above holds the scaled pixels to PIL's draft).
TEST(ScaledJpeg, LoaderKeepsOrderAndPixelsOfTheFullDecode) {
  ScratchDir dir;
  const std::string out = write_photo_dataset(dir);
  for (const bool training : {true, false}) {
    const std::string file = out + (training ? "/train.h5" : "/test.h5");
    auto options = LoaderOptions()
                       .batch_size(training ? 8 : 4)
                       .seed(5)
                       .shuffle(training)
                       .drop_last(training)
                       .horizontal_flip(true)
                       .image_size(224)
                       .threads(2)
                       .pin_memory(true);  // a no-op on a CPU LibTorch
    Loader fast(file, options);
    Loader full(file, LoaderOptions(options).jpeg_scaled_decode(false));
    for (int64_t epoch : {0, 3}) {
      fast.start_epoch(epoch);
      full.start_epoch(epoch);
      int64_t samples = 0, unscaled = 0;
      while (auto a = fast.next()) {
        auto b = full.next();
        ASSERT_TRUE(b.has_value());
        ASSERT_TRUE(at::equal(a->indices, b->indices));
        ASSERT_TRUE(at::equal(a->labels, b->labels));
        for (int64_t i = 0; i < a->indices.size(0); ++i, ++samples) {
          const at::Tensor x = a->images[i], y = b->images[i];
          const double diff = (x - y).abs().max().item<double>() * 255;
          const double mse = (x - y).pow(2).mean().item<double>();
          if (diff <= 1e-4) ++unscaled;
          EXPECT_GT(mse == 0 ? 99 : 10 * std::log10(1 / mse), 30.0)
              << "epoch " << epoch << " sample " << a->indices[i].item<int64_t>();
        }
      }
      EXPECT_FALSE(full.next().has_value());
      EXPECT_GT(samples, 0);
      EXPECT_GE(unscaled, samples / 2);  // the 375x500 ones at least
    }
  }
}

// Runs of consecutive indices come back as the per-sample reads do.
TEST(ScaledJpeg, RunReadsEqualSingleReads) {
  ScratchDir dir;
  const std::string out = write_photo_dataset(dir);
  DatasetReader reader(out + "/train.h5");
  const auto run = reader.read_encoded_run(3, 15);
  ASSERT_EQ(run.size(), 15u);
  for (int64_t k = 0; k < 15; ++k) EXPECT_EQ(run[size_t(k)], reader.read_encoded(3 + k)) << k;
  EXPECT_TRUE(reader.read_encoded_run(0, 0).empty());
  EXPECT_THROW(reader.read_encoded_run(20, 5), DataError);
}

}  // namespace
}  // namespace lmt::data
