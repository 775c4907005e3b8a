// Tests of the JPEG codec wrapper (RGB, grayscale, Adobe CMYK, corrupt input), the antialiased
// resize against torch's interpolate(antialias=True), and the random-resized-crop box rules.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include <lmt/data/image_resize.h>
#include <lmt/data/jpeg.h>

#include "jpeg_tree.h"

namespace lmt::data {
namespace {
using testing::Rgb;

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double total = 0;
  for (size_t i = 0; i < a.size(); ++i) total += std::abs(int(a[i]) - int(b[i]));
  return total / double(a.size());
}

TEST(Jpeg, RgbRoundTripKeepsSizeAndPixels) {
  const auto px = testing::solid_image({{90, 160, 210}}, 37, 51, 3);
  const auto bytes = encode_jpeg(px.data(), 37, 51, JpegInput::kRgb, 98);
  const Image im = decode_jpeg(bytes.data(), bytes.size(), "mem.jpg");
  ASSERT_EQ(im.height, 37);
  ASSERT_EQ(im.width, 51);
  ASSERT_EQ(im.channels, 3);
  EXPECT_LT(mean_abs_diff(im.pixels, px), 3.0);
}

TEST(Jpeg, GrayscaleBecomesEqualRgbChannels) {
  const auto bytes = testing::gray_jpeg(20, 30);
  const Image im = decode_jpeg(bytes.data(), bytes.size(), "gray.jpg");
  ASSERT_EQ(im.channels, 3);
  for (size_t p = 0; p < im.pixels.size(); p += 3) {
    EXPECT_EQ(im.pixels[p], im.pixels[p + 1]);
    EXPECT_EQ(im.pixels[p], im.pixels[p + 2]);
    EXPECT_NEAR(im.pixels[p], testing::kGrayColour[0], 2);
  }
}

// TurboJPEG writes CMYK as YCCK with an Adobe marker; PIL (and so torchvision) reads such files
// as inverted CMYK. Stored (C,M,Y,K) = (R,G,B,255) must come back as (R,G,B); the non-inverted
// reading would give black.
TEST(Jpeg, AdobeCmykConvertsToRgbAsPil) {
  const auto bytes = testing::cmyk_jpeg(24, 16);
  const Image im = decode_jpeg(bytes.data(), bytes.size(), "cmyk.jpg");
  ASSERT_EQ(im.height, 24);
  ASSERT_EQ(im.width, 16);
  for (size_t p = 0; p < im.pixels.size(); p += 3)
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(im.pixels[p + c], testing::kCmykColour[c], 3);
}

TEST(Jpeg, CorruptOrNonJpegInputNamesTheSource) {
  const auto truncated = testing::corrupt_jpeg();
  try {
    decode_jpeg(truncated.data(), truncated.size(), "/data/x/bad.JPEG");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/data/x/bad.JPEG"), std::string::npos) << e.what();
  }
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_THROW(decode_jpeg(text.data(), text.size(), "t.jpg"), DataError);
}

// Our resize against torch's antialiased bilinear (the reference for PIL-style resampling).
void expect_matches_torch(int64_t h, int64_t w, int64_t oh, int64_t ow) {
  Image im;
  im.height = h;
  im.width = w;
  im.channels = 3;
  im.pixels = testing::pattern_image(h, w);
  std::vector<float> ours(size_t(3 * oh * ow));
  resize_box_chw(im, {0, 0, double(h), double(w)}, oh, ow, false, ours.data());
  const at::Tensor input =
      at::from_blob(im.pixels.data(), {1, h, w, 3}, at::kByte).permute({0, 3, 1, 2}).to(at::kFloat);
  const at::Tensor ref = at::_upsample_bilinear2d_aa(input, {oh, ow}, false).clamp(0, 255) / 255;
  const at::Tensor got = at::from_blob(ours.data(), {1, 3, oh, ow}, at::kFloat);
  EXPECT_LT((got - ref).abs().max().item<float>(), 1e-4f)
      << h << "x" << w << "->" << oh << "x" << ow;
}

TEST(Resize, MatchesTorchAntialiasedBilinear) {
  expect_matches_torch(97, 131, 24, 24);  // strong downscale, non-integer factors
  expect_matches_torch(64, 64, 64, 64);   // identity
  expect_matches_torch(30, 20, 45, 50);   // upscale
  expect_matches_torch(50, 70, 33, 17);   // mixed
}

TEST(Resize, CentreCropBoxIsTheCentredShortSideSquare) {
  const CropBox b = centre_crop_box(300, 500, 0.875);
  EXPECT_DOUBLE_EQ(b.height, 262.5);
  EXPECT_DOUBLE_EQ(b.width, 262.5);
  EXPECT_DOUBLE_EQ(b.y, (300 - 262.5) / 2);
  EXPECT_DOUBLE_EQ(b.x, (500 - 262.5) / 2);
}

TEST(RandomResizedCrop, BoxesFitAndFollowScaleAndRatioBounds) {
  int fallback = 0;
  for (uint64_t key = 0; key < 2000; ++key) {
    const CropBox b = random_resized_crop_box(key, 375, 500);
    ASSERT_GE(b.y, 0);
    ASSERT_GE(b.x, 0);
    ASSERT_LE(b.y + b.height, 375);
    ASSERT_LE(b.x + b.width, 500);
    const double area = b.height * b.width / (375.0 * 500.0);
    const double ratio = b.width / b.height;
    if (area > 0.999) ++fallback;
    EXPECT_GE(area, 0.08 * 0.97);
    EXPECT_GE(ratio, 0.75 * 0.97);
    EXPECT_LE(ratio, 4.0 / 3.0 * 1.03);
    const CropBox again = random_resized_crop_box(key, 375, 500);
    EXPECT_EQ(again.y, b.y);
    EXPECT_EQ(again.width, b.width);
  }
  EXPECT_LT(fallback, 200);  // the draws are spread, not stuck at the fallback
}

}  // namespace
}  // namespace lmt::data
