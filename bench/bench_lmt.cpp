// bench_lmt: cost of Lipschitz-margin training per optimizer step against plain cross-entropy,
// measured in one run on one process for lmt-mnist (28x28, batch 50) and resnet18 (CIFAR stem,
// 32x32, batch 32), with the trainer's own objectives; plus where the extra time goes.
//
//   bench_lmt [--threads N] [--rounds R] [--steps K] [--models lmt-mnist,resnet18] [--clock
//   cpu|wall]
//
// Times are process CPU time by default (--clock cpu: robust on a shared machine, where wall
// time mostly measures the other jobs) or wall time (--clock wall).
// Each round times K CE steps and K LMT steps (order alternating between rounds, separate models
// with the same initial weights), so load changes on a shared machine hit both sides alike. A
// step = [power_iteration_step] + forward + loss (+ lipschitz_bound(kTrain)) + backward + Adam.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <time.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <lmt/lipschitz/bounded_module.h>
#include <lmt/models/model.h>
#include <lmt/train/objective.h>
#include <lmt/train/options.h>
#include <torch/optim/adam.h>

namespace {

using namespace lmt;
using Clock = std::chrono::steady_clock;

struct Case {
  std::string model;
  int64_t channels, size, batch;
  std::map<std::string, std::string> options;
};

bool use_cpu_clock = true;

double now_s() {
  if (!use_cpu_clock) return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

double seconds_of(const std::function<void()>& f) {
  const double start = now_s();
  f();
  return now_s() - start;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::shared_ptr<models::Model> build(const Case& c) {
  models::ModelConfig config;
  config.name = c.model;
  config.channels = c.channels;
  config.height = config.width = c.size;
  config.mean.assign(size_t(c.channels), 0.5f);
  config.std.assign(size_t(c.channels), 0.25f);
  config.options = c.options;
  torch::manual_seed(0);
  auto model = models::make_model(config);
  model->train();
  return model;
}

// One side of the comparison: a model, its optimizer and the trainer's objective.
struct Side {
  std::shared_ptr<models::Model> model;
  std::unique_ptr<torch::optim::Adam> optimizer;
  std::unique_ptr<train::Objective> objective;

  Side(const Case& c, train::Loss loss) : model(build(c)) {
    optimizer =
        std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-4));
    train::TrainOptions o;
    o.loss(loss).lmt_c(1.0);
    objective = train::make_objective(o);
  }
  // The trainer's step (trainer.cpp): power iteration when the objective needs the bound.
  void step(const at::Tensor& x, const at::Tensor& y) {
    if (objective->needs_bound()) lipschitz::power_iteration_step(*model);
    train::ObjectiveOutput out = objective->compute(*model, x, y, 1.0);
    optimizer->zero_grad();
    out.loss.backward();
    optimizer->step();
  }
};

void run_case(const Case& c, int rounds, int steps) {
  at::Tensor x = at::rand({c.batch, c.channels, c.size, c.size});
  at::Tensor y = at::randint(0, 10, {c.batch}, at::kLong);
  Side ce(c, train::Loss::kCe), lmt(c, train::Loss::kLmt);
  ce.step(x, y);  // warm-up (allocations, lazy init)
  lmt.step(x, y);
  std::vector<double> t_ce, t_lmt, ratio;
  for (int r = 0; r < rounds; ++r) {
    auto time_side = [&](Side& s) {
      return seconds_of([&] {
               for (int k = 0; k < steps; ++k) s.step(x, y);
             }) /
             steps;
    };
    double a, b;
    if (r % 2 == 0) {
      a = time_side(ce);
      b = time_side(lmt);
    } else {
      b = time_side(lmt);
      a = time_side(ce);
    }
    t_ce.push_back(a);
    t_lmt.push_back(b);
    ratio.push_back(b / a);
  }
  // Where the extra time goes, on the LMT model: the power-iteration step, and L in kTrain
  // mode with its backward (the rest of an LMT step is a CE step with shifted logits).
  std::vector<double> t_pi, t_bound;
  for (int r = 0; r < rounds; ++r) {
    t_pi.push_back(seconds_of([&] { lipschitz::power_iteration_step(*lmt.model); }));
    t_bound.push_back(seconds_of([&] {
      lmt.optimizer->zero_grad();
      lmt.model->lipschitz_bound(lipschitz::BoundMode::kTrain).backward();
    }));
  }
  const double ce_med = median(t_ce);
  std::printf("%-10s %5lld %3lldx%-3lld %9.1f %9.1f %8.3f %8.3f %8.3f %8.1f%% %8.1f%%\n",
              c.model.c_str(), (long long)c.batch, (long long)c.size, (long long)c.size,
              1e3 * ce_med, 1e3 * median(t_lmt), median(ratio),
              *std::min_element(ratio.begin(), ratio.end()),
              *std::max_element(ratio.begin(), ratio.end()), 100 * median(t_pi) / ce_med,
              100 * median(t_bound) / ce_med);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, rounds = 7, steps = 3;
  std::string which = "lmt-mnist,resnet18";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds"))
      rounds = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--steps"))
      steps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--models"))
      which = argv[i + 1];
    else if (!std::strcmp(argv[i], "--clock"))
      use_cpu_clock = std::strcmp(argv[i + 1], "wall") != 0;
    else {
      std::fprintf(stderr,
                   "usage: bench_lmt [--threads N] [--rounds R] [--steps K] [--models a,b] "
                   "[--clock cpu|wall]\n");
      return 2;
    }
  }
  at::set_num_threads(threads);
  std::printf(
      "bench_lmt: %d thread(s), %d rounds x %d steps per side, %s time; ratio = LMT / CE "
      "step\n",
      threads, rounds, steps, use_cpu_clock ? "process CPU" : "wall");
  std::printf("%-10s %5s %7s %9s %9s %8s %8s %8s %9s %9s\n", "model", "batch", "input", "CE ms",
              "LMT ms", "ratio", "min", "max", "PI/CE", "L+bwd/CE");
  std::vector<Case> cases{{"lmt-mnist", 1, 28, 50, {}},
                          {"resnet18", 3, 32, 32, {{"stem", "cifar"}}}};
  std::stringstream list(which);
  std::string name;
  while (std::getline(list, name, ','))
    for (const auto& c : cases)
      if (c.model == name) run_case(c, rounds, steps);
  return 0;
}
