// Helpers of the data tests: a scratch directory per test and small synthetic datasets.
// Nothing here calls the code under test except write_dataset where a fixture needs a file.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <lmt/data/dataset_file.h>

namespace lmt::data::testing {

// A fresh directory removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;  // several scratch dirs in one test
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("lmt_data_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" +
             info->name() + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }
  bool empty() const { return std::filesystem::is_empty(path_); }

 private:
  std::filesystem::path path_;
};

// A small 3-class RGB dataset's attributes (5x4 images; class names with a slash and a space).
inline DatasetInfo small_info(int64_t n) {
  DatasetInfo info;
  info.size = n;
  info.height = 5;
  info.width = 4;
  info.channels = 3;
  info.num_classes = 3;
  info.source = "synthetic";
  info.class_names = {"a", "b/c", "d e"};
  info.mean = {0.1f, 0.2f, 0.3f};
  info.std = {0.4f, 0.5f, 0.6f};
  return info;
}

// Deterministic pseudo-random bytes (a plain LCG, independent of the sampler's generator).
inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& v : out) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

}  // namespace lmt::data::testing
