// lmt::data: reading the dataset file schema (attributes, images, labels) with the HDF5 C API.
// Every failure becomes a DataError naming the file and the attribute or dataset.
#include <lmt/data/dataset_file.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "hdf5_guard.h"
#include "hdf5_handle.h"
#include "sharded_read.h"

namespace lmt::data {
namespace detail {
std::mutex& hdf5_mutex() {
  static std::mutex mutex;
  return mutex;
}
}  // namespace detail

namespace {
using detail::checked;
using detail::fail;
using detail::H5Handle;

H5Handle open_attribute(hid_t file, const std::string& path, const std::string& name) {
  if (H5Aexists(file, name.c_str()) <= 0) fail(path, "attribute '" + name + "' missing");
  return checked(H5Aopen(file, name.c_str(), H5P_DEFAULT), H5Aclose, path,
                 "cannot open attribute '" + name + "'");
}

hssize_t attribute_points(hid_t attr, const std::string& path, const std::string& name) {
  H5Handle space =
      checked(H5Aget_space(attr), H5Sclose, path, "attribute '" + name + "' has no dataspace");
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) fail(path, "attribute '" + name + "' has an unreadable dataspace");
  return n;
}

H5T_class_t attribute_class(hid_t attr, const std::string& path, const std::string& name) {
  H5Handle type = checked(H5Aget_type(attr), H5Tclose, path, "attribute '" + name + "' type");
  return H5Tget_class(type.get());
}

int64_t read_int_attribute(hid_t file, const std::string& path, const std::string& name) {
  H5Handle attr = open_attribute(file, path, name);
  if (attribute_class(attr.get(), path, name) != H5T_INTEGER ||
      attribute_points(attr.get(), path, name) != 1)
    fail(path, "attribute '" + name + "' must be one integer");
  int64_t value = 0;
  checked(H5Aread(attr.get(), H5T_NATIVE_INT64, &value), path,
          "cannot read attribute '" + name + "'");
  return value;
}

std::vector<float> read_float_attribute(hid_t file, const std::string& path,
                                        const std::string& name) {
  H5Handle attr = open_attribute(file, path, name);
  H5T_class_t cls = attribute_class(attr.get(), path, name);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    fail(path, "attribute '" + name + "' must be numeric");
  std::vector<float> values(static_cast<size_t>(attribute_points(attr.get(), path, name)));
  if (!values.empty())
    checked(H5Aread(attr.get(), H5T_NATIVE_FLOAT, values.data()), path,
            "cannot read attribute '" + name + "'");
  return values;
}

// Reads variable-length (h5py's default, ours) or fixed-length string attributes.
std::vector<std::string> read_string_attribute(hid_t file, const std::string& path,
                                               const std::string& name) {
  H5Handle attr = open_attribute(file, path, name);
  const std::string what = "attribute '" + name + "'";
  H5Handle file_type = checked(H5Aget_type(attr.get()), H5Tclose, path, what + " type");
  if (H5Tget_class(file_type.get()) != H5T_STRING) fail(path, what + " must be a string");
  H5Handle space = checked(H5Aget_space(attr.get()), H5Sclose, path, what + " dataspace");
  const auto n = static_cast<size_t>(H5Sget_simple_extent_npoints(space.get()));
  H5Handle mem_type = checked(H5Tcopy(H5T_C_S1), H5Tclose, path, what + " type");
  std::vector<std::string> out;
  if (n == 0) return out;
  if (H5Tis_variable_str(file_type.get()) > 0) {
    checked(H5Tset_size(mem_type.get(), H5T_VARIABLE), path, what);
    checked(H5Tset_cset(mem_type.get(), H5Tget_cset(file_type.get())), path, what);
    std::vector<char*> buffer(n, nullptr);
    checked(H5Aread(attr.get(), mem_type.get(), buffer.data()), path, "cannot read " + what);
    for (char* s : buffer) out.emplace_back(s != nullptr ? s : "");
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mem_type.get(), space.get(), H5P_DEFAULT, buffer.data());
#else
    H5Dvlen_reclaim(mem_type.get(), space.get(), H5P_DEFAULT, buffer.data());
#endif
  } else {
    const size_t width = H5Tget_size(file_type.get());
    if (width == 0 || width > (size_t{1} << 20)) fail(path, what + " has an implausible width");
    checked(H5Tset_size(mem_type.get(), width), path, what);
    checked(H5Tset_cset(mem_type.get(), H5Tget_cset(file_type.get())), path, what);
    checked(H5Tset_strpad(mem_type.get(), H5T_STR_NULLPAD), path, what);
    std::vector<char> buffer(n * width);
    checked(H5Aread(attr.get(), mem_type.get(), buffer.data()), path, "cannot read " + what);
    for (size_t i = 0; i < n; ++i)
      out.emplace_back(&buffer[i * width], strnlen(&buffer[i * width], width));
  }
  return out;
}

