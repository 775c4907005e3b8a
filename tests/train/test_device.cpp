// The device seam on a CPU-only machine: --device resolution, the fp16 loss scale's rule (skip on
// inf/nan, backoff, growth), bf16 autocast with the bound in fp32, and device-independent model
// files (a file whose tensors are tagged for a GPU loads on the CPU).
#include <gtest/gtest.h>

#include <ATen/autocast_mode.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize/input-archive.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include <lmt/io/atomic_file.h>
#include <lmt/models/model.h>
#include <lmt/train/device.h>
#include <lmt/train/objective.h>

using namespace lmt;

TEST(Device, ResolvesCpuAndAutoAndNamesTheFlag) {
  EXPECT_EQ(train::resolve_device("cpu", 3), at::Device(at::kCPU));
  if (!train::built_with_cuda()) {
    EXPECT_EQ(train::resolve_device("auto", 0), at::Device(at::kCPU));
    for (const char* spec : {"cuda", "cuda:0", "cuda:3"}) {
      try {
        train::resolve_device(spec, 0);
        ADD_FAILURE() << spec << " resolved on a LibTorch without CUDA";
      } catch (const train::TrainError& e) {
        EXPECT_NE(std::string(e.what()).find("built against a LibTorch without CUDA"),
                  std::string::npos)
            << e.what();
      }
    }
  }
  for (const char* spec : {"gpu", "cuda:", "cuda:x", "CPU", ""})
    EXPECT_THROW(train::resolve_device(spec, 0), train::TrainError) << spec;
}

