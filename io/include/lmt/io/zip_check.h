// lmt::io: the structural check of a zip archive (LibTorch's file format) before anything parses
// it, so a damaged model or checkpoint file is refused with one line instead of crashing the
// TorchScript parser or loading flipped weights.
#pragma once

#include <cstddef>
#include <string>

namespace lmt::io {

// Checks the end-of-central-directory record (zip64 too), every central-directory entry against
// its local header (name, method, sizes, bounds), and every entry's CRC-32 over its stored bytes
// (deflated entries are inflated first). Throws IoError "NAME: damaged archive: <what>" where
// NAME is `name` (the file's path), e.g. "entry 'a/data/3' fails its CRC-32 check".
void verify_zip_archive(const char* data, size_t size, const std::string& name);

}  // namespace lmt::io
