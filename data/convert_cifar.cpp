// lmt::data: CIFAR-10 / CIFAR-100 binary versions to train.h5 / test.h5.
// A record is the label byte(s) then 3072 bytes: 1024 red, 1024 green, 1024 blue, row-major.
#include <filesystem>
#include <fstream>

#include "convert_common.h"
#include "hdf5_handle.h"

namespace lmt::data {
namespace {
using detail::fail;

constexpr int64_t kSide = 32, kChannels = 3, kPixels = kSide * kSide;
constexpr int64_t kImageBytes = kPixels * kChannels;

const std::vector<std::string> kCifar10Classes = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
const std::vector<std::string> kCifar100Classes = {
    "apple",       "aquarium_fish", "baby",      "bear",       "beaver",       "bed",
    "bee",         "beetle",        "bicycle",   "bottle",     "bowl",         "boy",
    "bridge",      "bus",           "butterfly", "camel",      "can",          "castle",
    "caterpillar", "cattle",        "chair",     "chimpanzee", "clock",        "cloud",
    "cockroach",   "couch",         "crab",      "crocodile",  "cup",          "dinosaur",
    "dolphin",     "elephant",      "flatfish",  "forest",     "fox",          "girl",
    "hamster",     "house",         "kangaroo",  "keyboard",   "lamp",         "lawn_mower",
    "leopard",     "lion",          "lizard",    "lobster",    "man",          "maple_tree",
    "motorcycle",  "mountain",      "mouse",     "mushroom",   "oak_tree",     "orange",
    "orchid",      "otter",         "palm_tree", "pear",       "pickup_truck", "pine_tree",
    "plain",       "plate",         "poppy",     "porcupine",  "possum",       "rabbit",
    "raccoon",     "ray",           "road",      "rocket",     "rose",         "sea",
    "seal",        "shark",         "shrew",     "skunk",      "skyscraper",   "snail",
    "snake",       "spider",        "squirrel",  "streetcar",  "sunflower",    "sweet_pepper",
    "table",       "tank",          "telephone", "television", "tiger",        "tractor",
    "train",       "trout",         "tulip",     "turtle",     "wardrobe",     "whale",
    "willow_tree", "wolf",          "woman",     "worm"};

// The tarballs unpack into a subfolder; accept either it or the folder holding the files.
std::filesystem::path locate(const std::string& src_dir, const std::string& subfolder,
                             const std::string& probe) {
  std::error_code ec;
  const auto nested = std::filesystem::path(src_dir) / subfolder;
  if (!std::filesystem::exists(std::filesystem::path(src_dir) / probe, ec) &&
      std::filesystem::exists(nested / probe, ec))
    return nested;
  return src_dir;
}

// Appends the records of one file; label_offset picks the label byte (CIFAR-100: fine label).
void read_cifar_file(const std::filesystem::path& file, int64_t label_bytes, int64_t label_offset,
                     int64_t num_classes, detail::DecodedSplit& split) {
  const std::string path = file.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) fail(path, "missing");
  const auto size = static_cast<int64_t>(std::filesystem::file_size(file, ec));
  if (ec) fail(path, "cannot read size: " + ec.message());
  const int64_t record = label_bytes + kImageBytes;
  if (size == 0 || size % record != 0)
    fail(path, "size " + std::to_string(size) + " bytes is not a positive multiple of the " +
                   "record size " + std::to_string(record) + " (truncated or not a CIFAR " +
                   (label_bytes == 1 ? "-10" : "-100") + " binary file)");
  std::ifstream in(file, std::ios::binary);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) fail(path, "read error");
  const int64_t count = size / record;
  const size_t first = split.labels.size();
  split.labels.resize(first + count);
  split.images.resize((first + count) * kImageBytes);
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* rec = &bytes[i * record];
    split.labels[first + i] = rec[label_offset];
    const uint8_t* planes = rec + label_bytes;
    uint8_t* hwc = &split.images[(first + i) * kImageBytes];
    for (int64_t p = 0; p < kPixels; ++p)
      for (int64_t c = 0; c < kChannels; ++c) hwc[p * kChannels + c] = planes[c * kPixels + p];
  }
  const std::vector<int32_t> mine(split.labels.begin() + first, split.labels.end());
  detail::check_labels(mine, num_classes, path);
}

// One name per non-empty line; the file must list exactly `expected` names.
std::vector<std::string> read_names(const std::filesystem::path& file, size_t expected,
                                    const std::vector<std::string>& fallback) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return fallback;
  std::ifstream in(file);
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != expected)
    fail(file.string(), "lists " + std::to_string(names.size()) + " class names, expected " +
                            std::to_string(expected));
  return names;
}

DatasetInfo cifar_info(const std::string& source, std::vector<std::string> names) {
  DatasetInfo info;
  info.height = kSide;
  info.width = kSide;
  info.channels = kChannels;
  info.num_classes = static_cast<int64_t>(names.size());
  info.source = source;
  info.class_names = std::move(names);
  return info;
}

void report_read(const ConvertProgress& progress, const std::filesystem::path& file,
                 const detail::DecodedSplit& split) {
  detail::report(progress, "read " + file.string() + " (" + std::to_string(split.labels.size()) +
                               " images so far)");
}
}  // namespace

void convert_cifar10(const std::string& src_dir, const std::string& out_dir,
                     const ConvertProgress& progress) {
  const auto dir = locate(src_dir, "cifar-10-batches-bin", "data_batch_1.bin");
  detail::DecodedSplit train, test;
  for (int b = 1; b <= 5; ++b) {
    const auto file = dir / ("data_batch_" + std::to_string(b) + ".bin");
    read_cifar_file(file, 1, 0, 10, train);
    report_read(progress, file, train);
  }
  read_cifar_file(dir / "test_batch.bin", 1, 0, 10, test);
  report_read(progress, dir / "test_batch.bin", test);
  const DatasetInfo info =
      cifar_info("cifar10", read_names(dir / "batches.meta.txt", 10, kCifar10Classes));
  detail::write_train_test(out_dir, info, train, test, progress);
}

void convert_cifar100(const std::string& src_dir, const std::string& out_dir,
                      const ConvertProgress& progress) {
  const auto dir = locate(src_dir, "cifar-100-binary", "train.bin");
  detail::DecodedSplit train, test;
  read_cifar_file(dir / "train.bin", 2, 1, 100, train);
  report_read(progress, dir / "train.bin", train);
  read_cifar_file(dir / "test.bin", 2, 1, 100, test);
  report_read(progress, dir / "test.bin", test);
  const DatasetInfo info =
      cifar_info("cifar100", read_names(dir / "fine_label_names.txt", 100, kCifar100Classes));
  detail::write_train_test(out_dir, info, train, test, progress);
}

}  // namespace lmt::data
