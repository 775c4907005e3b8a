// lmt convert DATASET --src DIR --out DIR: source files to the HDF5 dataset schema.
#include <algorithm>
#include <iostream>
#include <thread>

#include <lmt/data/convert.h>

#include "cli.h"
#include "commands.h"
#include "schema_cli.h"

namespace lmt::launch {
namespace {
enum class Dataset { kFashionMnist, kCifar10, kCifar100, kTinyImagenet, kImagenet };
enum class OnBadImage { kFail, kSkip };
}  // namespace
}  // namespace lmt::launch

namespace lmt::options {
template <>
struct EnumNames<launch::Dataset> {
  static constexpr std::pair<launch::Dataset, const char*> table[] = {
      {launch::Dataset::kFashionMnist, "fashion-mnist"},
      {launch::Dataset::kCifar10, "cifar10"},
      {launch::Dataset::kCifar100, "cifar100"},
      {launch::Dataset::kTinyImagenet, "tiny-imagenet"},
      {launch::Dataset::kImagenet, "imagenet"}};
};
template <>
struct EnumNames<launch::OnBadImage> {
  static constexpr std::pair<launch::OnBadImage, const char*> table[] = {
      {launch::OnBadImage::kFail, "fail"}, {launch::OnBadImage::kSkip, "skip"}};
};
}  // namespace lmt::options

namespace lmt::launch {
namespace {

struct ConvertCommandOptions {
  ConvertCommandOptions() {
    image.threads(int(std::max(1u, std::thread::hardware_concurrency())));  // default: all cores
  }
  Dataset dataset = Dataset::kFashionMnist;  // required
  std::string src, out;
  data::ImageConvertOptions image;  // image.skip_bad_images comes from on_bad_image
  OnBadImage on_bad_image = OnBadImage::kFail;
};

options::Schema<ConvertCommandOptions> convert_schema() {
  using options::Spec;
  options::Schema<ConvertCommandOptions> s;
  // DATASET: the choices' word would widen the whole help column; the usage line lists them.
  s.add<Dataset>(
      Spec("dataset",
           "the dataset, as named in the usage line (also the first "
           "positional word)")
          .required()
          .value("DATASET"),
      [](auto& o) -> auto& { return o.dataset; });
  s.add<int64_t>(
      Spec("size",
           "tiny-imagenet/imagenet: resize the short side to N and centre-crop N x N "
           "(uint8; tiny-imagenet default 64); with --jpeg: the default model input "
           "size (224)")
          .in(0, 65536),
      [](auto& o) -> auto& { return o.image.size(); });
  s.add<bool>(
      Spec("jpeg", "imagenet: store the original JPEG bytes (full resolution)").as_switch(),
      [](auto& o) -> auto& { return o.image.jpeg(); });
  s.add<int64_t>(
      Spec("shard-bytes", "imagenet: payload bytes per shard file").at_least(1),
      [](auto& o) -> auto& { return o.image.shard_bytes(); });
  s.add<int>(
      Spec("threads", "decoding/resizing threads").operational().in(1, 1024),
      [](auto& o) -> auto& { return o.image.threads(); });
  s.add<OnBadImage>(
      Spec("on-bad-image",
           "corrupt/unreadable JPEG: fail (name it and stop) or "
           "skip (count it in the attributes)"),
      [](auto& o) -> auto& { return o.on_bad_image; });
  s.add<std::string>(
      Spec("src", "directory of source files").required().value("DIR"),
      [](auto& o) -> auto& { return o.src; });
  s.add<std::string>(
      Spec("out", "output directory (train.h5, test.h5)").required().value("DIR"),
      [](auto& o) -> auto& { return o.out; });
  return s;
}

}  // namespace

int run_convert(int argc, char** argv, Session&) {
  const auto schema = convert_schema();
  ConvertCommandOptions o;
  if (!parse_options(
          "convert",
          "lmt convert fashion-mnist|cifar10|cifar100|tiny-imagenet --src DIR --out DIR\n"
          "       lmt convert imagenet --src DIR --out DIR (--size N | --jpeg) [--shard-bytes B]",
          schema, argc, argv, o, "dataset"))
    return 0;
  o.image.skip_bad_images(o.on_bad_image == OnBadImage::kSkip);
  if (o.dataset == Dataset::kImagenet && !o.image.jpeg() && o.image.size() < 1)
    throw UsageError("imagenet needs --size N (resized uint8) or --jpeg (original bytes)");
  if (o.dataset == Dataset::kTinyImagenet && o.image.jpeg())
    throw UsageError("--jpeg: only for imagenet (tiny-imagenet is stored as 64 px uint8)");
  auto progress = [](const std::string& line) { std::cerr << "convert: " << line << "\n"; };
  if (o.dataset == Dataset::kTinyImagenet)
    data::convert_tiny_imagenet(o.src, o.out, o.image, progress);
  else if (o.dataset == Dataset::kImagenet)
    data::convert_imagenet(o.src, o.out, o.image, progress);
  else if (o.dataset == Dataset::kFashionMnist)
    data::convert_fashion_mnist(o.src, o.out, progress);
  else if (o.dataset == Dataset::kCifar10)
    data::convert_cifar10(o.src, o.out, progress);
  else
    data::convert_cifar100(o.src, o.out, progress);
  std::cout << "{\"command\":\"convert\",\"dataset\":\"" << options::to_string(o.dataset)
            << "\",\"out\":\"" << o.out << "\"}" << std::endl;
  return 0;
}

}  // namespace lmt::launch
