// lmt::data (private): what every converter shares: a decoded split in memory, label checks,
// and writing train.h5 + test.h5 together (both or neither).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <lmt/data/convert.h>
#include <lmt/data/dataset_file.h>

namespace lmt::data::detail {

struct DecodedSplit {
  std::vector<uint8_t> images;  // NHWC
  std::vector<int32_t> labels;
};

// Throws DataError naming file if a label is not below num_classes.
void check_labels(const std::vector<int32_t>& labels, int64_t num_classes, const std::string& file);

// Computes mean/std on train, writes both splits to temporary names and renames them into
// out_dir only when both are complete. info.size is taken from each split.
void write_train_test(const std::string& out_dir, DatasetInfo info, const DecodedSplit& train,
                      const DecodedSplit& test, const ConvertProgress& progress);

void report(const ConvertProgress& progress, const std::string& line);

}  // namespace lmt::data::detail
