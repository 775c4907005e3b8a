// lmt::data: Fashion-MNIST IDX files (gzip or plain, read with zlib) to train.h5 / test.h5.
// IDX: big-endian magic (2051 images, 2049 labels), big-endian dims, then the bytes.
#include <zlib.h>

#include <filesystem>

#include "convert_common.h"
#include "hdf5_handle.h"

namespace lmt::data {
namespace {
using detail::fail;

const std::vector<std::string> kFashionMnistClasses = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
constexpr uint32_t kImagesMagic = 2051;
constexpr uint32_t kLabelsMagic = 2049;

// The .gz name if present, else the plain one; DataError naming the expected file otherwise.
std::string find_idx_file(const std::string& dir, const std::string& base) {
  const auto gz = std::filesystem::path(dir) / (base + ".gz");
  const auto plain = std::filesystem::path(dir) / base;
  std::error_code ec;
  if (std::filesystem::is_regular_file(gz, ec)) return gz.string();
  if (std::filesystem::is_regular_file(plain, ec)) return plain.string();
  fail(gz.string(), "missing (nor is there an uncompressed " + base + ")");
}

// gzread reads gzip and plain files alike.
class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)) {
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr) fail(path_, "cannot open");
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; returns how many were read (fewer at end of file).
  size_t read(void* out, size_t n) {
    size_t done = 0;
    while (done < n) {
      const unsigned piece = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(file_, static_cast<char*>(out) + done, piece);
      if (got < 0) {
        int code = 0;
        fail(path_, std::string("gzip error: ") + gzerror(file_, &code));
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

  uint32_t read_be32(const std::string& field) {
    unsigned char b[4];
    if (read(b, 4) != 4) fail(path_, "truncated: file ends inside the IDX header (" + field + ")");
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;
};

IdxImages read_idx_images(const std::string& path) {
  GzReader in(path);
  const uint32_t magic = in.read_be32("magic number");
  if (magic != kImagesMagic)
    fail(path, "IDX magic number " + std::to_string(magic) + ", expected " +
                   std::to_string(kImagesMagic) + " (unsigned byte images, 3 dimensions)");
  IdxImages images;
  images.count = in.read_be32("image count");
  images.rows = in.read_be32("rows");
  images.cols = in.read_be32("columns");
  if (images.rows < 1 || images.cols < 1 || images.rows > 4096 || images.cols > 4096)
    fail(path, "implausible image size " + std::to_string(images.rows) + "x" +
                   std::to_string(images.cols));
  const size_t bytes = static_cast<size_t>(images.count * images.rows * images.cols);
  if (bytes > (size_t{1} << 36))
    fail(path, "implausible header: " + std::to_string(images.count) + " images");
  images.pixels.resize(bytes);
  const size_t got = in.read(images.pixels.data(), bytes);
  if (got != bytes)
    fail(path, "truncated: header promises " + std::to_string(images.count) + " images of " +
                   std::to_string(images.rows) + "x" + std::to_string(images.cols) + " (" +
                   std::to_string(bytes) + " bytes) but the data ends after " +
                   std::to_string(got) + " bytes");
  return images;
}

std::vector<int32_t> read_idx_labels(const std::string& path) {
  GzReader in(path);
  const uint32_t magic = in.read_be32("magic number");
  if (magic != kLabelsMagic)
    fail(path, "IDX magic number " + std::to_string(magic) + ", expected " +
                   std::to_string(kLabelsMagic) + " (unsigned byte labels, 1 dimension)");
  const uint32_t count = in.read_be32("label count");
  std::vector<uint8_t> bytes(count);
  const size_t got = in.read(bytes.data(), count);
  if (got != count)
    fail(path, "truncated: header promises " + std::to_string(count) +
                   " labels but the data ends after " + std::to_string(got) + " bytes");
  return std::vector<int32_t>(bytes.begin(), bytes.end());
}

detail::DecodedSplit read_split(const std::string& src_dir, const std::string& prefix,
                                int64_t& rows, int64_t& cols, const ConvertProgress& progress) {
  const std::string images_path = find_idx_file(src_dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx_file(src_dir, prefix + "-labels-idx1-ubyte");
  IdxImages images = read_idx_images(images_path);
  detail::DecodedSplit split;
  split.labels = read_idx_labels(labels_path);
  if (static_cast<int64_t>(split.labels.size()) != images.count)
    fail(labels_path, "has " + std::to_string(split.labels.size()) + " labels but " + images_path +
                          " has " + std::to_string(images.count) + " images");
  detail::check_labels(split.labels, 10, labels_path);
  if (rows != 0 && (rows != images.rows || cols != images.cols))
    fail(images_path, "images are " + std::to_string(images.rows) + "x" +
                          std::to_string(images.cols) + ", the train split's are " +
                          std::to_string(rows) + "x" + std::to_string(cols));
  rows = images.rows;
  cols = images.cols;
  split.images = std::move(images.pixels);  // [N,H,W] is already NHWC with C = 1
  detail::report(progress, "read " + images_path + " (" + std::to_string(images.count) +
                               " images " + std::to_string(rows) + "x" + std::to_string(cols) +
                               ") and " + labels_path);
  return split;
}
}  // namespace

void convert_fashion_mnist(const std::string& src_dir, const std::string& out_dir,
                           const ConvertProgress& progress) {
  int64_t rows = 0, cols = 0;
  const detail::DecodedSplit train = read_split(src_dir, "train", rows, cols, progress);
  const detail::DecodedSplit test = read_split(src_dir, "t10k", rows, cols, progress);
  DatasetInfo info;
  info.height = rows;
  info.width = cols;
  info.channels = 1;
  info.num_classes = 10;
  info.source = "fashion-mnist";
  info.class_names = kFashionMnistClasses;
  detail::write_train_test(out_dir, info, train, test, progress);
}

}  // namespace lmt::data
