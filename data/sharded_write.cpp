// lmt::data: writing a split in the sharded layout: payload buffered up to the shard bound, each
// shard built in memory and written to a temporary name as it fills, the index written last.
// Datasets are Fletcher-32 checksummed; JPEG bytes carry a CRC-32 per sample.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <zlib.h>

#include <lmt/data/sharded.h>

#include "hdf5_attributes.h"
#include "hdf5_handle.h"
#include "staged_write.h"

namespace lmt::data {
namespace {
using detail::checked;
using detail::fail;
using detail::H5Handle;

// The JPEG payload: one contiguous byte array (a sample is one exact read); its integrity is the
// per-sample CRC-32 dataset beside it.
void write_contiguous(hid_t file, const std::string& path, const char* name,
                      const std::vector<uint8_t>& bytes) {
  const std::string what = std::string("dataset '") + name + "'";
  const hsize_t n = bytes.size();
  H5Handle space = checked(H5Screate_simple(1, &n, nullptr), H5Sclose, path, what + " space");
  H5Handle dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, path, what + " properties");
  checked(H5Pset_obj_track_times(dcpl.get(), 0), path, what + " properties");
  H5Handle dataset = checked(
      H5Dcreate2(file, name, H5T_STD_U8LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
      H5Dclose, path, "cannot create " + what);
  if (n > 0)
    checked(H5Dwrite(dataset.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()),
            path, "cannot write " + what);
}
}  // namespace

struct ShardedWriter::Impl {
  std::string index_path, stem, dir;
  DatasetInfo info;
  int64_t shard_bytes = 0;
  bool jpeg = false;
  // The shard being filled.
  std::vector<uint8_t> payload;
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> shard_labels;
  // The split so far.
  std::vector<int32_t> labels;
  std::vector<int64_t> shard_begin{0};
  std::vector<std::string> shard_names;
  std::vector<std::pair<std::string, std::string>> staged;
  bool finished = false;

  void flush_shard() {
    if (shard_labels.empty()) return;
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "-%05zu.h5", shard_names.size());
    const std::string name = stem + suffix;
    const std::string final_path = (std::filesystem::path(dir) / name).string();
    const std::string temp = final_path + ".tmp." + std::to_string(::getpid());
    staged.emplace_back(temp, final_path);  // before writing: removed on failure too
    const auto n = hsize_t(shard_labels.size());
    std::vector<uint8_t> image;
    {
      detail::Hdf5Lock lock;
      H5Handle file = detail::create_memory_file(final_path, payload.size() + 16 * size_t(n));
      detail::write_checksummed(file.get(), final_path, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32,
                                {n}, 65536, shard_labels.data());
      if (jpeg) {
        write_contiguous(file.get(), final_path, "jpeg", payload);
        detail::write_checksummed(file.get(), final_path, "offsets", H5T_STD_I64LE,
                                  H5T_NATIVE_INT64, {n + 1}, 65536, offsets.data());
        std::vector<uint32_t> crc(n);
        for (size_t k = 0; k < n; ++k)
          crc[k] =
              uint32_t(crc32(0L, payload.data() + offsets[k], uInt(offsets[k + 1] - offsets[k])));
        detail::write_checksummed(file.get(), final_path, "crc32", H5T_STD_U32LE, H5T_NATIVE_UINT32,
                                  {n}, 65536, crc.data());
      } else {
        const hsize_t h = hsize_t(info.height), w = hsize_t(info.width), c = hsize_t(info.channels);
        detail::write_checksummed(file.get(), final_path, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8,
                                  {n, h, w, c}, 1, payload.data());
      }
      payload = std::vector<uint8_t>();  // the in-memory file holds it now
      image = detail::close_to_image(file, final_path);
    }
    detail::write_temp_file(final_path, image);
    shard_names.push_back(name);
    shard_begin.push_back(shard_begin.back() + int64_t(n));
    payload.clear();
    offsets.assign(1, 0);
    shard_labels.clear();
  }

