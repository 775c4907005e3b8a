// Tests of the dataset file schema: round trip, ranged reads, h5py's view of the file, and
// errors that name the file and the attribute.
#include <hdf5.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <lmt/data/dataset_file.h>

#include "test_util.h"

namespace lmt::data {
namespace {
using testing::pattern_bytes;
using testing::ScratchDir;
using testing::small_info;

std::vector<int32_t> cycle_labels(int64_t n, int32_t k) {
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>((i * 7) % k);
  return labels;
}

TEST(DatasetFile, RoundTripPreservesImagesLabelsAndAttributes) {
  ScratchDir dir;
  const DatasetInfo info = small_info(11);
  const auto images = pattern_bytes(11 * 60, 1);
  const auto labels = cycle_labels(11, 3);
  write_dataset(dir.file("s.h5"), info, images.data(), labels.data());

  const InMemoryDataset back = read_dataset(dir.file("s.h5"));
  EXPECT_EQ(back.images, images);
  EXPECT_EQ(back.labels, labels);
  EXPECT_EQ(back.info.size, 11);
  EXPECT_EQ(back.info.height, 5);
  EXPECT_EQ(back.info.width, 4);
  EXPECT_EQ(back.info.channels, 3);
  EXPECT_EQ(back.info.num_classes, 3);
  EXPECT_EQ(back.info.source, "synthetic");
  EXPECT_EQ(back.info.class_names, info.class_names);
  EXPECT_EQ(back.info.mean, info.mean);
  EXPECT_EQ(back.info.std, info.std);
  // Only the final file remains: the temporary one was renamed.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.exists();
  EXPECT_EQ(files, 1);
}

TEST(DatasetFile, EmptySplitRoundTrips) {
  ScratchDir dir;
  write_dataset(dir.file("e.h5"), small_info(0), nullptr, nullptr);
  const InMemoryDataset back = read_dataset(dir.file("e.h5"));
  EXPECT_EQ(back.info.size, 0);
  EXPECT_TRUE(back.images.empty());
  EXPECT_EQ(back.info.class_names.size(), 3u);
}

TEST(DatasetFile, RangedReadEqualsSliceOfFullRead) {
  ScratchDir dir;
  const auto images = pattern_bytes(11 * 60, 2);
  const auto labels = cycle_labels(11, 3);
  write_dataset(dir.file("s.h5"), small_info(11), images.data(), labels.data());
  const std::vector<uint8_t> part = read_images(dir.file("s.h5"), 3, 4);
  EXPECT_EQ(part, std::vector<uint8_t>(images.begin() + 3 * 60, images.begin() + 7 * 60));
  EXPECT_THROW(read_images(dir.file("s.h5"), 9, 3), DataError);
}

TEST(DatasetFile, EmptyMeanAndStdAreComputedFromTheImages) {
  ScratchDir dir;
  DatasetInfo info = small_info(2);
  info.channels = 1;
  info.mean.clear();
  info.std.clear();
  // 40 pixels: 20 at 0 and 20 at 255 -> mean 0.5, std 0.5.
  std::vector<uint8_t> images(40, 0);
  for (int i = 0; i < 20; ++i) images[2 * i] = 255;
  const std::vector<int32_t> labels = {0, 1};
  write_dataset(dir.file("s.h5"), info, images.data(), labels.data());
  const DatasetInfo back = read_dataset_info(dir.file("s.h5"));
  EXPECT_FLOAT_EQ(back.mean[0], 0.5f);
  EXPECT_FLOAT_EQ(back.std[0], 0.5f);
}

// The schema as an independent reader (h5py) sees it.
TEST(DatasetFile, H5pyReadsTheSchema) {
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 with h5py not available";
  ScratchDir dir;
  const auto images = pattern_bytes(11 * 60, 3);
  const auto labels = cycle_labels(11, 3);
  write_dataset(dir.file("s.h5"), small_info(11), images.data(), labels.data());
  const std::string out = dir.file("h5py.txt");
  const std::string script =
      "import h5py,sys\n"
      "f=h5py.File(sys.argv[1],'r')\n"
      "i=f['images']; l=f['labels']\n"
      "a=f.attrs\n"
      "names=[n.decode() if isinstance(n,bytes) else n for n in a['class_names']]\n"
      "src=a['source']; src=src.decode() if isinstance(src,bytes) else src\n"
      "print(i.dtype, i.shape, i.chunks, l.dtype, l.shape, int(i[...].astype('int64').sum()),"
      " int(l[...].sum()), int(a['num_classes']), src, '|'.join(names),"
      " round(float(a['std'][2]),6), file=open(sys.argv[2],'w'))\n";
  std::ofstream(dir.file("check.py")) << script;
  ASSERT_EQ(
      std::system(("/usr/bin/python3 " + dir.file("check.py") + " " + dir.file("s.h5") + " " + out)
                      .c_str()),
      0);
  std::string line;
  std::getline(std::ifstream(out), line);
  int64_t pixel_sum = 0, label_sum = 0;
  for (uint8_t v : images) pixel_sum += v;
  for (int32_t v : labels) label_sum += v;
  EXPECT_EQ(line, "uint8 (11, 5, 4, 3) (1, 5, 4, 3) int32 (11,) " + std::to_string(pixel_sum) +
                      " " + std::to_string(label_sum) + " 3 synthetic a|b/c|d e 0.6");
}

TEST(DatasetFile, MissingAttributeIsNamedWithTheFile) {
  ScratchDir dir;
  const auto images = pattern_bytes(11 * 60, 4);
  const auto labels = cycle_labels(11, 3);
  const std::string path = dir.file("train.h5");
  write_dataset(path, small_info(11), images.data(), labels.data());
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  ASSERT_GE(H5Adelete(file, "num_classes"), 0);
  H5Fclose(file);
  try {
    read_dataset_info(path);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": attribute 'num_classes' missing");
  }
}

TEST(DatasetFile, NonHdf5AndMissingFilesAreNamed) {
  ScratchDir dir;
  std::ofstream(dir.file("junk.h5")) << "not hdf5";
  EXPECT_THROW(
      {
        try {
          read_dataset_info(dir.file("junk.h5"));
        } catch (const DataError& e) {
          EXPECT_NE(std::string(e.what()).find(dir.file("junk.h5")), std::string::npos);
          throw;
        }
      },
      DataError);
  try {
    read_dataset(dir.file("absent.h5"));
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("absent.h5") + ": no such file");
  }
}

TEST(DatasetFile, FailedWriteLeavesNoFileBehind) {
  ScratchDir dir;
  const auto images = pattern_bytes(11 * 60, 5);
  auto labels = cycle_labels(11, 3);
  labels[4] = 3;  // not below num_classes
  try {
    write_dataset(dir.file("s.h5"), small_info(11), images.data(), labels.data());
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("s.h5")), std::string::npos);
  }
  EXPECT_TRUE(dir.empty());
  // A destination that cannot be created: the error names it, nothing is left behind.
  EXPECT_THROW(write_dataset(dir.file("no/such/dir/s.h5"), small_info(11), images.data(),
                             cycle_labels(11, 3).data()),
               DataError);
  EXPECT_TRUE(dir.empty());
}

}  // namespace
}  // namespace lmt::data
