// Helpers of the JPEG tests: small Tiny-ImageNet / ImageNet source trees of real JPEG files
// (written with libturbojpeg), one solid colour per class so labels can be checked from pixels.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <lmt/data/jpeg.h>

namespace lmt::data::testing {

using Rgb = std::array<int, 3>;
inline const std::vector<std::string> kWnids = {"n01000001", "n01000002", "n01000003"};
inline const std::vector<Rgb> kClassColour = {{{200, 40, 40}}, {{40, 200, 40}}, {{40, 40, 200}}};
inline const Rgb kGrayColour = {{120, 120, 120}};
inline const Rgb kCmykColour = {{230, 150, 60}};  // the CMYK file's intended RGB

// A solid colour with a faint +-6 texture, height x width, RGB.
inline std::vector<uint8_t> solid_image(const Rgb& c, int64_t h, int64_t w, int64_t seed) {
  std::vector<uint8_t> px(size_t(h * w * 3));
  for (int64_t i = 0; i < h * w; ++i)
    for (int ch = 0; ch < 3; ++ch)
      px[i * 3 + ch] = uint8_t(c[ch] + int((i * 7 + ch * 3 + seed) % 13) - 6);
  return px;
}

inline void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

inline std::vector<uint8_t> rgb_jpeg(const Rgb& c, int64_t h, int64_t w, int64_t seed) {
  const auto px = solid_image(c, h, w, seed);
  return encode_jpeg(px.data(), h, w, JpegInput::kRgb, 95);
}
inline std::vector<uint8_t> gray_jpeg(int64_t h, int64_t w) {
  std::vector<uint8_t> px(size_t(h * w), uint8_t(kGrayColour[0]));
  return encode_jpeg(px.data(), h, w, JpegInput::kGray, 95);
}
// Adobe (inverted) CMYK as Photoshop writes it: stored C = R, M = G, Y = B, K = 255 (no ink).
inline std::vector<uint8_t> cmyk_jpeg(int64_t h, int64_t w) {
  std::vector<uint8_t> px(size_t(h * w * 4));
  for (int64_t i = 0; i < h * w; ++i) {
    for (int ch = 0; ch < 3; ++ch) px[i * 4 + ch] = uint8_t(kCmykColour[ch]);
    px[i * 4 + 3] = 255;
  }
  return encode_jpeg(px.data(), h, w, JpegInput::kCmyk, 95);
}
// A JPEG cut after 40% of its bytes (libjpeg reports a premature end).
inline std::vector<uint8_t> corrupt_jpeg() {
  auto bytes = rgb_jpeg(kClassColour[0], 48, 48, 1);
  bytes.resize(bytes.size() * 2 / 5);
  return bytes;
}

struct TreeOptions {
  int per_class = 5;       // good RGB train images per class
  bool with_bad = true;    // + a corrupt file in class 0
  bool with_modes = true;  // + a grayscale file in class 1 and a CMYK file in class 2
  bool tiny = false;       // Tiny-ImageNet layout (train/<wnid>/images, val/images + annot.)
  bool val_class_folders = false;  // ImageNet val/<wnid>/ instead of flat + labels file
};

// Writes the tree; returns the number of good train images.
inline int write_tree(const std::filesystem::path& root, const TreeOptions& o) {
  namespace fs = std::filesystem;
  int good = 0;
  fs::create_directories(root);
  std::ofstream(root / "wnids.txt") << kWnids[2] << "\n" << kWnids[0] << "\n" << kWnids[1] << "\n";
  std::ofstream(root / "words.txt") << kWnids[0] << "\tred thing\n"
                                    << kWnids[1] << "\tgreen thing, verdant\n"
                                    << kWnids[2] << "\tblue thing\nn09999999\tunused\n";
  for (int c = 0; c < 3; ++c) {
    fs::path dir = root / "train" / kWnids[c];
    if (o.tiny) dir /= "images";
    for (int i = 0; i < o.per_class; ++i, ++good)
      write_bytes(dir / (kWnids[c] + "_" + std::to_string(i) + ".JPEG"),
                  rgb_jpeg(kClassColour[c], 40 + 8 * i, 56 - 4 * i, c * 10 + i));
  }
  if (o.with_bad)
    write_bytes(root / "train" / kWnids[0] / (o.tiny ? "images" : "") / "bad.JPEG", corrupt_jpeg());
  if (o.with_modes) {
    write_bytes(root / "train" / kWnids[1] / (o.tiny ? "images" : "") / "gray.JPEG",
                gray_jpeg(36, 44));
    write_bytes(root / "train" / kWnids[2] / (o.tiny ? "images" : "") / "cmyk.JPEG",
                cmyk_jpeg(44, 36));
    good += 2;
  }
  // Validation: two per class.
  std::ofstream annotations;
  if (!o.val_class_folders) {
    fs::create_directories(root / "val" / (o.tiny ? "images" : ""));
    annotations.open(root / "val" / "val_annotations.txt");
  }
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 2; ++i) {
      const std::string name = "val_" + std::to_string(c * 2 + i) + ".JPEG";
      const auto bytes = rgb_jpeg(kClassColour[c], 48, 48, 100 + c * 2 + i);
      if (o.val_class_folders) {
        write_bytes(root / "val" / kWnids[c] / name, bytes);
      } else {
        write_bytes(root / "val" / (o.tiny ? "images" : "") / name, bytes);
        annotations << name << "\t" << kWnids[c] << "\t0\t0\t10\t10\n";
      }
    }
  return good;
}

}  // namespace lmt::data::testing

namespace lmt::data::testing {
// A smooth-plus-edges RGB test pattern (plain arithmetic, no code under test).
inline std::vector<uint8_t> pattern_image(int64_t h, int64_t w) {
  std::vector<uint8_t> px(size_t(h * w * 3));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      px[(y * w + x) * 3 + 0] = uint8_t((x * 255) / std::max<int64_t>(w - 1, 1));
      px[(y * w + x) * 3 + 1] = uint8_t(((x / 3 + y / 5) % 2) * 200 + 20);
      px[(y * w + x) * 3 + 2] = uint8_t((x * y * 37 + 11) % 256);
    }
  return px;
}
}  // namespace lmt::data::testing
