// lmt convert DATASET --src DIR --out DIR: source files to the HDF5 dataset schema.
#include <iostream>
#include <thread>

#include <lmt/data/convert.h>

#include "cli.h"
#include "commands.h"

namespace lmt::launch {

int run_convert(int argc, char** argv, Session&) {
  CommandLine cli;
  cli.command = "convert";
  cli.usage =
      "lmt convert fashion-mnist|cifar10|cifar100|tiny-imagenet --src DIR --out DIR\n"
      "       lmt convert imagenet --src DIR --out DIR (--size N | --jpeg) [--shard-bytes B]";
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  cli.options.add_options()("dataset", po::value<std::string>()->required(),
                            "fashion-mnist, cifar10, cifar100, tiny-imagenet or imagenet "
                            "(also the first positional word)")(
      "size", po::value<int64_t>()->default_value(0),
      "tiny-imagenet/imagenet: resize the short side to N and centre-crop N x N (uint8; "
      "tiny-imagenet default 64); with --jpeg: the default model input size (224)")(
      "jpeg", po::bool_switch(), "imagenet: store the original JPEG bytes (full resolution)")(
      "shard-bytes", po::value<int64_t>()->default_value(int64_t{1} << 30),
      "imagenet: payload bytes per shard file")("threads", po::value<int>()->default_value(cores),
                                                "decoding/resizing threads")(
      "on-bad-image", po::value<std::string>()->default_value("fail"),
      "corrupt/unreadable JPEG: fail (name it and stop) or skip (count it in the attributes)")(
      "src", po::value<std::string>()->required()->value_name("DIR"), "directory of source files")(
      "out", po::value<std::string>()->required()->value_name("DIR"),
      "output directory (train.h5, test.h5)");
  cli.positional.add("dataset", 1);
  po::variables_map vm;
  if (!parse(cli, argc, argv, vm)) return 0;
  require_choice(vm, "dataset",
                 {"fashion-mnist", "cifar10", "cifar100", "tiny-imagenet", "imagenet"});
  require_choice(vm, "on-bad-image", {"skip", "fail"});
  require_range(vm, "size", 0, 65536);
  require_range(vm, "shard-bytes", 1, 9.3e18);
  require_range(vm, "threads", 1, 1024);
  const auto dataset = vm["dataset"].as<std::string>();
  const auto src = vm["src"].as<std::string>(), out = vm["out"].as<std::string>();
  auto progress = [](const std::string& line) { std::cerr << "convert: " << line << "\n"; };
  data::ImageConvertOptions image;
  image.size = vm["size"].as<int64_t>();
  image.jpeg = vm["jpeg"].as<bool>();
  image.shard_bytes = vm["shard-bytes"].as<int64_t>();
  image.threads = vm["threads"].as<int>();
  image.skip_bad_images = vm["on-bad-image"].as<std::string>() == "skip";
  if (image.size < 0) throw UsageError("--size: must not be negative");
  if (image.threads < 1) throw UsageError("--threads: must be at least 1");
  if (image.shard_bytes < 1) throw UsageError("--shard-bytes: must be positive");
  if (dataset == "imagenet" && !image.jpeg && image.size < 1)
    throw UsageError("imagenet needs --size N (resized uint8) or --jpeg (original bytes)");
  if (dataset == "tiny-imagenet" && image.jpeg)
    throw UsageError("--jpeg: only for imagenet (tiny-imagenet is stored as 64 px uint8)");
  if (dataset == "tiny-imagenet")
    data::convert_tiny_imagenet(src, out, image, progress);
  else if (dataset == "imagenet")
    data::convert_imagenet(src, out, image, progress);
  else if (dataset == "fashion-mnist")
    data::convert_fashion_mnist(src, out, progress);
  else if (dataset == "cifar10")
    data::convert_cifar10(src, out, progress);
  else
    data::convert_cifar100(src, out, progress);
  std::cout << "{\"command\":\"convert\",\"dataset\":\"" << dataset << "\",\"out\":\"" << out
            << "\"}" << std::endl;
  return 0;
}

}  // namespace lmt::launch
