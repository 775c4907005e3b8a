// lmt::data: writing one split in the dataset file schema (built in memory, checksummed), the
// atomic write of the bytes (temporary name, fsync, rename), and the per-channel pixel statistics.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <lmt/data/dataset_file.h>
#include <lmt/io/atomic_file.h>

#include "hdf5_attributes.h"
#include "hdf5_handle.h"
#include "staged_write.h"

namespace lmt::data {
namespace {
using detail::checked;
using detail::fail;
using detail::H5Handle;
using detail::write_checksummed;
using detail::write_float_attribute;
using detail::write_int_attribute;
using detail::write_string_attribute;
}  // namespace

namespace detail {
H5Handle create_memory_file(const std::string& path, size_t expected_bytes) {
  H5Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, path, "file access properties");
  // Grows in steps of the expected size (plus metadata slack): usually one allocation.
  checked(H5Pset_fapl_core(fapl.get(), expected_bytes + (size_t{1} << 20), 0), path,
          "in-memory file driver");
  checked(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110), path,
          "file format version");
  H5Handle fcpl = checked(H5Pcreate(H5P_FILE_CREATE), H5Pclose, path, "file creation properties");
  checked(H5Pset_obj_track_times(fcpl.get(), 0), path, "file creation properties");
  return checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose, path,
                 "cannot create the HDF5 file in memory");
}

namespace {
// Bob Jenkins' lookup3 hashlittle(), byte-wise: the checksum of HDF5 metadata.
uint32_t lookup3(const uint8_t* k, size_t length) {
  const auto rot = [](uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  uint32_t a, b, c;
  a = b = c = 0xdeadbeefu + static_cast<uint32_t>(length);
  while (length > 12) {
    a += k[0] + (uint32_t(k[1]) << 8) + (uint32_t(k[2]) << 16) + (uint32_t(k[3]) << 24);
    b += k[4] + (uint32_t(k[5]) << 8) + (uint32_t(k[6]) << 16) + (uint32_t(k[7]) << 24);
    c += k[8] + (uint32_t(k[9]) << 8) + (uint32_t(k[10]) << 16) + (uint32_t(k[11]) << 24);
    a -= c, a ^= rot(c, 4), c += b, b -= a, b ^= rot(a, 6), a += c, c -= b, c ^= rot(b, 8), b += a;
    a -= c, a ^= rot(c, 16), c += b, b -= a, b ^= rot(a, 19), a += c, c -= b, c ^= rot(b, 4),
        b += a;
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  uint8_t tail[12] = {};
  std::memcpy(tail, k, length);
  a += tail[0] + (uint32_t(tail[1]) << 8) + (uint32_t(tail[2]) << 16) + (uint32_t(tail[3]) << 24);
  b += tail[4] + (uint32_t(tail[5]) << 8) + (uint32_t(tail[6]) << 16) + (uint32_t(tail[7]) << 24);
  c += tail[8] + (uint32_t(tail[9]) << 8) + (uint32_t(tail[10]) << 16) + (uint32_t(tail[11]) << 24);
  c ^= b, c -= rot(b, 14), a ^= c, a -= rot(c, 11), b ^= a, b -= rot(a, 25), c ^= b,
      c -= rot(b, 16);
  a ^= c, a -= rot(c, 4), b ^= a, b -= rot(a, 14), c ^= b, c -= rot(b, 24);
  return c;
}

// HDF5 1.10's H5Fget_file_image clears the superblock's status flags (file open for writing) in
// the copy but leaves the checksum of the flagged superblock: the image would not open
// ("incorrect metadata checksum"). Recompute it for superblock versions 2 and 3.
void fix_superblock_checksum(std::vector<uint8_t>& image, const std::string& path) {
  if (image.size() < 12 || image[8] < 2) return;
  const size_t covered = 12 + 4 * size_t(image[9]);  // signature..flags, 4 addresses
  if (image.size() < covered + 4) fail(path, "in-memory HDF5 file image too short");
  const uint32_t sum = lookup3(image.data(), covered);
  for (int i = 0; i < 4; ++i) image[covered + i] = uint8_t(sum >> (8 * i));
}
}  // namespace

std::vector<uint8_t> close_to_image(H5Handle& file, const std::string& path) {
  checked(H5Fflush(file.get(), H5F_SCOPE_LOCAL), path, "cannot flush the in-memory HDF5 file");
  const ssize_t size = H5Fget_file_image(file.get(), nullptr, 0);
  if (size <= 0) fail(path, "cannot get the in-memory HDF5 file image");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (H5Fget_file_image(file.get(), bytes.data(), bytes.size()) != size)
    fail(path, "cannot copy the in-memory HDF5 file image");
  fix_superblock_checksum(bytes, path);
  if (!file.reset()) fail(path, "cannot close the in-memory HDF5 file");
  return bytes;
}

void write_checksummed(hid_t file, const std::string& path, const char* name, hid_t file_type,
                       hid_t mem_type, const std::vector<hsize_t>& dims, hsize_t chunk_rows,
                       const void* data) {
  const std::string what = std::string("dataset '") + name + "'";
  H5Handle space = checked(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose, path,
                           what + " space");
  H5Handle dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, path, what + " properties");
  std::vector<hsize_t> chunk = dims;
  chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(chunk_rows, dims[0]));
  for (hsize_t& c : chunk) c = std::max<hsize_t>(c, 1);
  checked(H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data()), path, what + " chunking");
  checked(H5Pset_fletcher32(dcpl.get()), path, what + " Fletcher-32 filter");
  checked(H5Pset_obj_track_times(dcpl.get(), 0), path, what + " properties");
  H5Handle dataset =
      checked(H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
              H5Dclose, path, "cannot create " + what);
  if (H5Sget_simple_extent_npoints(space.get()) > 0)
    checked(H5Dwrite(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
            "cannot write " + what);
}

