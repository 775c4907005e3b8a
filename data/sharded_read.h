// lmt::data (private): reading the shard files named by a sharded index (sharded.h): which shard
// holds a sample, its pixels (uint8) or its JPEG bytes (jpeg). Callers hold the HDF5 lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <lmt/data/dataset_file.h>

#include "hdf5_handle.h"

namespace lmt::data::detail {

class ShardSet {
 public:
  // Opens every shard named in info.shard_files (relative to the index's folder) and checks its
  // sample count and datasets against the index's shard_begin.
  ShardSet(const std::string& index_path, hid_t index_file, const DatasetInfo& info);
  void read_images(int64_t start, int64_t count, uint8_t* out) const;  // storage uint8
  std::vector<uint8_t> read_encoded(int64_t index) const;              // storage jpeg
  // Samples [start, start + count) (storage jpeg): one HDF5 read per shard the run touches.
  std::vector<std::vector<uint8_t>> read_encoded_run(int64_t start, int64_t count) const;

 private:
  struct Shard {
    std::string path;
    H5Handle file, data;           // data: 'images' or 'jpeg'
    std::vector<int64_t> offsets;  // jpeg: n + 1 byte offsets
    std::vector<uint32_t> crc32;   // jpeg: CRC-32 of each sample's bytes (empty in old shards)
  };
  size_t shard_of(int64_t index) const;
  std::string index_path_;
  DatasetInfo info_;
  std::vector<int64_t> begin_;
  std::vector<Shard> shards_;
};

}  // namespace lmt::data::detail