std::vector<hsize_t> dataset_dims(hid_t dataset, const std::string& path, const std::string& name) {
  H5Handle space = checked(H5Dget_space(dataset), H5Sclose, path, "dataset '" + name + "' space");
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail(path, "dataset '" + name + "' has an unreadable shape");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

H5Handle open_dataset(hid_t file, const std::string& path, const std::string& name) {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) fail(path, "dataset '" + name + "' missing");
  return checked(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose, path,
                 "cannot open dataset '" + name + "'");
}

void require_integer_type(hid_t dataset, const std::string& path, const std::string& name,
                          size_t bytes) {
  H5Handle type = checked(H5Dget_type(dataset), H5Tclose, path, "dataset '" + name + "' type");
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != bytes)
    fail(path, "dataset '" + name + "' must be a " + std::to_string(bytes * 8) + "-bit integer");
}

H5Handle open_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, "not an HDF5 file");
  return checked(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, path,
                 "cannot open HDF5 file");
}

DatasetInfo read_info(hid_t file, const std::string& path) {
  DatasetInfo info;
  info.num_classes = read_int_attribute(file, path, "num_classes");
  info.height = read_int_attribute(file, path, "height");
  info.width = read_int_attribute(file, path, "width");
  info.channels = read_int_attribute(file, path, "channels");
  const std::vector<std::string> source = read_string_attribute(file, path, "source");
  if (source.size() != 1) fail(path, "attribute 'source' must be one string");
  info.source = source[0];
  info.class_names = read_string_attribute(file, path, "class_names");
  info.mean = read_float_attribute(file, path, "mean");
  info.std = read_float_attribute(file, path, "std");
  if (info.num_classes < 1) fail(path, "attribute 'num_classes' must be at least 1");
  if (info.height < 1 || info.width < 1 || info.channels < 1)
    fail(path, "attributes 'height', 'width', 'channels' must be positive");
  if (static_cast<int64_t>(info.class_names.size()) != info.num_classes)
    fail(path, "attribute 'class_names' has " + std::to_string(info.class_names.size()) +
                   " entries, expected num_classes = " + std::to_string(info.num_classes));
  for (const char* name : {"mean", "std"}) {
    const bool is_std = std::string(name) == "std";
    const auto& v = is_std ? info.std : info.mean;
    if (static_cast<int64_t>(v.size()) != info.channels)
      fail(path, std::string("attribute '") + name + "' has " + std::to_string(v.size()) +
                     " entries, expected channels = " + std::to_string(info.channels));
    // The loader divides by std: inf, nan or 0 would only surface as a diverged training.
    for (size_t c = 0; c < v.size(); ++c)
      if (!std::isfinite(v[c]) || (is_std && !(v[c] > 0)))
        fail(path, std::string("attribute '") + name + "' entry " + std::to_string(c) + " = " +
                       std::to_string(v[c]) + " must be finite" + (is_std ? " and positive" : ""));
  }

  if (H5Aexists(file, "layout") > 0) {  // sharded index (sharded.h)
    const auto layout = read_string_attribute(file, path, "layout");
    if (layout.size() != 1 || layout[0] != "shards")
      fail(path, "attribute 'layout' must be \"shards\"");
    const auto storage = read_string_attribute(file, path, "storage");
    if (storage.size() != 1 || (storage[0] != "uint8" && storage[0] != "jpeg"))
      fail(path, "attribute 'storage' must be \"uint8\" or \"jpeg\"");
    info.storage = storage[0];
    info.shard_files = read_string_attribute(file, path, "shard_files");
    info.skipped_images = read_int_attribute(file, path, "skipped_images");
    H5Handle labels = open_dataset(file, path, "labels");
    require_integer_type(labels.get(), path, "labels", 4);
    const std::vector<hsize_t> label_dims = dataset_dims(labels.get(), path, "labels");
    if (label_dims.size() != 1) fail(path, "dataset 'labels' must be one-dimensional");
    info.size = static_cast<int64_t>(label_dims[0]);
    return info;
  }
  if (H5Aexists(file, "skipped_images") > 0)
    info.skipped_images = read_int_attribute(file, path, "skipped_images");

  H5Handle images = open_dataset(file, path, "images");
  require_integer_type(images.get(), path, "images", 1);
  const std::vector<hsize_t> dims = dataset_dims(images.get(), path, "images");
  if (dims.size() != 4 || static_cast<int64_t>(dims[1]) != info.height ||
      static_cast<int64_t>(dims[2]) != info.width || static_cast<int64_t>(dims[3]) != info.channels)
    fail(path, "dataset 'images' must have shape [N, height, width, channels] = [N, " +
                   std::to_string(info.height) + ", " + std::to_string(info.width) + ", " +
                   std::to_string(info.channels) + "]");
  info.size = static_cast<int64_t>(dims[0]);
  H5Handle labels = open_dataset(file, path, "labels");
  require_integer_type(labels.get(), path, "labels", 4);
  const std::vector<hsize_t> label_dims = dataset_dims(labels.get(), path, "labels");
  if (label_dims.size() != 1 || static_cast<int64_t>(label_dims[0]) != info.size)
    fail(path, "dataset 'labels' must have shape [N] with N = " + std::to_string(info.size) +
                   " (the number of images)");
  return info;
}

