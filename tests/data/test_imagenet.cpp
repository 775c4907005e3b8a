// Tests of the Tiny-ImageNet and ImageNet converters and the loader on their output: trees of
// real JPEG files (corrupt, grayscale, CMYK included), labels checked against pixel colours,
// skip/fail behaviour, both storages, 1 and 2 ranks, determinism across thread counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>

#include <lmt/data/convert.h>
#include <lmt/data/loader.h>
#include <lmt/data/sharded.h>

#include "jpeg_tree.h"
#include "test_util.h"

namespace lmt::data {
namespace {
using testing::ScratchDir;
namespace fs = std::filesystem;

ConvertProgress quiet() {
  return [](const std::string&) {};
}

ImageConvertOptions options(int64_t size, bool jpeg, bool skip, int threads = 2) {
  return ImageConvertOptions().size(size).jpeg(jpeg).skip_bad_images(skip).threads(threads);
}

// Mean colour of sample i of a float [b,3,H,W] batch on the 0..255 scale.
testing::Rgb mean_colour(const at::Tensor& images, int64_t i) {
  const at::Tensor m = images[i].mean({1, 2}) * 255;
  return {{int(std::lround(m[0].item<float>())), int(std::lround(m[1].item<float>())),
           int(std::lround(m[2].item<float>()))}};
}

bool near(const testing::Rgb& a, const testing::Rgb& b, int tolerance) {
  for (int c = 0; c < 3; ++c)
    if (std::abs(a[c] - b[c]) > tolerance) return false;
  return true;
}

// Every sample's colour is its label's colour, or one of the special files (gray in class 1,
// CMYK in class 2); returns how many of each special were seen.
std::pair<int, int> check_labels_by_colour(Loader& loader, int tolerance) {
  int gray = 0, cmyk = 0;
  loader.start_epoch(0);
  while (auto b = loader.next()) {
    for (int64_t i = 0; i < b->labels.size(0); ++i) {
      const auto label = b->labels[i].item<int64_t>();
      const testing::Rgb c = mean_colour(b->images, i);
      if (label == 1 && near(c, testing::kGrayColour, tolerance)) {
        ++gray;
      } else if (label == 2 && near(c, testing::kCmykColour, tolerance)) {
        ++cmyk;
      } else {
        EXPECT_TRUE(near(c, testing::kClassColour[label], tolerance))
            << "label " << label << " colour " << c[0] << "," << c[1] << "," << c[2];
      }
    }
  }
  return {gray, cmyk};
}

int64_t count_samples(Loader& loader) {
  int64_t n = 0;
  loader.start_epoch(0);
  while (auto b = loader.next()) n += b->labels.size(0);
  return n;
}

TEST(TinyImageNet, ConvertsWithSkipAndReadsBackLabelsShapesAndNames) {
  ScratchDir src, out;
  testing::TreeOptions t;
  t.tiny = true;
  const int good = testing::write_tree(src.path(), t);
  convert_tiny_imagenet(src.path().string(), out.path().string(), options(0, false, true), quiet());
  const DatasetInfo info = read_dataset_info(out.file("train.h5"));
  EXPECT_EQ(info.size, good);
  EXPECT_EQ(info.skipped_images, 1);
  EXPECT_EQ(info.height, 64);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(info.source, "tiny-imagenet");
  EXPECT_EQ(info.class_names,
            (std::vector<std::string>{"red thing", "green thing, verdant", "blue thing"}));
  Loader train(out.file("train.h5"),
               LoaderOptions().batch_size(4).drop_last(false).shuffle(false).prefetch(0));
  const auto b = [&] {
    train.start_epoch(0);
    return *train.next();
  }();
  EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{4, 3, 64, 64}));
  EXPECT_EQ(check_labels_by_colour(train, 8), std::make_pair(1, 1));
  Loader test(out.file("test.h5"), LoaderOptions().batch_size(6).drop_last(false));
  EXPECT_EQ(count_samples(test), 6);
  EXPECT_EQ(check_labels_by_colour(test, 8), std::make_pair(0, 0));
}

