// lmt::data: Tiny-ImageNet (wnids.txt, train/<wnid>/images, val/images + val_annotations.txt)
// to single-file uint8 train.h5 / test.h5, decoded and resized on several threads.
#include <filesystem>
#include <fstream>

#include "convert_common.h"
#include "convert_images.h"
#include "hdf5_handle.h"

namespace lmt::data {
namespace fs = std::filesystem;

void convert_tiny_imagenet(const std::string& src_dir, const std::string& out_dir,
                           const ImageConvertOptions& options, const ConvertProgress& progress) {
  const fs::path src(src_dir);
  const int64_t size = options.size() > 0 ? options.size() : 64;
  const std::string wnids_file = (src / "wnids.txt").string();
  std::ifstream in(wnids_file);
  if (!in) detail::fail(wnids_file, "missing (the list of class wnids)");
  std::vector<std::string> wnids;
  for (std::string w; in >> w;) wnids.push_back(w);
  if (wnids.empty()) detail::fail(wnids_file, "lists no classes");
  std::sort(wnids.begin(), wnids.end());
  std::map<std::string, int32_t> class_of;
  for (size_t i = 0; i < wnids.size(); ++i) class_of[wnids[i]] = int32_t(i);

  std::vector<detail::SourceImage> train_list;
  for (const auto& [wnid, label] : class_of) {
    const fs::path folder = src / "train" / wnid / "images";
    std::error_code ec;
    if (!fs::is_directory(folder, ec))
      detail::fail(folder.string(), "missing class folder (class '" + wnid + "' of wnids.txt)");
    for (const std::string& path : detail::list_jpegs(folder.string()))
      train_list.push_back({path, label});
  }
  const auto val_list = detail::label_flat_folder(
      (src / "val" / "images").string(), (src / "val" / "val_annotations.txt").string(), class_of);
  detail::report(progress, "found " + std::to_string(wnids.size()) + " classes, " +
                               std::to_string(train_list.size()) + " train and " +
                               std::to_string(val_list.size()) + " val images");

  DatasetInfo info;
  info.height = info.width = size;
  info.channels = 3;
  info.num_classes = int64_t(wnids.size());
  info.source = "tiny-imagenet";
  info.class_names = detail::class_names_for(wnids, {(src / "words.txt").string()});
  detail::DecodedSplit train, test;
  int64_t skipped = 0;
  for (auto* split : {&train, &test}) {
    const bool is_train = split == &train;
    const auto& list = is_train ? train_list : val_list;
    split->images.reserve(list.size() * size_t(size * size * 3));
    skipped += detail::run_pipeline(list, size, options, is_train ? "train" : "val", progress,
                                    [&](const detail::SourceImage& image, detail::Processed& p) {
                                      split->images.insert(split->images.end(), p.bytes.begin(),
                                                           p.bytes.end());
                                      split->labels.push_back(image.label);
                                    });
  }
  info.skipped_images = skipped;
  detail::write_train_test(out_dir, info, train, test, progress);
}

}  // namespace lmt::data
