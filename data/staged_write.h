// lmt::data (private): the one atomic-write path of the data room: bytes written to a temporary
// name, fsynced, and renamed only when every file of a conversion is complete.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <lmt/data/dataset_file.h>

namespace lmt::data::detail {

// Writes bytes to path + ".tmp.<pid>", fsyncs and closes it, and returns that name. On failure
// (full disk, file size limit, I/O error) removes the temporary file and throws DataError naming
// path and the system's reason.
std::string write_temp_file(const std::string& path, const std::vector<uint8_t>& bytes);

// The split in the dataset schema, built in memory, then write_temp_file.
std::string write_dataset_temp(const std::string& path, const DatasetInfo& info,
                               const uint8_t* images_nhwc, const int32_t* labels);

// Renames each (temporary, final) pair in order and fsyncs the directories. If a rename fails,
// every temporary file and every final already renamed in this call are removed, then DataError.
void commit_staged(const std::vector<std::pair<std::string, std::string>>& staged);

// Removes files, ignoring errors (cleanup on a failure path).
void remove_quietly(const std::vector<std::string>& paths);

}  // namespace lmt::data::detail
