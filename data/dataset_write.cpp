// lmt::data: writing one split in the dataset file schema, atomically (temporary name, fsync,
// rename), and the per-channel pixel statistics stored with it.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <lmt/data/dataset_file.h>

#include "hdf5_attributes.h"
#include "hdf5_handle.h"
#include "staged_write.h"

namespace lmt::data {
namespace {
using detail::checked;
using detail::fail;
using detail::H5Handle;
using detail::write_float_attribute;
using detail::write_int_attribute;
using detail::write_string_attribute;
}  // namespace

namespace detail {
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

// Variable-length UTF-8 strings (what h5py writes for str); a scalar when scalar is true.
void write_string_attribute(hid_t file, const std::string& path, const char* name,
                            const std::vector<std::string>& values, bool scalar) {
  const std::string what = std::string("attribute '") + name + "'";
  H5Handle type = checked(H5Tcopy(H5T_C_S1), H5Tclose, path, what + " type");
  checked(H5Tset_size(type.get(), H5T_VARIABLE), path, what + " type");
  checked(H5Tset_cset(type.get(), H5T_CSET_UTF8), path, what + " type");
  const hsize_t n = values.size();
  H5Handle space = checked(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr),
                           H5Sclose, path, what + " dataspace");
  H5Handle attr = checked(H5Acreate2(file, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                          H5Aclose, path, "cannot create " + what);
  std::vector<const char*> pointers;
  for (const std::string& s : values) pointers.push_back(s.c_str());
  checked(H5Awrite(attr.get(), type.get(), pointers.data()), path, "cannot write " + what);
}
}  // namespace detail

namespace {

void write_hdf5(const std::string& temp, const std::string& path, const DatasetInfo& info,
                const uint8_t* images, const int32_t* labels) {
  detail::Hdf5Lock lock;
  H5Handle file = checked(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                          H5Fclose, path, "cannot create temporary file " + temp);
  {
    const hsize_t dims[4] = {static_cast<hsize_t>(info.size), static_cast<hsize_t>(info.height),
                             static_cast<hsize_t>(info.width), static_cast<hsize_t>(info.channels)};
    const hsize_t chunk[4] = {1, dims[1], dims[2], dims[3]};
    H5Handle space = checked(H5Screate_simple(4, dims, nullptr), H5Sclose, path, "images space");
    H5Handle dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, path, "images properties");
    checked(H5Pset_chunk(dcpl.get(), 4, chunk), path, "dataset 'images' chunking");
    H5Handle dataset = checked(H5Dcreate2(file.get(), "images", H5T_STD_U8LE, space.get(),
                                          H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                               H5Dclose, path, "cannot create dataset 'images'");
    if (info.size > 0)
      checked(H5Dwrite(dataset.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, images),
              path, "cannot write dataset 'images'");
  }
  {
    const hsize_t n = static_cast<hsize_t>(info.size);
    H5Handle space = checked(H5Screate_simple(1, &n, nullptr), H5Sclose, path, "labels space");
    H5Handle dataset = checked(H5Dcreate2(file.get(), "labels", H5T_STD_I32LE, space.get(),
                                          H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                               H5Dclose, path, "cannot create dataset 'labels'");
    if (info.size > 0)
      checked(H5Dwrite(dataset.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels),
              path, "cannot write dataset 'labels'");
  }
  write_int_attribute(file.get(), path, "num_classes", info.num_classes);
  write_int_attribute(file.get(), path, "height", info.height);
  write_int_attribute(file.get(), path, "width", info.width);
  write_int_attribute(file.get(), path, "channels", info.channels);
  write_string_attribute(file.get(), path, "source", {info.source}, true);
  write_string_attribute(file.get(), path, "class_names", info.class_names, false);
  write_float_attribute(file.get(), path, "mean", info.mean);
  write_float_attribute(file.get(), path, "std", info.std);
  write_int_attribute(file.get(), path, "skipped_images", info.skipped_images);
  if (!file.reset()) fail(path, "cannot close temporary file " + temp);
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) fail(path, "cannot open for fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail(path, "fsync failed");
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

  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  try {
    write_hdf5(temp, path, info, images, labels);
    fsync_path(temp, false);
  } catch (...) {
    remove_quietly({temp});
    throw;
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
  for (const auto& pair : staged) fsync_path(parent_dir(pair.second), true);
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
