// lmt::data: the sharded dataset layout (ImageNet-scale splits): an index file NAME.h5 with the
// schema's attributes and labels, and shard files NAME-00000.h5 ... of bounded size beside it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <lmt/data/dataset_file.h>

namespace lmt::data {

// Index file: attributes num_classes, height, width, channels, source, class_names, mean, std
// (as a single file) plus layout = "shards", storage = "uint8" | "jpeg", shard_files (names
// relative to the index's folder), skipped_images (int64); datasets labels int32 [N] and
// shard_begin int64 [S+1] (sample i lives in shard s with shard_begin[s] <= i < shard_begin[s+1]).
// Shard file: labels int32 [n]; uint8: images uint8 [n,H,W,C] chunked one image per chunk;
// jpeg: jpeg uint8 [bytes] (contiguous, so one sample is one exact read), offsets int64 [n+1]
// and crc32 uint32 [n] (zlib CRC-32 of each sample's bytes, checked by every read). All other
// datasets are chunked with the Fletcher-32 filter; files use the checksummed v110 format.
//
// Writes one split as temporary files; finish() returns the (temporary, final) pairs to hand to
// commit_staged-like renaming (commit_shards) once every split is complete.
class ShardedWriter {
 public:
  // info: num_classes, class_names, source, storage, height/width/channels (uint8: the image
  // size; jpeg: the default input size). shard_bytes bounds the payload bytes per shard file.
  ShardedWriter(std::string index_path, DatasetInfo info, int64_t shard_bytes);
  ~ShardedWriter();  // removes temporary files unless finished
  ShardedWriter(const ShardedWriter&) = delete;
  ShardedWriter& operator=(const ShardedWriter&) = delete;

  // Appends one sample: image_bytes() pixels (uint8) or the JPEG file's bytes (jpeg).
  void add(const uint8_t* data, size_t size, int32_t label);
  int64_t size() const;
  // Writes the last shard and the index (with mean/std and skipped_images) to temporary names.
  std::vector<std::pair<std::string, std::string>> finish(const std::vector<float>& mean,
                                                          const std::vector<float>& std,
                                                          int64_t skipped_images);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Renames every (temporary, final) pair (shards first, index files last) and fsyncs; on failure
// removes them all and throws DataError.
void commit_shards(const std::vector<std::pair<std::string, std::string>>& staged);

}  // namespace lmt::data
