// Certification of a model whose sound bound cannot be computed (a NaN weight, loaded past the
// model-file check): one TrainError line naming the model source, not LibTorch's linalg trace.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include <lmt/data/dataset_file.h>
#include <lmt/data/loader.h>
#include <lmt/train/certification.h>
#include <lmt/train/options.h>

namespace fs = std::filesystem;
using namespace lmt;

TEST(Certify, AFailingSoundBoundIsOneLineNamingTheModel) {
  const fs::path dir = fs::temp_directory_path() / ("lmt-certify-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  data::DatasetInfo info;
  info.size = 8;
  info.height = info.width = 28;
  info.channels = 1;
  info.num_classes = 10;
  info.source = "test";
  for (int i = 0; i < 10; ++i) info.class_names.push_back("c" + std::to_string(i));
  std::vector<uint8_t> images(size_t(info.size * info.image_bytes()));
  for (size_t i = 0; i < images.size(); ++i) images[i] = uint8_t(i * 37);
  std::vector<int32_t> labels(size_t(info.size), 3);
  const std::string file = (dir / "test.h5").string();
  data::write_dataset(file, info, images.data(), labels.data());
  data::Loader loader(file, data::LoaderOptions().batch_size(8).shuffle(false).drop_last(false));

  models::ModelConfig c;
  c.name = "lmt-mnist";
  auto model = models::make_model(c);
  {
    at::NoGradGuard no_grad;
    model->named_parameters()["fc1.weight"].view(-1)[0].fill_(std::nan(""));
  }
  const auto options = train::CertifyOptions().model_source("runs/x/model.pt");
  std::string error;
  try {
    train::certify(*model, loader, nullptr, options);
  } catch (const train::TrainError& e) {
    error = e.what();
  }
  fs::remove_all(dir);
  EXPECT_EQ(error.rfind("runs/x/model.pt: ", 0), 0u) << error;
  EXPECT_NE(error.find("sound Lipschitz bound"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}
