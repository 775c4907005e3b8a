// bench_models: the model zoo on Fashion-MNIST geometry (1 channel, 28x28 or padded to 32x32,
// the dataset's mean/std): parameters, the bound at initialisation (kSound, kEstimate and their
// ratio) and the time of one LMT training step; or, with `certify`, clean and certified accuracy
// of a trained model file on a test split (global and pairwise radii, the better one per point).
// Usage: bench_models [bounds] [model ...]
//        bench_models certify MODEL_FILE TEST_H5 [pad_to]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <lmt/data/loader.h>
#include <lmt/lipschitz/certify.h>
#include <lmt/lipschitz/lmt_loss.h>
#include <lmt/models/model.h>

namespace lip = lmt::lipschitz;
namespace lm = lmt::models;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Row {
  std::string name;
  int64_t size;
  std::map<std::string, std::string> options;
};

int bounds(const std::vector<std::string>& only) {
  const std::map<std::string, std::string> center{{"norm", "center"}};
  const std::vector<Row> rows = {
      {"lmt-mnist", 28, {}},   {"resnet18", 28, {}},       {"resnet18", 28, center},
      {"resnet50", 28, {}},    {"resnet50", 28, center},   {"wrn16-4", 28, {}},
      {"wrn16-4", 28, center}, {"wrn28-10", 28, {}},       {"wrn28-10", 28, center},
      {"lipshift", 32, {}},    {"lipshift-cifar", 32, {}}, {"vit-tiny", 28, {}},
      {"vit-small", 28, {}}};
  std::printf("%-22s %5s %12s %12s %12s %9s %12s\n", "model", "input", "parameters", "L_sound",
              "L_estimate", "sound/est", "step_ms(b32)");
  for (const auto& row : rows) {
    if (!only.empty() && std::find(only.begin(), only.end(), row.name) == only.end()) continue;
    lm::ModelConfig c;
    c.name = row.name;
    c.options = row.options;
    std::string label = row.name;
    for (const auto& [key, value] : row.options) label += " " + key + "=" + value;
    c.channels = 1;
    c.height = c.width = row.size;
    c.mean = {0.2860f};  // Fashion-MNIST train mean/std
    c.std = {0.3530f};
    if (row.name.rfind("vit", 0) == 0) c.options["patch"] = "4";
    torch::manual_seed(0);
    auto model = lm::make_model(c);
    model->eval();
    double sound = -1, estimate = -1;
    if (model->has_bound()) {
      sound = model->lipschitz_bound(lip::BoundMode::kSound).item<double>();
      estimate = model->lipschitz_bound(lip::BoundMode::kEstimate).item<double>();
    }
    // One training step (batch 32): power iteration, forward, kTrain bound, LMT loss, backward.
    model->train();
    at::Tensor x = at::rand({32, 1, row.size, row.size});
    at::Tensor y = at::randint(0, 10, {32}, at::kLong);
    double step_ms = 0;
    const int reps = lm::parameter_count(*model) <= 3000000 ? 3 : 0;  // big ones: too slow here
    for (int rep = 0; rep < reps; ++rep) {
      const auto t0 = Clock::now();
      at::Tensor logits = model->forward(x), loss;
      if (model->has_bound()) {
        lip::power_iteration_step(*model);
        loss = lip::lmt_loss(logits, y, model->lipschitz_bound(lip::BoundMode::kTrain), 1.0);
      } else {
        loss = at::cross_entropy_loss(logits, y);
      }
      loss.backward();
      for (auto& p : model->parameters()) p.mutable_grad() = at::Tensor();
      if (rep > 0) step_ms += 1000 * seconds_since(t0) / 2;
    }
    char step[32] = "-";
    if (reps > 0) std::snprintf(step, sizeof step, "%.1f", step_ms);
    if (sound >= 0)
      std::printf("%-22s %5lld %12lld %12.4g %12.4g %9.3f %12s\n", label.c_str(),
                  (long long)row.size, (long long)lm::parameter_count(*model), sound, estimate,
                  sound / estimate, step);
    else
      std::printf("%-22s %5lld %12lld %12s %12s %9s %12s\n", label.c_str(), (long long)row.size,
                  (long long)lm::parameter_count(*model), "none", "none", "-", step);
    std::fflush(stdout);
  }
  return 0;
}

int certify(const std::string& model_file, const std::string& test_file, int64_t pad) {
  auto loaded = lm::load_model_file(model_file);
  lm::Model& model = *loaded.model;
  model.eval();
  lmt::data::Loader loader(
      test_file,
      lmt::data::LoaderOptions().batch_size(500).shuffle(false).drop_last(false).pad_to(pad, pad));
  const auto t0 = Clock::now();
  at::NoGradGuard no_grad;
  const bool bounded = model.has_bound();
  at::Tensor sound, correct_all, radius_all;
  lip::HeadSplit head;
  if (bounded) {
    sound = model.lipschitz_bound(lip::BoundMode::kSound);
    head = model.head_split(lip::BoundMode::kSound);
  }
  std::vector<at::Tensor> radii, correct;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    if (batch->labels.numel() == 0) continue;
    at::Tensor logits = model.forward(batch->images);
    correct.push_back(logits.argmax(1).eq(batch->labels));
    if (!bounded) continue;
    at::Tensor r = lip::certified_radius(logits, batch->labels, sound);
    if (head.defined())
      r = at::maximum(r, lip::certified_radius_pairwise(logits, batch->labels, head));
    radii.push_back(r);
  }
  correct_all = at::cat(correct);
  radius_all = bounded ? at::cat(radii) : at::zeros({correct_all.numel()}, at::kDouble);
  auto summary = lip::summarize(radius_all, correct_all, {0.1, 0.3, 1.0, 1.58},
                                bounded ? sound.item<double>() : -1);
  std::printf("model %s  n %lld  clean %.4f", model.config().name.c_str(), (long long)summary.n,
              summary.clean_accuracy);
  if (bounded) {
    std::printf("  L_sound %.4g  L_estimate %.4g  median_radius %.4g", summary.bound,
                model.lipschitz_bound(lip::BoundMode::kEstimate).item<double>(),
                summary.median_radius);
    for (size_t i = 0; i < summary.eps.size(); ++i)
      std::printf("  cert@%.2f %.4f", summary.eps[i], summary.certified_accuracy[i]);
  } else {
    std::printf("  (no bound: certification refused)");
  }
  std::printf("  eval_s %.1f\n", seconds_since(t0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (!args.empty() && args[0] == "certify") {
      if (args.size() < 3) {
        std::fprintf(stderr, "usage: bench_models certify MODEL_FILE TEST_H5 [pad_to]\n");
        return 2;
      }
      return certify(args[1], args[2], args.size() > 3 ? std::stoll(args[3]) : 0);
    }
    if (!args.empty() && args[0] == "bounds") args.erase(args.begin());
    return bounds(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_models: %s\n", e.what());
    return 1;
  }
}
