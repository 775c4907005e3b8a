// lmt::data: the reading side of the sharded layout: shard files opened once and checked against
// the index, pixel runs split across shard boundaries, one exact read per JPEG.
#include "sharded_read.h"

#include <algorithm>
#include <filesystem>

#include <zlib.h>

namespace lmt::data::detail {
namespace {
std::vector<hsize_t> dims_of(hid_t dataset, const std::string& path, const std::string& name) {
  H5Handle space = checked(H5Dget_space(dataset), H5Sclose, path, "dataset '" + name + "' space");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail(path, "dataset '" + name + "' has an unreadable shape");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

H5Handle open_data(hid_t file, const std::string& path, const std::string& name) {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) fail(path, "dataset '" + name + "' missing");
  return checked(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose, path,
                 "cannot open dataset '" + name + "'");
}

template <typename T>
std::vector<T> read_1d(hid_t file, const std::string& path, const std::string& name, hid_t mem_type,
                       hsize_t expected) {
  H5Handle d = open_data(file, path, name);
  const auto dims = dims_of(d.get(), path, name);
  if (dims.size() != 1 || dims[0] != expected)
    fail(path, "dataset '" + name + "' must have shape [" + std::to_string(expected) + "]");
  std::vector<T> out(expected);
  if (expected > 0)
    checked(H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), path,
            "cannot read dataset '" + name + "'");
  return out;
}
}  // namespace

ShardSet::ShardSet(const std::string& index_path, hid_t index_file, const DatasetInfo& info)
    : index_path_(index_path), info_(info) {
  const size_t s = info.shard_files.size();
  begin_ = read_1d<int64_t>(index_file, index_path, "shard_begin", H5T_NATIVE_INT64, s + 1);
  if (begin_.front() != 0 || begin_.back() != info.size ||
      !std::is_sorted(begin_.begin(), begin_.end()))
    fail(index_path,
         "dataset 'shard_begin' must rise from 0 to the " + std::to_string(info.size) + " samples");
  const std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
  const bool jpeg = info.storage == "jpeg";
  for (size_t i = 0; i < s; ++i) {
    Shard shard;
    shard.path = (dir / info.shard_files[i]).string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(shard.path, ec))
      fail(shard.path, "shard file missing (named by " + index_path + ")");
    shard.file = checked(H5Fopen(shard.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
                         shard.path, "cannot open shard file");
    const auto n = hsize_t(begin_[i + 1] - begin_[i]);
    shard.data = open_data(shard.file.get(), shard.path, jpeg ? "jpeg" : "images");
    const auto dims = dims_of(shard.data.get(), shard.path, jpeg ? "jpeg" : "images");
    if (jpeg) {
      shard.offsets =
          read_1d<int64_t>(shard.file.get(), shard.path, "offsets", H5T_NATIVE_INT64, n + 1);
      if (dims.size() != 1 || shard.offsets.front() != 0 ||
          hsize_t(shard.offsets.back()) != dims[0] ||
          !std::is_sorted(shard.offsets.begin(), shard.offsets.end()))
        fail(shard.path, "dataset 'offsets' must rise from 0 to the size of dataset 'jpeg'");
      // Per-sample CRC-32 of the JPEG bytes (absent in shards written before it existed).
      if (H5Lexists(shard.file.get(), "crc32", H5P_DEFAULT) > 0)
        shard.crc32 =
            read_1d<uint32_t>(shard.file.get(), shard.path, "crc32", H5T_NATIVE_UINT32, n);
    } else if (dims.size() != 4 || dims[0] != n || int64_t(dims[1]) != info.height ||
               int64_t(dims[2]) != info.width || int64_t(dims[3]) != info.channels) {
      fail(shard.path, "dataset 'images' must have shape [" + std::to_string(n) + ", " +
                           std::to_string(info.height) + ", " + std::to_string(info.width) + ", " +
                           std::to_string(info.channels) + "]");
    }
    shards_.push_back(std::move(shard));
  }
}

size_t ShardSet::shard_of(int64_t index) const {
  if (index < 0 || index >= info_.size)
    fail(index_path_, "sample " + std::to_string(index) + " outside the " +
                          std::to_string(info_.size) + " samples");
  return size_t(std::upper_bound(begin_.begin(), begin_.end(), index) - begin_.begin() - 1);
}