TEST(Device, GradBackendAutoIsMpiOnTheCpuAndNcclThereIsAnError) {
  const at::Device cpu(at::kCPU);
  EXPECT_FALSE(train::reduces_over_nccl(train::GradBackend::kAuto, cpu));
  EXPECT_FALSE(train::reduces_over_nccl(train::GradBackend::kMpi, cpu));
  try {
    train::reduces_over_nccl(train::GradBackend::kNccl, cpu);
    ADD_FAILURE() << "--grad-backend nccl accepted on the CPU";
  } catch (const train::TrainError& e) {
    EXPECT_NE(std::string(e.what()).find("--grad-backend nccl: NCCL reduces CUDA tensors"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(train::describe_grad_backend(false, cpu), "mpi");
}

TEST(Device, AheadCopyOnTheCpuHandsBackTheHostTensorsThemselves) {
  const at::Tensor images = at::rand({4, 1, 5, 5}), labels = at::arange(4);
  train::AheadCopy copy({images, labels}, at::Device(at::kCPU));
  const auto got = copy.take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].is_same(images));  // no copy on the CPU, nothing waited for
  EXPECT_TRUE(got[1].is_same(labels));
}

namespace {
std::vector<at::Tensor> params_with_grads(std::vector<float> grads) {
  std::vector<at::Tensor> params;
  for (float g : grads) {
    at::Tensor p = at::zeros({2}).requires_grad_();
    p.mutable_grad() = at::full({2}, g);
    params.push_back(p);
  }
  return params;
}
}  // namespace

TEST(LossScaler, UnscalesGrowsAfterGoodStepsAndSkipsAndBacksOffOnInfOrNan) {
  train::LossScaler scaler(65536.0, 2.0, 0.5, /*growth_interval=*/3);
  // Powers of two: the unscaled gradients are exact.
  for (int step = 0; step < 3; ++step) {
    auto params = params_with_grads({65536.0f, -131072.0f});
    scaler.unscale(params);
    EXPECT_EQ(params[0].grad()[0].item<float>(), 1.0f);
    EXPECT_EQ(params[1].grad()[1].item<float>(), -2.0f);
    EXPECT_FALSE(scaler.update());
  }
  EXPECT_EQ(scaler.scale(), 131072.0);  // grown after 3 good steps
  EXPECT_EQ(scaler.good_steps(), 0);
  auto good = params_with_grads({1.0f});
  scaler.unscale(good);
  EXPECT_FALSE(scaler.update());
  EXPECT_EQ(scaler.good_steps(), 1);
  for (float bad : {std::numeric_limits<float>::infinity(), std::nanf("")}) {
    auto params = params_with_grads({1.0f, bad});
    const double before = scaler.scale();
    scaler.unscale(params);
    EXPECT_TRUE(scaler.update()) << bad;  // skip this step
    EXPECT_EQ(scaler.scale(), before * 0.5);
    EXPECT_EQ(scaler.good_steps(), 0);
  }
  EXPECT_EQ(scaler.skipped_steps(), 2);
  auto params = params_with_grads({1.0f});  // the flag does not outlive its step
  scaler.unscale(params);
  EXPECT_FALSE(scaler.update());
}

TEST(Precision, Bf16AutocastOnTheCpuAndTheBoundInFp32) {
  torch::nn::Linear linear(4, 3);
  const at::Tensor x = at::randn({2, 4});
  {
    train::AutocastScope autocast(train::Precision::kBf16, at::Device(at::kCPU));
    EXPECT_EQ(linear->forward(x).scalar_type(), at::kBFloat16);
    {
      train::Fp32Scope fp32;
      EXPECT_EQ(linear->forward(x).scalar_type(), at::kFloat);
    }
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());  // restored
  EXPECT_EQ(linear->forward(x).scalar_type(), at::kFloat);

  models::ModelConfig config;
  config.name = "lmt-mnist";
  auto model = models::make_model(config);
  auto objective = train::make_objective(train::TrainOptions().loss(train::Loss::kLmt));
  const at::Tensor images = at::rand({4, 1, 28, 28}), labels = at::tensor({0, 1, 2, 3}, at::kLong);
  train::ObjectiveOutput out;
  {
    train::AutocastScope autocast(train::Precision::kBf16, at::Device(at::kCPU));
    out = objective->compute(*model, images, labels, 0.0);
  }
  EXPECT_EQ(out.bound.scalar_type(), at::kFloat);
  EXPECT_EQ(out.logits.scalar_type(), at::kFloat);
  EXPECT_EQ(out.loss.scalar_type(), at::kFloat);
  // The bound is the fp32 one: identical to the bound computed without autocast.
  EXPECT_EQ(out.bound.item<float>(),
            model->lipschitz_bound(lipschitz::BoundMode::kTrain).item<float>());
  out.loss.backward();
  EXPECT_TRUE(at::isfinite(out.loss).item<bool>());
}

// A model file written on a GPU names "cuda:0" as its tensors' location. Simulated: the file's
// pickle has its location strings rewritten ('X' + uint32 length + UTF-8, as LibTorch's pickler
// writes them) and the archive rebuilt; LibTorch without a map cannot load it here, lmt can.
TEST(ModelFile, TensorsTaggedForAGpuLoadOnTheCpu) {
  models::ModelConfig config;
  config.name = "lmt-mnist";
  auto model = models::make_model(config);
  const std::string bytes = models::serialize_model_file(*model, {});
  caffe2::serialize::PyTorchStreamReader reader(
      std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), bytes.size()));
  std::string patched;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    patched.append(static_cast<const char*>(data), size);
    return size;
  });
  const std::string cpu("X\x03\0\0\0cpu", 8), cuda("X\x06\0\0\0cuda:0", 11);
  int64_t tagged = 0;
  for (const auto& name : reader.getAllRecords()) {
    if (name == "version" || name == ".data/version") continue;  // the writer adds its own
    auto [ptr, size] = reader.getRecord(name);
    std::string record(static_cast<const char*>(ptr.get()), size);
    if (name.size() >= 3 && name.compare(name.size() - 3, 3, "pkl") == 0)
      for (size_t at = record.find(cpu); at != std::string::npos; at = record.find(cpu, at)) {
        record.replace(at, cpu.size(), cuda);
        ++tagged;
      }
    writer.writeRecord(name, record.data(), record.size());
  }
  writer.writeEndOfFile();
  EXPECT_GT(tagged, 0) << "no tensor location found to tag";

  if (!train::built_with_cuda()) {  // LibTorch itself refuses the GPU tensors without a map
    torch::serialize::InputArchive raw;
    EXPECT_ANY_THROW(raw.load_from(patched.data(), patched.size()));
  }
  const auto dir =
      std::filesystem::temp_directory_path() / ("lmt-device-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "gpu.pt").string();
  io::write_file_atomic(path, patched);
  auto loaded = models::load_model_file(path);
  std::filesystem::remove_all(dir);
  auto saved = model->named_parameters();
  for (const auto& item : loaded.model->named_parameters()) {
    EXPECT_TRUE(item.value().is_cpu()) << item.key();
    EXPECT_TRUE(at::equal(item.value(), saved[item.key()])) << item.key();
  }
}
