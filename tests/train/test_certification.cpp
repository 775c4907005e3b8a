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

namespace {
// 8 grey 28x28 images in dir/test.h5.
std::string write_images(const fs::path& dir) {
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
  return file;
}
}  // namespace

TEST(Certify, AFailingSoundBoundIsOneLineNamingTheModel) {
  const fs::path dir = fs::temp_directory_path() / ("lmt-certify-" + std::to_string(::getpid()));
  data::Loader loader(write_images(dir),
                      data::LoaderOptions().batch_size(8).shuffle(false).drop_last(false));

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

// The per-layer report lists every spectral operator with a bound above its reference (exact or
// estimate from below), the bounds shared through the BoundMemo are those a fresh computation
// gives, and the tight bounds are at most the circulant ones, layer by layer and for the model.
TEST(Certify, ReportsEveryLayerAndTheTightBoundIsAtMostTheCirculantOne) {
  const fs::path dir = fs::temp_directory_path() / ("lmt-certify-l-" + std::to_string(::getpid()));
  data::Loader loader(write_images(dir),
                      data::LoaderOptions().batch_size(8).shuffle(false).drop_last(false));
  models::ModelConfig c;
  c.name = "lmt-mnist";
  auto model = models::make_model(c);
  const auto tight = train::certify(*model, loader, nullptr, train::CertifyOptions());
  const auto circulant = train::certify(
      *model, loader, nullptr,
      train::CertifyOptions().bound_limits(lipschitz::SoundBoundLimits::circulant_only()));
  fs::remove_all(dir);
  const auto ops = lipschitz::spectral_operators(*model);
  ASSERT_EQ(tight.layers.size(), ops.size());
  ASSERT_EQ(circulant.layers.size(), ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const auto& [name, b] = tight.layers[i];
    EXPECT_EQ(name, ops[i].name);
    // The reference is exact or a float32 / float64 estimate from below: the float32 one can
    // exceed sigma by its rounding (~1e-6 relative), far below the allowance-free margin here.
    EXPECT_GE(b.bound, b.reference * (1 - 1e-5)) << name;
    EXPECT_LE(b.bound, circulant.layers[i].second.bound) << name;
    EXPECT_EQ(circulant.layers[i].second.method, name.rfind("fc", 0) == 0 ? "svd" : "circulant");
  }
  // conv1 (784 inputs) is small enough for the exact path.
  EXPECT_TRUE(tight.layers[0].second.exact);
  EXPECT_EQ(tight.layers[0].second.method, "explicit");
  EXPECT_LE(tight.sound_bound, circulant.sound_bound);
  // Without a memo, each operator recomputes: the same numbers (deterministic float64).
  EXPECT_EQ(tight.sound_bound, model->lipschitz_bound(lipschitz::BoundMode::kSound).item<double>());
}
