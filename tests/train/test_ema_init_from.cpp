// The EMA of the weights against values computed by hand, --keep-best's spelling through the
// option schema, and --init-from's readers and strict matching on files LibTorch and lmt's
// exporters write (torchvision's own files: tests/train/init_from.sh).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <torch/csrc/jit/serialization/pickle.h>

#include <lmt/train/ema.h>
#include <lmt/train/export.h>
#include <lmt/train/init_from.h>
#include <lmt/train/options.h>

namespace fs = std::filesystem;
using namespace lmt;

namespace {

std::shared_ptr<models::Model> small_resnet() {  // batch norm: running stats, num_batches_tracked
  models::ModelConfig c;
  c.name = "resnet18";
  c.channels = 1;
  c.height = c.width = 32;
  c.options["width"] = "4";
  c.options["stem"] = "imagenet";
  return models::make_model(c);
}

// Every parameter and floating-point buffer of `model` set to x, pi_u to `pi`, integer buffers
// to `count`.
void fill(models::Model& model, double x, double pi, int64_t count) {
  at::NoGradGuard no_grad;
  for (auto& p : model.parameters())
    if (p.defined()) p.fill_(x);
  for (auto& b : model.named_buffers()) {
    if (!b.value().defined()) continue;
    if (!b.value().is_floating_point())
      b.value().fill_(count);
    else
      b.value().fill_(train::is_power_iteration_vector(b.key()) ? pi : x);
  }
}

// Checks every tensor of `ema` holds its kind's value (exact: all values are binary fractions).
void expect_all(models::Model& ema, double x, double pi, int64_t count) {
  for (auto& p : ema.named_parameters()) {
    if (p.value().defined()) {
      EXPECT_TRUE(p.value().eq(x).all().item<bool>()) << p.key() << " != " << x;
    }
  }
  for (auto& b : ema.named_buffers()) {
    if (!b.value().defined()) continue;
    const double want = !b.value().is_floating_point()              ? double(count)
                        : train::is_power_iteration_vector(b.key()) ? pi
                                                                    : x;
    EXPECT_TRUE(b.value().eq(want).all().item<bool>()) << b.key() << " != " << want;
  }
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("lmt-init-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

std::string init_error(const std::string& file, models::Model& model,
                       const std::vector<std::string>& skip = {}) {
  try {
    train::load_initial_weights(file, model, skip);
  } catch (const train::InitFromError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Ema, ValueAfterThreeStepsIsTheFormula) {
  // e_0 = w_0 = 0; e_k = d e_{k-1} + (1 - d) w_k with d = 0.5 and w_k = k:
  // 0.5, 0.5 * 0.5 + 0.5 * 2 = 1.25, 0.5 * 1.25 + 0.5 * 3 = 2.125. Power-iteration vectors and
  // integer buffers are the live model's, not averaged.
  auto live = small_resnet();
  fill(*live, 0, 0.25, 0);
  train::ModelEma ema(*live, 0.5, /*warmup=*/false);
  expect_all(ema.model(), 0, 0.25, 0);
  const double expected[] = {0.5, 1.25, 2.125};
  for (int k = 1; k <= 3; ++k) {
    fill(*live, k, 0.25 * k, 10 * k);
    ema.update(*live, k - 1);
    expect_all(ema.model(), expected[k - 1], 0.25 * k, 10 * k);
  }
}

TEST(Ema, WarmupDecayIsTensorFlowsNumUpdates) {
  auto live = small_resnet();
  train::ModelEma warm(*live, 0.999, /*warmup=*/true), plain(*live, 0.999, false);
  EXPECT_DOUBLE_EQ(warm.decay_at(0), 0.1);         // (1 + 0) / (10 + 0)
  EXPECT_DOUBLE_EQ(warm.decay_at(8), 0.5);         // 9 / 18
  EXPECT_DOUBLE_EQ(warm.decay_at(100000), 0.999);  // 100001 / 100010 > D
  EXPECT_DOUBLE_EQ(plain.decay_at(0), 0.999);
  // With warm-up the first update takes e = 0.1 e + 0.9 w: from 0 towards w = 1 (float32, rounded
  // once in the product and once in the sum: 2 ulp of 1).
  fill(*live, 0, 0, 0);
  train::ModelEma first(*live, 0.999, true);
  fill(*live, 1, 0, 0);
  first.update(*live, 0);
  const at::Tensor w = first.model().parameters().front();
  EXPECT_NEAR(w.max().item<double>(), 0.9, 2.4e-7);
  EXPECT_NEAR(w.min().item<double>(), 0.9, 2.4e-7);
}

TEST(Ema, MakingTheCopyLeavesTheGeneratorAsItWas) {
  auto live = small_resnet();
  torch::manual_seed(5);
  const at::Tensor a = at::rand({4});
  torch::manual_seed(5);
  train::ModelEma ema(*live, 0.9, false);
  EXPECT_TRUE(at::rand({4}).equal(a));
}

TEST(KeepBest, SpelledThroughTheSchema) {
  const auto& schema = train::train_option_schema();
  train::TrainOptions o;
  EXPECT_FALSE(o.keep_best().on());
  schema.set(o, "keep-best", {"certified@36/255"});
  EXPECT_EQ(o.keep_best().metric, train::KeepBest::Metric::kCertified);
  EXPECT_DOUBLE_EQ(o.keep_best().eps, 36.0 / 255.0);
  schema.set(o, "keep-best", {"test-accuracy"});
  EXPECT_EQ(o.keep_best().metric, train::KeepBest::Metric::kTestAccuracy);
  schema.set(o, "keep-best", {"certified@0.5"});
  EXPECT_NE(train::run_config(o).find("keep-best = certified@0.5\n"), std::string::npos);
  for (const char* bad : {"certified@0", "certified@x", "best", "certified@inf"}) {
    try {
      schema.set(o, "keep-best", {bad});
      ADD_FAILURE() << bad << " accepted";
    } catch (const options::OptionError& e) {
      EXPECT_NE(std::string(e.what()).find("'--keep-best'"), std::string::npos) << e.what();
    }
  }
  // A checkpoint from before these options existed resumes when they keep their defaults.
  EXPECT_EQ(train::first_run_difference("lr = 0.001\n", train::TrainOptions()), "");
  EXPECT_NE(train::first_run_difference("lr = 0.001\n", train::TrainOptions().ema_decay(0.9)), "");
}

TEST(InitFrom, SafetensorsAndPickledDictsLoadEveryTensor) {
  models::ModelConfig c;
  c.name = "lmt-mnist";
  torch::manual_seed(1);
  auto source = models::make_model(c);
  const std::string st = temp_path("a.safetensors"), pth = temp_path("a.pth");
  train::write_safetensors(st, train::exported_tensors(*source, /*lmt_internal=*/true), {});
  // LibTorch's own pickle (its dict tagged with torch.jit._pickle.restore_type_tag), with a DDP
  // model's "module." keys.
  c10::Dict<std::string, at::Tensor> prefixed;
  for (const auto& [name, t] : train::exported_tensors(*source, /*lmt_internal=*/false))
    prefixed.insert("module." + name, t);
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(prefixed));
  std::ofstream(pth, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  for (const std::string& file : {st, pth}) {
    torch::manual_seed(2);
    auto target = models::make_model(c);
    const auto report = train::load_initial_weights(file, *target, {});
    EXPECT_GT(report.loaded, 0) << file;
    for (const auto& p : source->named_parameters())
      EXPECT_TRUE(p.value().equal(target->named_parameters()[p.key()])) << file << " " << p.key();
    for (const auto& b : source->named_buffers()) {
      // pi_u: in the safetensors export only; the .pth leaves the target's own.
      const bool expect_equal = file == st || !train::is_power_iteration_vector(b.key());
      EXPECT_EQ(b.value().equal(target->named_buffers()[b.key()]), expect_equal) << b.key();
    }
  }
  fs::remove(st);
  fs::remove(pth);
}

TEST(InitFrom, StrictErrorNamesEveryKeyAndSkipTakesANewHead) {
  models::ModelConfig c;
  c.name = "lmt-mnist";
  auto ten = models::make_model(c);
  const std::string st = temp_path("b.safetensors");
  train::write_safetensors(st, train::exported_tensors(*ten, /*lmt_internal=*/true), {});
  c.num_classes = 5;
  auto five = models::make_model(c);
  const at::Tensor before = five->named_parameters()["fc1.weight"].clone();
  const std::string error = init_error(st, *five);
  EXPECT_EQ(error.rfind("--init-from " + st + ": does not fit model 'lmt-mnist'", 0), 0u) << error;
  EXPECT_NE(error.find("fc2.weight (file [10, 100], model [5, 100])"), std::string::npos) << error;
  EXPECT_NE(error.find("fc2.bias (file [10], model [5])"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_TRUE(five->named_parameters()["fc1.weight"].equal(before)) << "copied despite the error";

  const auto report = train::load_initial_weights(st, *five, {"fc2.*"});
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"fc2.weight", "fc2.bias"}));
  EXPECT_TRUE(five->named_parameters()["fc1.weight"].equal(ten->named_parameters()["fc1.weight"]));
  EXPECT_NE(init_error(st, *five, {"fc2.*", "nothing.*"}).find("matching no key: nothing.*"),
            std::string::npos);

  const std::string junk = temp_path("junk.pth");
  std::ofstream(junk) << "not a state dict";
  EXPECT_NE(init_error(junk, *five).find(junk + ": neither a torch.save zip archive"),
            std::string::npos);
  EXPECT_NE(init_error(temp_path("missing.pth"), *five).find("cannot read"), std::string::npos);
  fs::remove(st);
  fs::remove(junk);
}
