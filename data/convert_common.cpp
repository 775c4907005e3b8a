// lmt::data: the converters' shared tail: label checks and the both-or-neither write of
// train.h5 and test.h5 with train statistics.
#include "convert_common.h"

#include <filesystem>
#include <iostream>

#include "hdf5_handle.h"
#include "staged_write.h"

namespace lmt::data::detail {

void report(const ConvertProgress& progress, const std::string& line) {
  if (progress)
    progress(line);
  else
    std::cerr << "lmt convert: " << line << "\n";
}

void check_labels(const std::vector<int32_t>& labels, int64_t num_classes,
                  const std::string& file) {
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= num_classes)
      fail(file, "label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                     " is not below num_classes = " + std::to_string(num_classes));
}

void write_train_test(const std::string& out_dir, DatasetInfo info, const DecodedSplit& train,
                      const DecodedSplit& test, const ConvertProgress& progress) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) fail(out_dir, "cannot create output directory: " + ec.message());
  const int64_t pixels = info.height * info.width;
  channel_statistics(train.images.data(), static_cast<int64_t>(train.labels.size()) * pixels,
                     info.channels, info.mean, info.std);

  const std::string train_path = (std::filesystem::path(out_dir) / "train.h5").string();
  const std::string test_path = (std::filesystem::path(out_dir) / "test.h5").string();
  info.size = static_cast<int64_t>(train.labels.size());
  const std::string train_temp =
      write_dataset_temp(train_path, info, train.images.data(), train.labels.data());
  info.size = static_cast<int64_t>(test.labels.size());
  std::string test_temp;
  try {
    test_temp = write_dataset_temp(test_path, info, test.images.data(), test.labels.data());
  } catch (...) {
    remove_quietly({train_temp});
    throw;
  }
  commit_staged({{train_temp, train_path}, {test_temp, test_path}});
  report(progress, "wrote " + train_path + " (" + std::to_string(train.labels.size()) +
                       " samples) and " + test_path + " (" + std::to_string(test.labels.size()) +
                       " samples)");
}

}  // namespace lmt::data::detail
