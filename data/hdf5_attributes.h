// lmt::data (private): what both writers (single file, sharded shards and index) share: the
// file format (in memory, checksummed, reproducible), checksummed datasets and the attributes of
// the dataset schema. Hold the HDF5 lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hdf5_handle.h"

namespace lmt::data::detail {

// A new HDF5 file built in memory (core driver, no backing store), so that HDF5 never meets a
// full disk: HDF5 1.10 leaves a dangling file id when H5Fclose fails to flush and crashes in its
// exit handler. Format bounds v110 (superblock 3, object headers, chunk indexes and attribute
// heaps carry Jenkins checksums, verified when read); object timestamps off, so the same
// content gives the same bytes.
H5Handle create_memory_file(const std::string& path, size_t expected_bytes);

// Flushes and closes the in-memory file and returns its bytes (the complete file).
std::vector<uint8_t> close_to_image(H5Handle& file, const std::string& path);

// A dataset written whole, chunked along the first dimension (chunk[0] rows per chunk, at least
// 1) with the Fletcher-32 filter: a changed byte fails the read of its chunk.
void write_checksummed(hid_t file, const std::string& path, const char* name, hid_t file_type,
                       hid_t mem_type, const std::vector<hsize_t>& dims, hsize_t chunk_rows,
                       const void* data);

void write_int_attribute(hid_t file, const std::string& path, const char* name, int64_t value);
void write_float_attribute(hid_t file, const std::string& path, const char* name,
                           const std::vector<float>& values);
// Fixed-length UTF-8 strings (NUL-padded to the longest), a scalar when scalar is true. Not
// variable-length: those live in HDF5's global heap, which has no checksum and whose corruption
// crashes HDF5 1.10. h5py reads them as bytes.
void write_string_attribute(hid_t file, const std::string& path, const char* name,
                            const std::vector<std::string>& values, bool scalar);

}  // namespace lmt::data::detail
