// lmt::data: writing a split in the sharded layout: payload buffered up to the shard bound, each
// shard written to a temporary name as it fills, the index written last.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <lmt/data/sharded.h>

#include "hdf5_attributes.h"
#include "hdf5_handle.h"
#include "staged_write.h"

namespace lmt::data {
namespace {
using detail::checked;
using detail::fail;
using detail::H5Handle;

void fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, "cannot open for fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail(path, "fsync failed");
}

// A 1-D or N-D dataset written whole; chunk empty = contiguous layout.
void write_array(hid_t file, const std::string& path, const char* name, hid_t file_type,
                 hid_t mem_type, const std::vector<hsize_t>& dims,
                 const std::vector<hsize_t>& chunk, const void* data) {
  const std::string what = std::string("dataset '") + name + "'";
  H5Handle space = checked(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose, path,
                           what + " space");
  H5Handle dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, path, what + " properties");
  if (!chunk.empty())
    checked(H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data()), path, what);
  H5Handle dataset =
      checked(H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
              H5Dclose, path, "cannot create " + what);
  if (H5Sget_simple_extent_npoints(space.get()) > 0)
    checked(H5Dwrite(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
            "cannot write " + what);
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
    {
      detail::Hdf5Lock lock;
      H5Handle file = checked(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                              H5Fclose, final_path, "cannot create temporary file " + temp);
      write_array(file.get(), final_path, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, {},
                  shard_labels.data());
      if (jpeg) {
        write_array(file.get(), final_path, "jpeg", H5T_STD_U8LE, H5T_NATIVE_UINT8,
                    {hsize_t(payload.size())}, {}, payload.data());
        write_array(file.get(), final_path, "offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, {n + 1}, {},
                    offsets.data());
      } else {
        const hsize_t h = hsize_t(info.height), w = hsize_t(info.width), c = hsize_t(info.channels);
        write_array(file.get(), final_path, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, {n, h, w, c},
                    {1, h, w, c}, payload.data());
      }
      if (!file.reset()) fail(final_path, "cannot close temporary file " + temp);
    }
    fsync_file(temp);
    shard_names.push_back(name);
    shard_begin.push_back(shard_begin.back() + int64_t(n));
    payload.clear();
    offsets.assign(1, 0);
    shard_labels.clear();
  }

  void write_index(const std::string& temp) {
    detail::Hdf5Lock lock;
    const std::string& path = index_path;
    H5Handle file = checked(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                            H5Fclose, path, "cannot create temporary file " + temp);
    const hid_t f = file.get();
    write_array(f, path, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {hsize_t(labels.size())}, {},
                labels.data());
    write_array(f, path, "shard_begin", H5T_STD_I64LE, H5T_NATIVE_INT64,
                {hsize_t(shard_begin.size())}, {}, shard_begin.data());
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
    if (!file.reset()) fail(path, "cannot close temporary file " + temp);
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
  fsync_file(temp);
  m.finished = true;
  return m.staged;
}

void commit_shards(const std::vector<std::pair<std::string, std::string>>& staged) {
  detail::commit_staged(staged);
}

}  // namespace lmt::data