  void write_index(const std::string& temp) {
    std::vector<uint8_t> image;
    {
      detail::Hdf5Lock lock;
      const std::string& path = index_path;
      H5Handle file = detail::create_memory_file(path, 12 * labels.size());
      const hid_t f = file.get();
      detail::write_checksummed(f, path, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32,
                                {hsize_t(labels.size())}, 65536, labels.data());
      detail::write_checksummed(f, path, "shard_begin", H5T_STD_I64LE, H5T_NATIVE_INT64,
                                {hsize_t(shard_begin.size())}, 65536, shard_begin.data());
      detail::write_int_attribute(f, path, "num_classes", info.num_classes);
      detail::write_int_attribute(f, path, "height", info.height);
      detail::write_int_attribute(f, path, "width", info.width);
      detail::write_int_attribute(f, path, "channels", info.channels);
      detail::write_string_attribute(f, path, "source", {info.source}, true);
      detail::write_string_attribute(f, path, "class_names", info.class_names, false);
      detail::write_float_attribute(f, path, "mean", info.mean);
      detail::write_float_attribute(f, path, "std", info.std);
      detail::write_string_attribute(f, path, "layout", {"shards"}, true);
      detail::write_string_attribute(f, path, "storage", {info.storage}, true);
      detail::write_string_attribute(f, path, "shard_files", shard_names, false);
      detail::write_int_attribute(f, path, "skipped_images", info.skipped_images);
      image = detail::close_to_image(file, path);
    }
    if (detail::write_temp_file(index_path, image) != temp)
      fail(index_path, "temporary name mismatch");  // both are index_path + ".tmp.<pid>"
  }
};

ShardedWriter::ShardedWriter(std::string index_path, DatasetInfo info, int64_t shard_bytes)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const std::filesystem::path p(index_path);
  m.index_path = std::move(index_path);
  m.stem = p.stem().string();
  m.dir = p.parent_path().empty() ? "." : p.parent_path().string();
  m.jpeg = info.storage == "jpeg";
  if (!m.jpeg && info.storage != "uint8")
    fail(m.index_path, "storage must be uint8 or jpeg, got '" + info.storage + "'");
  if (shard_bytes < 1) fail(m.index_path, "shard size must be positive");
  if (info.height < 1 || info.width < 1 || info.channels < 1 || info.num_classes < 1 ||
      int64_t(info.class_names.size()) != info.num_classes)
    fail(m.index_path, "sharded writer needs positive sizes and one class name per class");
  m.info = std::move(info);
  m.shard_bytes = shard_bytes;
}

ShardedWriter::~ShardedWriter() {
  if (impl_ && !impl_->finished) {
    std::vector<std::string> temps;
    for (const auto& pair : impl_->staged) temps.push_back(pair.first);
    detail::remove_quietly(temps);
  }
}

void ShardedWriter::add(const uint8_t* data, size_t size, int32_t label) {
  Impl& m = *impl_;
  if (label < 0 || label >= m.info.num_classes)
    fail(m.index_path, "label " + std::to_string(label) + " outside [0, num_classes = " +
                           std::to_string(m.info.num_classes) + ")");
  if (!m.jpeg && int64_t(size) != m.info.image_bytes())
    fail(m.index_path, "image of " + std::to_string(size) + " bytes, expected " +
                           std::to_string(m.info.image_bytes()));
  if (!m.shard_labels.empty() && int64_t(m.payload.size() + size) > m.shard_bytes) m.flush_shard();
  m.payload.insert(m.payload.end(), data, data + size);
  m.offsets.push_back(int64_t(m.payload.size()));
  m.shard_labels.push_back(label);
  m.labels.push_back(label);
}

int64_t ShardedWriter::size() const { return int64_t(impl_->labels.size()); }

std::vector<std::pair<std::string, std::string>> ShardedWriter::finish(
    const std::vector<float>& mean, const std::vector<float>& std, int64_t skipped_images) {
  Impl& m = *impl_;
  if (int64_t(mean.size()) != m.info.channels || int64_t(std.size()) != m.info.channels)
    fail(m.index_path, "mean and std need one entry per channel");
  m.flush_shard();
  m.info.mean = mean;
  m.info.std = std;
  m.info.skipped_images = skipped_images;
  const std::string temp = m.index_path + ".tmp." + std::to_string(::getpid());
  m.staged.emplace_back(temp, m.index_path);
  m.write_index(temp);
  m.finished = true;
  return m.staged;
}

void commit_shards(const std::vector<std::pair<std::string, std::string>>& staged) {
  detail::commit_staged(staged);
}

}  // namespace lmt::data
