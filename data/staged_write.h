// lmt::data (private): the two halves of an atomic dataset write, so that a converter can
// write several splits to temporary names and rename them only when all are complete.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <lmt/data/dataset_file.h>

namespace lmt::data::detail {

// Writes the split to path + ".tmp.<pid>", closes and fsyncs it, and returns that name. On
// failure removes the temporary file and throws DataError naming path.
std::string write_dataset_temp(const std::string& path, const DatasetInfo& info,
                               const uint8_t* images_nhwc, const int32_t* labels);

// Renames each (temporary, final) pair in order and fsyncs the directories. If a rename fails,
// every temporary file and every final already renamed in this call are removed, then DataError.
void commit_staged(const std::vector<std::pair<std::string, std::string>>& staged);

// Removes files, ignoring errors (cleanup on a failure path).
void remove_quietly(const std::vector<std::string>& paths);

}  // namespace lmt::data::detail