void write_int_attribute(hid_t file, const std::string& path, const char* name, int64_t value) {
  const std::string what = std::string("attribute '") + name + "'";
  H5Handle space = checked(H5Screate(H5S_SCALAR), H5Sclose, path, what + " dataspace");
  H5Handle attr =
      checked(H5Acreate2(file, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose, path, "cannot create " + what);
  checked(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), path, "cannot write " + what);
}

void write_float_attribute(hid_t file, const std::string& path, const char* name,
                           const std::vector<float>& values) {
  const std::string what = std::string("attribute '") + name + "'";
  const hsize_t n = values.size();
  H5Handle space = checked(H5Screate_simple(1, &n, nullptr), H5Sclose, path, what + " dataspace");
  H5Handle attr =
      checked(H5Acreate2(file, name, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose, path, "cannot create " + what);
  checked(H5Awrite(attr.get(), H5T_NATIVE_FLOAT, values.data()), path, "cannot write " + what);
}

void write_string_attribute(hid_t file, const std::string& path, const char* name,
                            const std::vector<std::string>& values, bool scalar) {
  const std::string what = std::string("attribute '") + name + "'";
  size_t width = 1;
  for (const std::string& s : values) width = std::max(width, s.size());
  H5Handle type = checked(H5Tcopy(H5T_C_S1), H5Tclose, path, what + " type");
  checked(H5Tset_size(type.get(), width), path, what + " type");
  checked(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), path, what + " type");
  checked(H5Tset_cset(type.get(), H5T_CSET_UTF8), path, what + " type");
  const hsize_t n = values.size();
  H5Handle space = checked(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr),
                           H5Sclose, path, what + " dataspace");
  H5Handle attr = checked(H5Acreate2(file, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                          H5Aclose, path, "cannot create " + what);
  std::vector<char> buffer(std::max<size_t>(values.size(), 1) * width, '\0');
  for (size_t i = 0; i < values.size(); ++i)
    std::memcpy(buffer.data() + i * width, values[i].data(), values[i].size());
  checked(H5Awrite(attr.get(), type.get(), buffer.data()), path, "cannot write " + what);
}
}  // namespace detail

namespace {

std::vector<uint8_t> build_hdf5(const std::string& path, const DatasetInfo& info,
                                const uint8_t* images, const int32_t* labels) {
  detail::Hdf5Lock lock;
  const auto n = static_cast<hsize_t>(info.size);
  H5Handle file =
      detail::create_memory_file(path, static_cast<size_t>(info.size * (info.image_bytes() + 4)));
  // One image per chunk (a random read touches one chunk); labels in chunks of 64 Ki entries.
  write_checksummed(file.get(), path, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8,
                    {n, static_cast<hsize_t>(info.height), static_cast<hsize_t>(info.width),
                     static_cast<hsize_t>(info.channels)},
                    1, images);
  write_checksummed(file.get(), path, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, 65536,
                    labels);
  write_int_attribute(file.get(), path, "num_classes", info.num_classes);
  write_int_attribute(file.get(), path, "height", info.height);
  write_int_attribute(file.get(), path, "width", info.width);
  write_int_attribute(file.get(), path, "channels", info.channels);
  write_string_attribute(file.get(), path, "source", {info.source}, true);
  write_string_attribute(file.get(), path, "class_names", info.class_names, false);
  write_float_attribute(file.get(), path, "mean", info.mean);
  write_float_attribute(file.get(), path, "std", info.std);
  write_int_attribute(file.get(), path, "skipped_images", info.skipped_images);
  return detail::close_to_image(file, path);
}

std::string parent_dir(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}
}  // namespace