TEST(TinyImageNet, FailModeNamesTheCorruptFileAndWritesNothing) {
  ScratchDir src, out;
  testing::TreeOptions t;
  t.tiny = true;
  testing::write_tree(src.path(), t);
  try {
    convert_tiny_imagenet(src.path().string(), out.path().string(), options(0, false, false),
                          quiet());
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/images/bad.JPEG"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(out.empty());
}

TEST(TinyImageNet, MissingClassFolderIsReportedWithItsPath) {
  ScratchDir src, out;
  testing::TreeOptions t;
  t.tiny = true;
  testing::write_tree(src.path(), t);
  fs::remove_all(src.path() / "train" / testing::kWnids[1]);
  try {
    convert_tiny_imagenet(src.path().string(), out.path().string(), options(0, false, true),
                          quiet());
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("train/" + testing::kWnids[1]), std::string::npos)
        << e.what();
  }
}

TEST(ImageNet, ResizedUint8IsShardedAndLoadsWithLabels) {
  ScratchDir src, out;
  const int good = testing::write_tree(src.path(), {});
  ImageConvertOptions o = options(32, false, true);
  o.shard_bytes(4 * 32 * 32 * 3);  // 4 images per shard
  convert_imagenet(src.path().string(), out.path().string(), o, quiet());
  const DatasetInfo info = read_dataset_info(out.file("train.h5"));
  EXPECT_EQ(info.size, good);
  EXPECT_EQ(info.storage, "uint8");
  EXPECT_EQ(info.skipped_images, 1);
  EXPECT_EQ(int64_t(info.shard_files.size()), (good + 3) / 4);
  for (const auto& f : info.shard_files) EXPECT_TRUE(fs::exists(out.path() / f)) << f;
  Loader loader(out.file("train.h5"), LoaderOptions().batch_size(5).drop_last(false));
  EXPECT_EQ(count_samples(loader), good);
  EXPECT_EQ(check_labels_by_colour(loader, 8), std::make_pair(1, 1));
  // Read across shard boundaries equals image-by-image reads.
  DatasetReader reader(out.file("train.h5"));
  std::vector<uint8_t> all(size_t(info.size * info.image_bytes())), one(size_t(info.image_bytes()));
  reader.read_images(0, info.size, all.data());
  for (int64_t i = 0; i < info.size; ++i) {
    reader.read_images(i, 1, one.data());
    EXPECT_TRUE(std::equal(one.begin(), one.end(), all.begin() + i * info.image_bytes()));
  }
}

TEST(ImageNet, JpegStorageKeepsFileBytesAndLoadsAtTheRequestedSize) {
  ScratchDir src, out;
  testing::TreeOptions t;
  t.val_class_folders = true;
  const int good = testing::write_tree(src.path(), t);
  ImageConvertOptions o = options(0, true, true);
  o.shard_bytes(4000);  // a few of these small JPEGs per shard
  convert_imagenet(src.path().string(), out.path().string(), o, quiet());
  const DatasetInfo info = read_dataset_info(out.file("train.h5"));
  EXPECT_EQ(info.storage, "jpeg");
  EXPECT_EQ(info.size, good);
  EXPECT_GT(info.shard_files.size(), 1u);
  // Sample 0 is the first file of the first class (sorted): the stored bytes are the file.
  std::ifstream in(src.path() / "train" / testing::kWnids[0] / (testing::kWnids[0] + "_0.JPEG"),
                   std::ios::binary);
  const std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  EXPECT_EQ(DatasetReader(out.file("train.h5")).read_encoded(0), file);

  Loader eval(out.file("test.h5"),
              LoaderOptions().batch_size(4).drop_last(false).shuffle(false).image_size(24));
  EXPECT_EQ(eval.info().height, 24);
  EXPECT_EQ(count_samples(eval), 6);
  EXPECT_EQ(check_labels_by_colour(eval, 8), std::make_pair(0, 0));
  Loader train(
      out.file("train.h5"),
      LoaderOptions().batch_size(4).horizontal_flip(true).image_size(20).threads(2).seed(7));
  train.start_epoch(0);
  const auto b = *train.next();
  EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{4, 3, 20, 20}));
  const auto [gray, cmyk] = check_labels_by_colour(train, 12);  // random crops keep colours
  EXPECT_LE(gray + cmyk, 2);
}

