// Test helper for the --init-from, EMA and --keep-best script tests:
//   weights_helper subset SRC_DIR N_TRAIN N_TEST OUT_DIR   the first N images of a converted
//       dataset's train.h5 and test.h5 (short epochs for tests that need several)
//   weights_helper init-logits STATE_DICT INPUTS.f32 N OUT.f32   resnet18 (ImageNet stem, 1x32x32,
//       10 classes, no input normalization) from STATE_DICT through train::load_initial_weights,
//       its eval-mode logits of the N inputs (raw little-endian float32 [N,1,32,32] -> [N,10])
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <ATen/ATen.h>
#include <lmt/data/dataset_file.h>
#include <lmt/models/model.h>
#include <lmt/train/init_from.h>

namespace {

at::Tensor read_raw(const std::string& path, std::vector<int64_t> shape) {
  at::Tensor t = at::empty(shape, at::kFloat);
  std::ifstream in(path, std::ios::binary);
  in.read(static_cast<char*>(t.data_ptr()), std::streamsize(t.numel() * 4));
  if (!in)
    throw std::runtime_error(path + ": cannot read " + std::to_string(t.numel()) + " floats");
  return t;
}

void subset(const std::string& src, const std::string& name, int64_t n, const std::string& out) {
  auto d = lmt::data::read_dataset(src + "/" + name);
  if (n > d.info.size) throw std::runtime_error(src + "/" + name + ": fewer than N images");
  d.info.size = n;
  d.images.resize(size_t(n * d.info.image_bytes()));
  d.labels.resize(size_t(n));
  lmt::data::write_dataset(out + "/" + name, d.info, d.images.data(), d.labels.data());
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "subset" && argc == 6) {
    std::filesystem::create_directories(argv[5]);
    subset(argv[2], "train.h5", std::atoll(argv[3]), argv[5]);
    subset(argv[2], "test.h5", std::atoll(argv[4]), argv[5]);
    return 0;
  }
  if (mode == "init-logits" && argc == 6) {
    lmt::models::ModelConfig config;
    config.name = "resnet18";
    config.num_classes = 10;
    config.channels = 1;
    config.height = config.width = 32;
    config.options["stem"] = "imagenet";
    auto model = lmt::models::make_model(config);
    const auto report = lmt::train::load_initial_weights(argv[2], *model, {});
    const int64_t n = std::atoll(argv[4]);
    at::NoGradGuard no_grad;
    model->eval();
    at::Tensor logits = model->forward(read_raw(argv[3], {n, 1, 32, 32})).contiguous();
    std::ofstream out(argv[5], std::ios::binary);
    out.write(static_cast<const char*>(logits.data_ptr()), std::streamsize(logits.numel() * 4));
    if (!out) throw std::runtime_error(std::string(argv[5]) + ": cannot write");
    std::cout << report.loaded << " tensors loaded\n";
    return 0;
  }
  std::cerr << "usage: weights_helper subset SRC N_TRAIN N_TEST OUT | init-logits FILE IN N OUT\n";
  return 2;
} catch (const std::exception& e) {
  std::cerr << "weights_helper: " << e.what() << "\n";
  return 1;
}