void read_image_range(hid_t images, const DatasetInfo& info, const std::string& path, int64_t start,
                      int64_t count, uint8_t* out) {
  if (start < 0 || count < 0 || start + count > info.size)
    fail(path, "image range [" + std::to_string(start) + ", " + std::to_string(start + count) +
                   ") outside dataset 'images' of " + std::to_string(info.size));
  if (count == 0) return;
  H5Handle space = checked(H5Dget_space(images), H5Sclose, path, "dataset 'images' space");
  const hsize_t offset[4] = {static_cast<hsize_t>(start), 0, 0, 0};
  const hsize_t extent[4] = {static_cast<hsize_t>(count), static_cast<hsize_t>(info.height),
                             static_cast<hsize_t>(info.width), static_cast<hsize_t>(info.channels)};
  checked(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, offset, nullptr, extent, nullptr), path,
          "dataset 'images' selection");
  H5Handle memory = checked(H5Screate_simple(4, extent, nullptr), H5Sclose, path, "memory space");
  checked(H5Dread(images, H5T_NATIVE_UINT8, memory.get(), space.get(), H5P_DEFAULT, out), path,
          "cannot read dataset 'images'");
}

std::vector<int32_t> read_all_labels(hid_t file, const DatasetInfo& info, const std::string& path) {
  H5Handle labels = open_dataset(file, path, "labels");
  std::vector<int32_t> out(static_cast<size_t>(info.size));
  if (!out.empty())
    checked(H5Dread(labels.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
            path, "cannot read dataset 'labels'");
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] < 0 || out[i] >= info.num_classes)
      fail(path, "dataset 'labels' entry " + std::to_string(i) + " = " + std::to_string(out[i]) +
                     " is outside [0, num_classes = " + std::to_string(info.num_classes) + ")");
  return out;
}
}  // namespace

InMemoryDataset read_dataset(const std::string& path) {
  DatasetReader reader(path);
  InMemoryDataset data;
  data.info = reader.info();
  data.images.resize(static_cast<size_t>(data.info.size * data.info.image_bytes()));
  reader.read_images(0, data.info.size, data.images.data());
  data.labels = reader.read_labels();
  return data;
}

std::vector<uint8_t> read_images(const std::string& path, int64_t start, int64_t count) {
  DatasetReader reader(path);
  std::vector<uint8_t> out(static_cast<size_t>(std::max<int64_t>(count, 0)) *
                           static_cast<size_t>(reader.info().image_bytes()));
  reader.read_images(start, count, out.data());
  return out;
}

namespace {
struct OpenFile {
  std::string path;
  DatasetInfo info;
  H5Handle file, images;
  std::unique_ptr<detail::ShardSet> shards;  // sharded layout
};
}  // namespace

struct DatasetReader::Impl : OpenFile {};

