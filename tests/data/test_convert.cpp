// Tests of the converters on small IDX / CIFAR files written here (gzip via zlib), each kind of
// bad input, and a real conversion of the installed Fashion-MNIST.
#include <zlib.h>

#include <cmath>
#include <fstream>

#include <lmt/data/convert.h>
#include <lmt/data/dataset_file.h>

#include "test_util.h"

namespace lmt::data {
namespace {
using testing::pattern_bytes;
using testing::ScratchDir;

const ConvertProgress kQuiet = [](const std::string&) {};

std::vector<uint8_t> be32(uint32_t v) {
  return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
}

struct IdxSplit {
  std::vector<uint8_t> images;  // N*rows*cols
  std::vector<uint8_t> labels;
};

IdxSplit make_split(uint32_t n, uint32_t seed) {
  IdxSplit s;
  s.images = pattern_bytes(n * 28 * 28, seed);
  for (uint32_t i = 0; i < n; ++i) s.labels.push_back(static_cast<uint8_t>((i * 3 + seed) % 10));
  return s;
}

std::vector<uint8_t> idx_images(const IdxSplit& s, uint32_t magic = 2051) {
  std::vector<uint8_t> out;
  for (uint32_t v : {magic, static_cast<uint32_t>(s.labels.size()), 28u, 28u}) {
    auto b = be32(v);
    out.insert(out.end(), b.begin(), b.end());
  }
  out.insert(out.end(), s.images.begin(), s.images.end());
  return out;
}

std::vector<uint8_t> idx_labels(const IdxSplit& s, uint32_t magic = 2049) {
  std::vector<uint8_t> out = be32(magic);
  auto n = be32(static_cast<uint32_t>(s.labels.size()));
  out.insert(out.end(), n.begin(), n.end());
  out.insert(out.end(), s.labels.begin(), s.labels.end());
  return out;
}

// Writes the four Fashion-MNIST files; callers then break one of them.
void write_fmnist(const ScratchDir& src, const IdxSplit& train, const IdxSplit& test,
                  bool gzip = true) {
  const std::string ext = gzip ? ".gz" : "";
  write_bytes(src.file("train-images-idx3-ubyte" + ext), idx_images(train), gzip);
  write_bytes(src.file("train-labels-idx1-ubyte" + ext), idx_labels(train), gzip);
  write_bytes(src.file("t10k-images-idx3-ubyte" + ext), idx_images(test), gzip);
  write_bytes(src.file("t10k-labels-idx1-ubyte" + ext), idx_labels(test), gzip);
}

// Runs the converter, expects a DataError naming `file`, and an output directory left empty.
template <typename Convert>
void expect_rejected(Convert convert, const ScratchDir& src, const std::string& file,
                     const std::string& fragment) {
  ScratchDir out_parent;
  const std::string out = out_parent.file("out");
  std::filesystem::create_directories(out);
  try {
    convert(src.path().string(), out, kQuiet);
    ADD_FAILURE() << "expected DataError naming " << file;
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(src.file(file)), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
  EXPECT_TRUE(std::filesystem::is_empty(out));
}

TEST(ConvertFashionMnist, WritesBothSplitsWithTrainStatistics) {
  ScratchDir src, out;
  const IdxSplit train = make_split(30, 1), test = make_split(12, 2);
  write_fmnist(src, train, test);
  convert_fashion_mnist(src.path().string(), out.path().string(), kQuiet);
  const InMemoryDataset tr = read_dataset(out.file("train.h5"));
  const InMemoryDataset te = read_dataset(out.file("test.h5"));
  EXPECT_EQ(tr.images, train.images);
  EXPECT_EQ(te.images, test.images);
  EXPECT_EQ(tr.labels, std::vector<int32_t>(train.labels.begin(), train.labels.end()));
  EXPECT_EQ(te.labels, std::vector<int32_t>(test.labels.begin(), test.labels.end()));
  EXPECT_EQ(tr.info.height, 28);
  EXPECT_EQ(tr.info.channels, 1);
  EXPECT_EQ(tr.info.source, "fashion-mnist");
  EXPECT_EQ(tr.info.class_names.front(), "T-shirt/top");
  EXPECT_EQ(tr.info.class_names.back(), "Ankle boot");
  double sum = 0, sum_sq = 0;
  for (uint8_t v : train.images) {
    sum += v / 255.0;
    sum_sq += (v / 255.0) * (v / 255.0);
  }
  const double mean = sum / train.images.size();
  const double std = std::sqrt(sum_sq / train.images.size() - mean * mean);
  EXPECT_NEAR(tr.info.mean[0], mean, 1e-6);
  EXPECT_NEAR(tr.info.std[0], std, 1e-6);
  EXPECT_EQ(te.info.mean, tr.info.mean);  // the train values in both files
  EXPECT_EQ(te.info.std, tr.info.std);
}

TEST(ConvertFashionMnist, AcceptsUncompressedFiles) {
  ScratchDir src, out;
  const IdxSplit train = make_split(10, 3), test = make_split(5, 4);
  write_fmnist(src, train, test, /*gzip=*/false);
  convert_fashion_mnist(src.path().string(), out.path().string(), kQuiet);
  EXPECT_EQ(read_dataset(out.file("test.h5")).images, test.images);
}

TEST(ConvertFashionMnist, RejectsMissingFile) {
  ScratchDir src;
  write_fmnist(src, make_split(10, 1), make_split(5, 2));
  std::filesystem::remove(src.file("t10k-labels-idx1-ubyte.gz"));
  expect_rejected(convert_fashion_mnist, src, "t10k-labels-idx1-ubyte.gz", "missing");
}

TEST(ConvertFashionMnist, RejectsWrongMagicNumber) {
  ScratchDir src;
  const IdxSplit train = make_split(10, 1);
  write_fmnist(src, train, make_split(5, 2));
  write_bytes(src.file("train-images-idx3-ubyte.gz"), idx_images(train, 2049), true);
  expect_rejected(convert_fashion_mnist, src, "train-images-idx3-ubyte.gz", "magic number 2049");
}

TEST(ConvertFashionMnist, RejectsTruncatedImages) {
  ScratchDir src;
  const IdxSplit test = make_split(5, 2);
  write_fmnist(src, make_split(10, 1), test);
  std::vector<uint8_t> bytes = idx_images(test);
  bytes.resize(bytes.size() - 100);
  write_bytes(src.file("t10k-images-idx3-ubyte.gz"), bytes, true);
  expect_rejected(convert_fashion_mnist, src, "t10k-images-idx3-ubyte.gz", "truncated");
}

TEST(ConvertFashionMnist, RejectsLabelCountMismatch) {
  ScratchDir src;
  IdxSplit train = make_split(10, 1);
  write_fmnist(src, train, make_split(5, 2));
  train.labels.pop_back();
  write_bytes(src.file("train-labels-idx1-ubyte.gz"), idx_labels(train), true);
  expect_rejected(convert_fashion_mnist, src, "train-labels-idx1-ubyte.gz", "9 labels");
}

TEST(ConvertFashionMnist, RejectsLabelNotBelowTen) {
  ScratchDir src;
  IdxSplit test = make_split(5, 2);
  write_fmnist(src, make_split(10, 1), test);
  test.labels[3] = 10;
  write_bytes(src.file("t10k-labels-idx1-ubyte.gz"), idx_labels(test), true);
  expect_rejected(convert_fashion_mnist, src, "t10k-labels-idx1-ubyte.gz", "label 10");
}

// CIFAR records: label byte(s) then R, G, B planes of 32x32.
std::vector<uint8_t> cifar_records(int n, int label_bytes, int num_classes, uint32_t seed) {
  std::vector<uint8_t> out;
  const auto pixels = pattern_bytes(n * 3072, seed);
  for (int i = 0; i < n; ++i) {
    if (label_bytes == 2) out.push_back(static_cast<uint8_t>(i % 20));  // coarse
    out.push_back(static_cast<uint8_t>((i * 7 + seed) % num_classes));
    out.insert(out.end(), pixels.begin() + i * 3072, pixels.begin() + (i + 1) * 3072);
  }
  return out;
}

void write_cifar10(const ScratchDir& src) {
  for (int b = 1; b <= 5; ++b)
    write_bytes(src.file("data_batch_" + std::to_string(b) + ".bin"), cifar_records(4, 1, 10, b),
                false);
  write_bytes(src.file("test_batch.bin"), cifar_records(3, 1, 10, 9), false);
}

TEST(ConvertCifar10, ConvertsPlanarRecordsToHwc) {
  ScratchDir src, out;
  write_cifar10(src);
  convert_cifar10(src.path().string(), out.path().string(), kQuiet);
  const InMemoryDataset tr = read_dataset(out.file("train.h5"));
  ASSERT_EQ(tr.info.size, 20);
  EXPECT_EQ(tr.info.channels, 3);
  EXPECT_EQ(tr.info.class_names[0], "airplane");
  // Sample 6 is record 2 of data_batch_2.bin.
  const std::vector<uint8_t> rec = cifar_records(4, 1, 10, 2);
  const uint8_t* r = &rec[2 * 3073];
  EXPECT_EQ(tr.labels[6], r[0]);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(tr.images[6 * 3072 + (y * 32 + x) * 3 + c], r[1 + c * 1024 + y * 32 + x]);
  EXPECT_EQ(read_dataset_info(out.file("test.h5")).size, 3);
}

TEST(ConvertCifar10, ReadsClassNamesFromMetaFile) {
  ScratchDir src, out;
  write_cifar10(src);
  std::ofstream(src.file("batches.meta.txt")) << "c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n\n";
  convert_cifar10(src.path().string(), out.path().string(), kQuiet);
  EXPECT_EQ(read_dataset_info(out.file("train.h5")).class_names[9], "c9");
}

TEST(ConvertCifar10, RejectsSizeNotAMultipleOfTheRecord) {
  ScratchDir src;
  write_cifar10(src);
  std::vector<uint8_t> bytes = cifar_records(4, 1, 10, 3);
  bytes.pop_back();
  write_bytes(src.file("data_batch_3.bin"), bytes, false);
  expect_rejected(convert_cifar10, src, "data_batch_3.bin", "record size 3073");
}

TEST(ConvertCifar10, RejectsMissingTestBatch) {
  ScratchDir src;
  write_cifar10(src);
  std::filesystem::remove(src.file("test_batch.bin"));
  expect_rejected(convert_cifar10, src, "test_batch.bin", "missing");
}

TEST(ConvertCifar100, UsesTheFineLabel) {
  ScratchDir src, out;
  write_bytes(src.file("train.bin"), cifar_records(6, 2, 100, 1), false);
  write_bytes(src.file("test.bin"), cifar_records(2, 2, 100, 2), false);
  convert_cifar100(src.path().string(), out.path().string(), kQuiet);
  const InMemoryDataset tr = read_dataset(out.file("train.h5"));
  EXPECT_EQ(tr.info.num_classes, 100);
  EXPECT_EQ(tr.info.class_names[0], "apple");
  EXPECT_EQ(tr.info.class_names[99], "worm");
  const std::vector<uint8_t> rec = cifar_records(6, 2, 100, 1);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(tr.labels[i], rec[i * 3074 + 1]);
  EXPECT_EQ(tr.images[5 * 3072 + 1], rec[5 * 3074 + 2 + 1024]);  // pixel 0, green
}

TEST(ConvertCifar100, RejectsTenClassRecords) {
  ScratchDir src;
  write_bytes(src.file("train.bin"), cifar_records(6, 1, 10, 1), false);  // CIFAR-10 layout
  write_bytes(src.file("test.bin"), cifar_records(2, 2, 100, 2), false);
  expect_rejected(convert_cifar100, src, "train.bin", "record size 3074");
}

TEST(ConvertFashionMnist, RealDatasetHasTheKnownShapeAndBalancedLabels) {
  const char* dir = std::getenv("FMNIST_DIR");
  const std::string src = dir != nullptr ? dir : "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(src + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed at " << src;
  ScratchDir out;
  convert_fashion_mnist(src, out.path().string(), kQuiet);
  const InMemoryDataset train = read_dataset(out.file("train.h5"));
  const DatasetInfo test = read_dataset_info(out.file("test.h5"));
  EXPECT_EQ(train.info.size, 60000);
  EXPECT_EQ(test.size, 10000);
  EXPECT_EQ(train.info.height, 28);
  EXPECT_EQ(train.info.width, 28);
  EXPECT_EQ(train.info.channels, 1);
  EXPECT_EQ(train.info.num_classes, 10);
  std::vector<int> histogram(10, 0);
  for (int32_t l : train.labels) ++histogram[l];
  EXPECT_EQ(histogram, std::vector<int>(10, 6000));
  // Plausible statistics (the commonly quoted Fashion-MNIST values are 0.286 and 0.353).
  EXPECT_NEAR(train.info.mean[0], 0.286, 0.001);
  EXPECT_NEAR(train.info.std[0], 0.353, 0.001);
}

TEST(ConvertFashionMnist, RealDatasetEqualsNumpyDecodingOfTheIdxFiles) {
  const char* dir = std::getenv("FMNIST_DIR");
  const std::string src = dir != nullptr ? dir : "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(src + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed at " << src;
  if (std::system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 with h5py and numpy not available";
  ScratchDir out;
  convert_fashion_mnist(src, out.path().string(), kQuiet);
  // Independent reader: gzip + numpy on the IDX files, h5py on our output; exit code 0 = equal.
  const std::string script =
      "import gzip,sys,numpy as np,h5py\n"
      "src,h5=sys.argv[1],sys.argv[2]\n"
      "for split,prefix in (('train','train'),('test','t10k')):\n"
      "  x=np.frombuffer(gzip.open(f'{src}/{prefix}-images-idx3-ubyte.gz').read()[16:],np.uint8)\n"
      "  y=np.frombuffer(gzip.open(f'{src}/{prefix}-labels-idx1-ubyte.gz').read()[8:],np.uint8)\n"
      "  f=h5py.File(f'{h5}/{split}.h5','r')\n"
      "  assert (f['images'][...].reshape(-1)==x).all(), split\n"
      "  assert (f['labels'][...]==y).all(), split\n"
      "  assert abs(f.attrs['mean'][0]-np.frombuffer(gzip.open(f'{src}/train-images-idx3-ubyte.gz')"
      ".read()[16:],np.uint8).mean()/255)<1e-6\n";
  std::ofstream(out.file("check.py")) << script;
  EXPECT_EQ(std::system(
                ("/usr/bin/python3 " + out.file("check.py") + " " + src + " " + out.path().string())
                    .c_str()),
            0);
}

}  // namespace
}  // namespace lmt::data
