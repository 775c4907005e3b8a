// lmt::data: listing JPEG trees and the threaded decode/resize pipeline of the Tiny-ImageNet and
// ImageNet converters (blocks of images processed in parallel, consumed in list order).
#include "convert_images.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <lmt/data/image_resize.h>
#include <lmt/data/jpeg.h>

#include "convert_common.h"
#include "hdf5_handle.h"

namespace lmt::data::detail {
namespace fs = std::filesystem;

std::vector<std::string> list_jpegs(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, "missing folder");
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (entry.is_regular_file() && (ext == ".jpeg" || ext == ".jpg"))
      out.push_back(entry.path().string());
  }
  if (ec) fail(dir, "cannot list folder: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> list_subdirs(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, "missing folder");
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_directory()) out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> class_names_for(const std::vector<std::string>& wnids,
                                         const std::vector<std::string>& candidates) {
  std::map<std::string, std::string> words;
  for (const std::string& file : candidates) {
    std::ifstream in(file);
    if (!in) continue;
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      const size_t cut = line.find_first_of("\t ");
      if (cut == std::string::npos) continue;
      words[line.substr(0, cut)] = line.substr(line.find_first_not_of("\t ", cut));
    }
    break;
  }
  std::vector<std::string> names;
  for (const std::string& w : wnids) names.push_back(words.count(w) ? words[w] : w);
  return names;
}

std::vector<SourceImage> label_flat_folder(const std::string& image_dir,
                                           const std::string& labels_file,
                                           const std::map<std::string, int32_t>& class_of) {
  std::ifstream in(labels_file);
  if (!in) fail(labels_file, "cannot open labels file");
  const bool csv = fs::path(labels_file).extension() == ".csv";
  std::map<std::string, int32_t> label_of;  // file name -> label
  int64_t line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (csv) {
      if (line_number == 1) continue;  // ImageId,PredictionString
      std::replace(line.begin(), line.end(), ',', ' ');
    }
    std::istringstream fields(line);
    std::string file, wnid;
    if (!(fields >> file >> wnid)) continue;
    if (csv) file += ".JPEG";
    const auto it = class_of.find(wnid);
    if (it == class_of.end())
      fail(labels_file,
           "line " + std::to_string(line_number) + ": class '" + wnid + "' has no train folder");
    label_of[file] = it->second;
  }
  std::vector<SourceImage> out;
  for (const std::string& path : list_jpegs(image_dir)) {
    const auto it = label_of.find(fs::path(path).filename().string());
    if (it == label_of.end()) fail(path, "no label in " + labels_file);
    out.push_back({path, it->second});
  }
  return out;
}

Processed process_image(const std::string& path, int64_t size) {
  Processed p;
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot open");
    std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    const Image image = decode_jpeg(file.data(), file.size(), path);
    const uint8_t* px = image.pixels.data();
    int64_t n = image.height * image.width;
    if (size > 0) {
      p.bytes = resize_box(image, centre_crop_box(image.height, image.width), size, size);
      px = p.bytes.data();
      n = size * size;
    } else {
      p.bytes = std::move(file);
    }
    p.pixels = n;
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < 3; ++c) {
        const int64_t v = px[i * 3 + c];
        p.sum[c] += v;
        p.sum_sq[c] += v * v;
      }
  } catch (const std::exception& e) {
    p = Processed();
    p.error = e.what();
  }
  return p;
}

int64_t run_pipeline(const std::vector<SourceImage>& images, int64_t size,
                     const ImageConvertOptions& options, const std::string& split,
                     const ConvertProgress& progress,
                     const std::function<void(const SourceImage&, Processed&)>& sink) {
  const int threads = std::max(1, options.threads());
  const size_t block = size_t(64 * threads);
  int64_t skipped = 0;
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  std::vector<Processed> results;
  for (size_t first = 0; first < images.size(); first += block) {
    const size_t count = std::min(block, images.size() - first);
    results.assign(count, Processed());
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next++) < count;)
        results[i] = process_image(images[first + i].path, size);
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    for (size_t i = 0; i < count; ++i) {
      if (!results[i].error.empty()) {
        if (!options.skip_bad_images())
          throw DataError(results[i].error + " (use --on-bad-image skip to leave it out)");
        ++skipped;
        report(progress, split + ": skipped " + results[i].error);
        continue;
      }
      sink(images[first + i], results[i]);
    }
    const auto now = std::chrono::steady_clock::now();
    const size_t done = first + count;
    if (now - last_report > std::chrono::seconds(5) || done == images.size()) {
      const double seconds = std::chrono::duration<double>(now - start).count();
      report(progress, split + ": " + std::to_string(done) + "/" + std::to_string(images.size()) +
                           " images, " + std::to_string(skipped) + " skipped, " +
                           std::to_string(int64_t(double(done) / std::max(seconds, 1e-9))) +
                           " images/s");
      last_report = now;
    }
  }
  return skipped;
}

void ChannelSums::add(const Processed& p) {
  pixels += p.pixels;
  for (int c = 0; c < 3; ++c) {
    sum[c] += double(p.sum[c]);
    sum_sq[c] += double(p.sum_sq[c]);
  }
}

void ChannelSums::finish(std::vector<float>& mean, std::vector<float>& std) const {
  mean.assign(3, 0.f);
  std.assign(3, 0.f);
  if (pixels == 0) return;
  for (int c = 0; c < 3; ++c) {
    const double m = sum[c] / (255.0 * double(pixels));
    const double var = std::max(0.0, sum_sq[c] / (255.0 * 255.0 * double(pixels)) - m * m);
    mean[c] = float(m);
    std[c] = float(std::sqrt(var));
  }
}

}  // namespace lmt::data::detail