namespace {
// What the constructor reads: the attributes, the datasets' shapes, the shard files.
void open_reader(const std::string& path, OpenFile& m) {
  m.path = path;
  m.file = open_file(path);
  m.info = read_info(m.file.get(), path);
  if (!m.info.shard_files.empty() || m.info.storage != "uint8" ||
      H5Aexists(m.file.get(), "layout") > 0)
    m.shards = std::make_unique<detail::ShardSet>(path, m.file.get(), m.info);
  else
    m.images = open_dataset(m.file.get(), path, "images");
}

// Images up to this size are read whole by the isolated check of an unchecksummed file, which
// walks its whole chunk index (the parent's later reads then follow verified paths).
constexpr int64_t kIsolatedImageReadLimit = int64_t{256} << 20;

// Files without metadata checksums or with variable-length strings are first opened and read
// (attributes, shards, labels, small image sets whole) in a forked child (hdf5_guard.h): HDF5
// 1.10 crashes or hangs on some corrupt global heaps and unchecksummed headers, and a crash
// cannot be caught in-process. Checksummed files (lmt's own format) are read directly.
void check_before_reading(const std::string& path) {
  if (detail::in_isolated_check()) return;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "no such file");
  const int version = detail::superblock_version(path);
  if (version < 0) fail(path, "not an HDF5 file");
  bool isolate = version < 2;
  if (!isolate) {
    H5Handle probe = open_file(path);
    isolate = detail::has_variable_length_strings(probe.get());
  }
  if (!isolate) return;
  // 10 s for the metadata (a fuzzed file that hangs HDF5 is refused after this), plus the
  // images it reads at a slow 10 MB/s (a network file system), so a good file is never refused.
  const auto bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  const int timeout_s =
      10 + static_cast<int>(std::min(ec ? 0 : bytes, kIsolatedImageReadLimit) / 10'000'000);
  detail::run_isolated_check(path, timeout_s, [&path] {
    OpenFile m;
    open_reader(path, m);
    (void)read_all_labels(m.file.get(), m.info, path);
    if (!m.shards && m.info.size * m.info.image_bytes() <= kIsolatedImageReadLimit) {
      std::vector<uint8_t> all(static_cast<size_t>(m.info.size * m.info.image_bytes()));
      read_image_range(m.images.get(), m.info, path, 0, m.info.size, all.data());
    }
  });
}
}  // namespace

DatasetInfo read_dataset_info(const std::string& path) {
  detail::Hdf5Lock lock;
  check_before_reading(path);
  H5Handle file = open_file(path);
  return read_info(file.get(), path);
}

DatasetReader::DatasetReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  detail::Hdf5Lock lock;
  try {
    check_before_reading(path);
    open_reader(path, *impl_);
  } catch (...) {
    impl_->shards.reset();  // under the lock, before the file
    impl_->images.reset();
    impl_->file.reset();
    throw;
  }
}

DatasetReader::~DatasetReader() {
  detail::Hdf5Lock lock;
  impl_->shards.reset();
  impl_->images.reset();
  impl_->file.reset();
}

const DatasetInfo& DatasetReader::info() const { return impl_->info; }
const std::string& DatasetReader::path() const { return impl_->path; }

void DatasetReader::read_images(int64_t start, int64_t count, uint8_t* out) const {
  detail::Hdf5Lock lock;
  if (impl_->shards)
    impl_->shards->read_images(start, count, out);
  else
    read_image_range(impl_->images.get(), impl_->info, impl_->path, start, count, out);
}

std::vector<uint8_t> DatasetReader::read_encoded(int64_t index) const {
  detail::Hdf5Lock lock;
  if (!impl_->shards) fail(impl_->path, "holds decoded images, not JPEG bytes (storage uint8)");
  return impl_->shards->read_encoded(index);
}

std::vector<std::vector<uint8_t>> DatasetReader::read_encoded_run(int64_t start,
                                                                  int64_t count) const {
  detail::Hdf5Lock lock;
  if (!impl_->shards) fail(impl_->path, "holds decoded images, not JPEG bytes (storage uint8)");
  return impl_->shards->read_encoded_run(start, count);
}

std::vector<int32_t> DatasetReader::read_labels() const {
  detail::Hdf5Lock lock;
  return read_all_labels(impl_->file.get(), impl_->info, impl_->path);
}

}  // namespace lmt::data
