// lmt::data: the dataset file schema (one HDF5 file per split) and its reader and writer.
// Schema: `images` uint8 [N,H,W,C] chunked one image per chunk, `labels` int32 [N], attributes
// num_classes, height, width, channels (int64), source (string), class_names (strings), mean and
// std (float32 per channel, pixel scale [0,1], computed on the train split). Written in the
// checksummed HDF5 v110 format with Fletcher-32 datasets and fixed-length strings; files without
// metadata checksums are read in a forked child first (data/README.md, "Integrity").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <lmt/data/error.h>

namespace lmt::data {

struct DatasetInfo {
  int64_t size = 0;  // N, number of samples
  int64_t height = 0, width = 0, channels = 0;
  int64_t num_classes = 0;
  std::string source;                    // e.g. "fashion-mnist", "cifar10"
  std::vector<std::string> class_names;  // num_classes entries
  std::vector<float> mean, std;          // per channel, pixel scale [0,1]

  // Sharded layout (sharded.h): `path` is an index file naming shard files beside it.
  // storage "uint8": fixed-size images as above; "jpeg": original JPEG bytes, and height/width
  // are the default model input size (the loader decodes, crops and resizes).
  std::string storage = "uint8";
  std::vector<std::string> shard_files;  // empty for a single-file dataset
  int64_t skipped_images = 0;            // bad source images a converter skipped

  int64_t image_bytes() const { return height * width * channels; }
};

// Reads the attributes and checks them against the datasets' shapes (and mean/std: finite,
// std > 0). Throws DataError naming the file and the attribute/dataset at fault.
DatasetInfo read_dataset_info(const std::string& path);

// Writes one split atomically: path + ".tmp.<pid>" is written, closed, fsynced and renamed over
// path. On any error the temporary file is removed and DataError (naming path) is thrown.
// images_nhwc holds info.size * info.image_bytes() bytes; labels info.size entries, each in
// [0, num_classes). info.size must be set. If info.mean and info.std are both empty they are
// computed from these images; class_names must have num_classes entries.
void write_dataset(const std::string& path, const DatasetInfo& info, const uint8_t* images_nhwc,
                   const int32_t* labels);

// A whole split in memory (tests, evaluation, small datasets).
struct InMemoryDataset {
  DatasetInfo info;
  std::vector<uint8_t> images;  // NHWC
  std::vector<int32_t> labels;
};
InMemoryDataset read_dataset(const std::string& path);

// Images [start, start + count) as NHWC bytes.
std::vector<uint8_t> read_images(const std::string& path, int64_t start, int64_t count);

// An open dataset file for repeated ranged reads (the loader's streaming path). Every HDF5 call
// in this library holds one process-wide lock (the Debian HDF5 build is not thread-safe), so a
// reader may be used from any thread.
class DatasetReader {
 public:
  explicit DatasetReader(const std::string& path);
  ~DatasetReader();
  DatasetReader(const DatasetReader&) = delete;
  DatasetReader& operator=(const DatasetReader&) = delete;

  const DatasetInfo& info() const;
  const std::string& path() const;
  // Copies images [start, start + count) into out (count * image_bytes() bytes).
  void read_images(int64_t start, int64_t count, uint8_t* out) const;
  std::vector<int32_t> read_labels() const;
  // The stored JPEG bytes of sample `index` (storage "jpeg" only).
  std::vector<uint8_t> read_encoded(int64_t index) const;
  // The JPEG bytes of samples [start, start + count), read with one HDF5 call per shard the
  // run touches (the loader reads runs of consecutive indices this way), each CRC-checked.
  std::vector<std::vector<uint8_t>> read_encoded_run(int64_t start, int64_t count) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Per-channel mean and (population) standard deviation of NHWC uint8 images on the [0,1] scale.
void channel_statistics(const uint8_t* images_nhwc, int64_t num_pixels, int64_t channels,
                        std::vector<float>& mean, std::vector<float>& std);

}  // namespace lmt::data
