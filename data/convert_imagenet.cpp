// lmt::data: ImageNet (train/<wnid>/*.JPEG; val/ in class folders or flat with a labels file)
// to the sharded layout, as resized uint8 images or the original JPEG bytes.
#include <filesystem>

#include <lmt/data/sharded.h>

#include "convert_common.h"
#include "convert_images.h"
#include "hdf5_handle.h"
#include "staged_write.h"

namespace lmt::data {
namespace fs = std::filesystem;
namespace {

std::vector<detail::SourceImage> list_val(const fs::path& src,
                                          const std::vector<std::string>& wnids,
                                          const std::map<std::string, int32_t>& class_of) {
  const fs::path val = src / "val";
  std::vector<detail::SourceImage> out;
  const std::vector<std::string> folders = detail::list_subdirs(val.string());
  bool class_folders = false;
  for (const std::string& f : folders) class_folders |= class_of.count(f) > 0;
  if (class_folders) {
    for (const std::string& f : folders)
      if (!class_of.count(f))
        detail::fail((val / f).string(), "class folder with no train/" + f + " folder");
    for (const std::string& wnid : wnids) {
      const fs::path folder = val / wnid;
      std::error_code ec;
      if (!fs::is_directory(folder, ec))
        detail::fail(folder.string(), "missing class folder (class '" + wnid + "' of train/)");
      for (const std::string& path : detail::list_jpegs(folder.string()))
        out.push_back({path, class_of.at(wnid)});
    }
    return out;
  }
  for (const fs::path& labels :
       {val / "val_annotations.txt", val / "labels.txt", src / "LOC_val_solution.csv"}) {
    std::error_code ec;
    if (fs::is_regular_file(labels, ec))
      return detail::label_flat_folder(val.string(), labels.string(), class_of);
  }
  detail::fail(val.string(),
               "neither class folders nor a labels file (val/val_annotations.txt, "
               "val/labels.txt or LOC_val_solution.csv)");
}
}  // namespace

void convert_imagenet(const std::string& src_dir, const std::string& out_dir,
                      const ImageConvertOptions& options, const ConvertProgress& progress) {
  const fs::path src(src_dir);
  if (!options.jpeg() && options.size() < 1)
    detail::fail(src_dir, "choose --size N (resized uint8) or --jpeg (original bytes)");
  const std::vector<std::string> wnids = detail::list_subdirs((src / "train").string());
  if (wnids.empty()) detail::fail((src / "train").string(), "has no class folders");
  std::map<std::string, int32_t> class_of;
  for (size_t i = 0; i < wnids.size(); ++i) class_of[wnids[i]] = int32_t(i);
  std::vector<detail::SourceImage> train_list;
  for (const std::string& wnid : wnids) {
    const fs::path folder = src / "train" / wnid;
    std::error_code ec;
    const fs::path nested = folder / "images";  // Tiny-ImageNet style also accepted
    const std::string dir = fs::is_directory(nested, ec) ? nested.string() : folder.string();
    for (const std::string& path : detail::list_jpegs(dir))
      train_list.push_back({path, class_of.at(wnid)});
  }
  const auto val_list = list_val(src, wnids, class_of);
  detail::report(progress, "found " + std::to_string(wnids.size()) + " classes, " +
                               std::to_string(train_list.size()) + " train and " +
                               std::to_string(val_list.size()) + " val images");

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) detail::fail(out_dir, "cannot create output directory: " + ec.message());
  DatasetInfo info;
  info.storage = options.jpeg() ? "jpeg" : "uint8";
  info.height = info.width = options.size() > 0 ? options.size() : 224;
  info.channels = 3;
  info.num_classes = int64_t(wnids.size());
  info.source = options.jpeg() ? "imagenet-jpeg" : "imagenet";
  info.class_names = detail::class_names_for(
      wnids, {(src / "LOC_synset_mapping.txt").string(), (src / "words.txt").string()});
  const int64_t resize = options.jpeg() ? 0 : options.size();

  std::vector<std::pair<std::string, std::string>> staged;
  std::vector<float> mean, std;
  try {
    for (const bool train : {true, false}) {
      const std::string name = train ? "train" : "test";
      ShardedWriter writer((fs::path(out_dir) / (name + ".h5")).string(), info,
                           options.shard_bytes());
      detail::ChannelSums sums;
      const int64_t skipped = detail::run_pipeline(
          train ? train_list : val_list, resize, options, train ? "train" : "val", progress,
          [&](const detail::SourceImage& image, detail::Processed& p) {
            writer.add(p.bytes.data(), p.bytes.size(), image.label);
            if (train) sums.add(p);
          });
      if (train) sums.finish(mean, std);  // train statistics in both files
      for (auto& pair : writer.finish(mean, std, skipped)) staged.push_back(pair);
    }
  } catch (...) {
    std::vector<std::string> temps;
    for (const auto& pair : staged) temps.push_back(pair.first);
    detail::remove_quietly(temps);
    throw;
  }
  // Shards first, index files last: a reader never sees an index without its shards.
  std::stable_partition(staged.begin(), staged.end(), [](const auto& pair) {
    const std::string stem = fs::path(pair.second).stem().string();
    return stem != "train" && stem != "test";
  });
  commit_shards(staged);
  detail::report(progress,
                 "wrote " + out_dir + "/train.h5 and test.h5 (" + info.storage + " shards)");
}

}  // namespace lmt::data