void ShardSet::read_images(int64_t start, int64_t count, uint8_t* out) const {
  if (info_.storage != "uint8") fail(index_path_, "read_images on a " + info_.storage + " dataset");
  if (count == 0) return;
  if (start < 0 || count < 0 || start + count > info_.size)
    fail(index_path_, "image range [" + std::to_string(start) + ", " +
                          std::to_string(start + count) + ") outside the dataset");
  const int64_t bytes = info_.image_bytes();
  while (count > 0) {
    const size_t s = shard_of(start);
    const Shard& shard = shards_[s];
    const int64_t local = start - begin_[s];
    const int64_t run = std::min(count, begin_[s + 1] - start);
    H5Handle space = checked(H5Dget_space(shard.data.get()), H5Sclose, shard.path, "images space");
    const hsize_t offset[4] = {hsize_t(local), 0, 0, 0};
    const hsize_t extent[4] = {hsize_t(run), hsize_t(info_.height), hsize_t(info_.width),
                               hsize_t(info_.channels)};
    checked(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, offset, nullptr, extent, nullptr),
            shard.path, "dataset 'images' selection");
    H5Handle memory = checked(H5Screate_simple(4, extent, nullptr), H5Sclose, shard.path, "memory");
    checked(
        H5Dread(shard.data.get(), H5T_NATIVE_UINT8, memory.get(), space.get(), H5P_DEFAULT, out),
        shard.path, "cannot read dataset 'images'");
    out += run * bytes;
    start += run;
    count -= run;
  }
}

std::vector<uint8_t> ShardSet::read_encoded(int64_t index) const {
  auto run = read_encoded_run(index, 1);
  return std::move(run.front());
}

std::vector<std::vector<uint8_t>> ShardSet::read_encoded_run(int64_t start, int64_t count) const {
  if (info_.storage != "jpeg") fail(index_path_, "read_encoded on a " + info_.storage + " dataset");
  if (count < 0 || (count > 0 && (start < 0 || start + count > info_.size)))
    fail(index_path_, "sample range [" + std::to_string(start) + ", " +
                          std::to_string(start + count) + ") outside the " +
                          std::to_string(info_.size) + " samples");
  std::vector<std::vector<uint8_t>> samples;
  samples.reserve(size_t(count));
  std::vector<uint8_t> bytes;
  while (count > 0) {
    const size_t s = shard_of(start);
    const Shard& shard = shards_[s];
    const int64_t local = start - begin_[s];
    const int64_t run = std::min(count, begin_[s + 1] - start);
    const hsize_t offset = hsize_t(shard.offsets[local]);
    const hsize_t size = hsize_t(shard.offsets[local + run]) - offset;
    const std::string which =
        run == 1 ? "sample " + std::to_string(start)
                 : "samples " + std::to_string(start) + ".." + std::to_string(start + run - 1);
    bytes.resize(size);
    if (size > 0) {
      H5Handle space = checked(H5Dget_space(shard.data.get()), H5Sclose, shard.path, "jpeg space");
      checked(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &offset, nullptr, &size, nullptr),
              shard.path, "dataset 'jpeg' selection");
      H5Handle memory =
          checked(H5Screate_simple(1, &size, nullptr), H5Sclose, shard.path, "memory");
      checked(H5Dread(shard.data.get(), H5T_NATIVE_UINT8, memory.get(), space.get(), H5P_DEFAULT,
                      bytes.data()),
              shard.path, "cannot read dataset 'jpeg' of " + which);
    }
    for (int64_t k = local; k < local + run; ++k) {
      const uint8_t* begin = bytes.data() + (shard.offsets[k] - shard.offsets[local]);
      const size_t n = size_t(shard.offsets[k + 1] - shard.offsets[k]);
      if (!shard.crc32.empty() && uint32_t(crc32(0L, begin, uInt(n))) != shard.crc32[size_t(k)])
        fail(shard.path, "dataset 'jpeg': the bytes of sample " + std::to_string(begin_[s] + k) +
                             " do not match their CRC-32 (dataset 'crc32'): the file is corrupt");
      samples.emplace_back(begin, begin + n);
    }
    start += run;
    count -= run;
  }
  return samples;
}

}  // namespace lmt::data::detail