TEST(ImageNet, FlatValWithLabelsFileAndUnknownClassIsReported) {
  ScratchDir src, out;
  testing::write_tree(src.path(), {});
  convert_imagenet(src.path().string(), out.path().string(), options(16, false, true), quiet());
  Loader test(out.file("test.h5"), LoaderOptions().batch_size(6).drop_last(false));
  EXPECT_EQ(check_labels_by_colour(test, 8), std::make_pair(0, 0));
  std::ofstream(src.path() / "val" / "val_annotations.txt", std::ios::app) << "x.JPEG n07777777\n";
  ScratchDir out2;
  try {
    convert_imagenet(src.path().string(), out2.path().string(), options(16, false, true), quiet());
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("val_annotations.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("n07777777"), std::string::npos) << e.what();
  }
}

// Conversion output and JPEG-mode batches do not depend on thread counts or timing.
TEST(ImageNet, DeterministicAcrossConverterAndLoaderThreads) {
  ScratchDir src, out1, out3;
  testing::write_tree(src.path(), {});
  convert_imagenet(src.path().string(), out1.path().string(), options(24, false, true, 1), quiet());
  convert_imagenet(src.path().string(), out3.path().string(), options(24, false, true, 3), quiet());
  const InMemoryDataset a = read_dataset(out1.file("train.h5"));
  const InMemoryDataset b = read_dataset(out3.file("train.h5"));
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.images, b.images);
  EXPECT_EQ(a.info.mean, b.info.mean);

  ScratchDir jout;
  convert_imagenet(src.path().string(), jout.path().string(), options(0, true, true), quiet());
  auto run = [&](int threads, int prefetch) {
    Loader l(jout.file("train.h5"), LoaderOptions()
                                        .batch_size(4)
                                        .seed(3)
                                        .image_size(16)
                                        .horizontal_flip(true)
                                        .threads(threads)
                                        .prefetch(prefetch));
    std::vector<at::Tensor> batches;
    for (int e = 0; e < 2; ++e) {
      l.start_epoch(e);
      while (auto x = l.next()) batches.push_back(x->images);
    }
    return batches;
  };
  const auto serial = run(1, 0), parallel = run(3, 5);
  ASSERT_EQ(serial.size(), parallel.size());
  for (size_t i = 0; i < serial.size(); ++i) EXPECT_TRUE(at::equal(serial[i], parallel[i])) << i;
  // Augmentation is random: two epochs differ.
  EXPECT_FALSE(at::equal(serial[0], serial[serial.size() / 2]));
}

// Two ranks: each step's two halves partition the 1-rank global batch, with identical inputs.
TEST(ImageNet, TwoRanksPartitionEachGlobalBatchWithIdenticalInputs) {
  ScratchDir src, out;
  testing::write_tree(src.path(), {});
  convert_imagenet(src.path().string(), out.path().string(), options(0, true, true), quiet());
  auto make = [&](int64_t rank, int64_t world) {
    return Loader(out.file("train.h5"), LoaderOptions()
                                            .batch_size(6)
                                            .rank(rank)
                                            .world_size(world)
                                            .seed(5)
                                            .image_size(16)
                                            .horizontal_flip(true));
  };
  Loader single = make(0, 1), r0 = make(0, 2), r1 = make(1, 2);
  ASSERT_EQ(r0.steps_per_epoch(), single.steps_per_epoch());
  single.start_epoch(1);
  r0.start_epoch(1);
  r1.start_epoch(1);
  std::set<int64_t> seen;
  while (auto g = single.next()) {
    auto a = r0.next();
    auto b = r1.next();
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(at::equal(at::cat({a->indices, b->indices}), g->indices));
    EXPECT_TRUE(at::equal(at::cat({a->images, b->images}), g->images));
    for (int64_t i = 0; i < g->indices.size(0); ++i) seen.insert(g->indices[i].item<int64_t>());
  }
  EXPECT_FALSE(r0.next().has_value());
  EXPECT_EQ(int64_t(seen.size()), single.steps_per_epoch() * 6);
}

}  // namespace
}  // namespace lmt::data
