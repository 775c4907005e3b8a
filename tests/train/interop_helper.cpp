// Test helper for the export interop tests: lmt's own logits (and the inputs it fed) as raw
// little-endian float32 files, for Python to reproduce from the exported weights.
//   interop_helper logits MODEL_FILE TEST_H5 N OUT_PREFIX   first N test images of a dataset
//   interop_helper resnet OUT_MODEL_FILE OUT_PREFIX         resnet18, ImageNet stem, 3x64x64,
//       10 classes, BN running statistics from 3 training-mode batches, 16 random inputs
// OUT_PREFIX.inputs.f32 holds [N,C,H,W], OUT_PREFIX.logits.f32 holds [N,classes].
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include <ATen/ATen.h>
#include <lmt/data/loader.h>
#include <lmt/models/model.h>

namespace {

void write_raw(const std::string& path, const at::Tensor& t) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), std::streamsize(c.numel() * 4));
  if (!out) throw std::runtime_error(path + ": cannot write");
}

void dump(lmt::models::Model& model, const at::Tensor& inputs, const std::string& prefix) {
  at::NoGradGuard no_grad;
  model.eval();
  write_raw(prefix + ".inputs.f32", inputs);
  write_raw(prefix + ".logits.f32", model.forward(inputs));
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "logits" && argc == 6) {
    auto loaded = lmt::models::load_model_file(argv[2]);
    const auto& config = loaded.model->config();
    lmt::data::Loader loader(argv[3], lmt::data::LoaderOptions()
                                          .batch_size(std::atoll(argv[4]))
                                          .shuffle(false)
                                          .drop_last(false)
                                          .prefetch(0)
                                          .pad_to(config.height, config.width));
    loader.start_epoch(0);
    auto batch = loader.next();
    if (!batch) throw std::runtime_error("no batch");
    dump(*loaded.model, batch->images, argv[5]);
    return 0;
  }
  if (mode == "resnet" && argc == 4) {
    at::manual_seed(7);
    lmt::models::ModelConfig config;
    config.name = "resnet18";
    config.num_classes = 10;
    config.channels = 3;
    config.height = config.width = 64;
    config.mean = {0.485f, 0.456f, 0.406f};
    config.std = {0.229f, 0.224f, 0.225f};
    config.options["stem"] = "imagenet";
    auto model = lmt::models::make_model(config);
    {
      at::NoGradGuard no_grad;
      model->train();
      for (int i = 0; i < 3; ++i) model->forward(at::rand({8, 3, 64, 64}));
    }
    lmt::models::save_model_file(argv[2], *model);
    dump(*model, at::rand({16, 3, 64, 64}), argv[3]);
    return 0;
  }
  std::cerr << "usage: interop_helper logits MODEL TEST_H5 N PREFIX | resnet MODEL PREFIX\n";
  return 2;
} catch (const std::exception& e) {
  std::cerr << "interop_helper: " << e.what() << "\n";
  return 1;
}
