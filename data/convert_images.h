// lmt::data (private): what the JPEG-tree converters share: listing class folders and labelled
// files, and the multi-threaded decode/resize pipeline that hands results over in list order.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <lmt/data/convert.h>

namespace lmt::data::detail {

struct SourceImage {
  std::string path;
  int32_t label = 0;
};

// *.jpeg / *.jpg (any case) directly in dir, sorted; DataError naming dir if it is missing.
std::vector<std::string> list_jpegs(const std::string& dir);
// Sorted names of the subdirectories of dir.
std::vector<std::string> list_subdirs(const std::string& dir);
// "wnid<TAB>words" lines (words.txt) or "wnid words" (LOC_synset_mapping.txt); the first
// existing file of `candidates` is used; missing wnids get their wnid as name.
std::vector<std::string> class_names_for(const std::vector<std::string>& wnids,
                                         const std::vector<std::string>& candidates);
// Files of a flat folder labelled by a "file wnid ..." text file or a LOC_val_solution.csv
// ("ImageId,wnid ..."). DataError naming the labels file (unknown wnid) or the image (no label).
std::vector<SourceImage> label_flat_folder(const std::string& image_dir,
                                           const std::string& labels_file,
                                           const std::map<std::string, int32_t>& class_of);

// One processed image: its stored bytes and the per-channel sums of its decoded pixels.
struct Processed {
  std::vector<uint8_t> bytes;
  int64_t pixels = 0;
  int64_t sum[3] = {0, 0, 0}, sum_sq[3] = {0, 0, 0};
  std::string error;  // non-empty: bad image (message names the path)
};

// Reads, decodes and either resizes (size > 0: short side + centre crop, uint8 HWC) or keeps
// the file bytes (size == 0). Statistics are of the stored pixels (uint8) or the decoded image.
Processed process_image(const std::string& path, int64_t size);

// Runs process_image over `images` on `threads` threads and calls sink(i, result) in list order
// (deterministic output for any thread count). Bad images: with skip, counted and reported; else
// DataError with the image's message. Progress every few seconds. Returns the skipped count.
int64_t run_pipeline(const std::vector<SourceImage>& images, int64_t size,
                     const ImageConvertOptions& options, const std::string& split,
                     const ConvertProgress& progress,
                     const std::function<void(const SourceImage&, Processed&)>& sink);

// Mean and population std per channel on the [0,1] scale from accumulated sums.
struct ChannelSums {
  int64_t pixels = 0;
  double sum[3] = {0, 0, 0}, sum_sq[3] = {0, 0, 0};
  void add(const Processed& p);
  void finish(std::vector<float>& mean, std::vector<float>& std) const;
};

}  // namespace lmt::data::detail
