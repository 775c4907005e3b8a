// lmt::data (private): writing the scalar, float-array and string attributes of the dataset
// schema (shared by the single-file writer and the sharded index writer). Hold the HDF5 lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hdf5_handle.h"

namespace lmt::data::detail {

void write_int_attribute(hid_t file, const std::string& path, const char* name, int64_t value);
void write_float_attribute(hid_t file, const std::string& path, const char* name,
                           const std::vector<float>& values);
// Variable-length UTF-8 strings (what h5py writes for str); a scalar when scalar is true.
void write_string_attribute(hid_t file, const std::string& path, const char* name,
                            const std::vector<std::string>& values, bool scalar);

}  // namespace lmt::data::detail