void channel_statistics(const uint8_t* images_nhwc, int64_t num_pixels, int64_t channels,
                        std::vector<float>& mean, std::vector<float>& std) {
  // Exact byte histograms per channel, then the moments in double precision.
  std::vector<std::array<int64_t, 256>> histogram(static_cast<size_t>(channels));
  for (auto& h : histogram) h.fill(0);
  for (int64_t p = 0; p < num_pixels; ++p)
    for (int64_t c = 0; c < channels; ++c) ++histogram[c][images_nhwc[p * channels + c]];
  mean.assign(static_cast<size_t>(channels), 0.f);
  std.assign(static_cast<size_t>(channels), 0.f);
  if (num_pixels == 0) return;
  for (int64_t c = 0; c < channels; ++c) {
    double sum = 0, sum_sq = 0;
    for (int v = 0; v < 256; ++v) {
      const double x = v / 255.0;
      sum += histogram[c][v] * x;
      sum_sq += histogram[c][v] * x * x;
    }
    const double m = sum / static_cast<double>(num_pixels);
    const double var = std::max(0.0, sum_sq / static_cast<double>(num_pixels) - m * m);
    mean[c] = static_cast<float>(m);
    std[c] = static_cast<float>(std::sqrt(var));
  }
}

namespace detail {
std::string write_dataset_temp(const std::string& path, const DatasetInfo& given,
                               const uint8_t* images, const int32_t* labels) {
  DatasetInfo info = given;
  if (info.size < 0) fail(path, "dataset size must not be negative");
  if (info.height < 1 || info.width < 1 || info.channels < 1)
    fail(path, "height, width and channels must be positive");
  if (info.num_classes < 1) fail(path, "num_classes must be at least 1");
  if (static_cast<int64_t>(info.class_names.size()) != info.num_classes)
    fail(path, "class_names has " + std::to_string(info.class_names.size()) +
                   " entries, expected num_classes = " + std::to_string(info.num_classes));
  if (info.size > 0 && (images == nullptr || labels == nullptr))
    fail(path, "no image or label data given");
  if (info.mean.empty() && info.std.empty())
    channel_statistics(images, info.size * info.height * info.width, info.channels, info.mean,
                       info.std);
  if (static_cast<int64_t>(info.mean.size()) != info.channels ||
      static_cast<int64_t>(info.std.size()) != info.channels)
    fail(path, "mean and std need one entry per channel (" + std::to_string(info.channels) + ")");
  for (int64_t i = 0; i < info.size; ++i)
    if (labels[i] < 0 || labels[i] >= info.num_classes)
      fail(path, "label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                     " is outside [0, num_classes = " + std::to_string(info.num_classes) + ")");

  for (int64_t c = 0; c < info.channels; ++c)
    if (!std::isfinite(info.mean[c]) || !std::isfinite(info.std[c]) || !(info.std[c] > 0))
      fail(path, "mean/std of channel " + std::to_string(c) + " = " + std::to_string(info.mean[c]) +
                     "/" + std::to_string(info.std[c]) +
                     " (std must be finite and positive; constant images?)");
  return write_temp_file(path, build_hdf5(path, info, images, labels));
}

std::string write_temp_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  try {  // lmt::io's one checked write: every byte, fsync, close; removed again on failure
    io::write_file_synced(
        temp, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  } catch (const io::IoError& e) {
    fail(path, std::string(e.what()) + " (the temporary file was removed)");
  }
  return temp;
}

void commit_staged(const std::vector<std::pair<std::string, std::string>>& staged) {
  std::vector<std::string> renamed;
  for (const auto& [temp, final_path] : staged) {
    if (std::rename(temp.c_str(), final_path.c_str()) != 0) {
      std::vector<std::string> cleanup = renamed;
      for (const auto& pair : staged) cleanup.push_back(pair.first);
      remove_quietly(cleanup);
      fail(final_path, "cannot rename " + temp + " into place");
    }
    renamed.push_back(final_path);
  }
  for (const auto& pair : staged) {
    try {
      io::fsync_directory(parent_dir(pair.second));
    } catch (const io::IoError& e) {
      fail(pair.second, e.what());
    }
  }
}

void remove_quietly(const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    std::error_code ec;
    std::filesystem::remove(p, ec);
  }
}
}  // namespace detail

void write_dataset(const std::string& path, const DatasetInfo& info, const uint8_t* images_nhwc,
                   const int32_t* labels) {
  const std::string temp = detail::write_dataset_temp(path, info, images_nhwc, labels);
  detail::commit_staged({{temp, path}});
}

}  // namespace lmt::data
