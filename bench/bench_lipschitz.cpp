// bench_lipschitz: cost of the Lipschitz bound in a training step (one power-iteration step plus
// the differentiable kTrain bound and its backward) against a plain forward+backward of a small
// CNN.
#include <chrono>
#include <cstdio>
#include <functional>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/lmt_loss.h>
#include <lmt/lipschitz/modules.h>

namespace lip = lmt::lipschitz;

namespace {

// Median wall time in milliseconds of `fn` over `reps` runs after 3 warm-up runs.
double median_ms(const std::function<void()>& fn, int reps) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// The LMT paper's MNIST-style CNN on 28x28 inputs.
lip::Sequential mnist_cnn() {
  using O = lip::BoundedConv2dOptions;
  return lip::Sequential(
      lip::InputNormalization(std::vector<double>{0.2860}, std::vector<double>{0.3530}),
      lip::BoundedConv2d(O(1, 32, 3, 28, 28).padding(1)), lip::ReLU(),
      lip::BoundedConv2d(O(32, 32, 3, 28, 28).padding(1)), lip::ReLU(), lip::MaxPool2d(2, 2),
      lip::BoundedConv2d(O(32, 64, 3, 14, 14).padding(1)), lip::ReLU(),
      lip::BoundedConv2d(O(64, 64, 3, 14, 14).padding(1)), lip::ReLU(), lip::MaxPool2d(2, 2),
      lip::Flatten(), lip::BoundedLinear(64 * 7 * 7, 512), lip::ReLU(),
      lip::BoundedLinear(512, 10));
}

}  // namespace

int main() {
  at::set_num_threads(1);
  at::manual_seed(0);
  auto net = mnist_cnn();
  const int64_t batch = 64;
  at::Tensor x = at::rand({batch, 1, 28, 28});
  at::Tensor y = at::randint(0, 10, {batch}, at::kLong);
  auto params = net->parameters();
  const int reps = 15;

  const double plain = median_ms(
      [&] {
        at::Tensor loss = at::cross_entropy_loss(net->forward(x), y);
        torch::autograd::grad({loss}, params);
      },
      reps);
  const double bound_only = median_ms(
      [&] {
        lip::power_iteration_step(*net);
        at::Tensor L = net->lipschitz_bound(lip::BoundMode::kTrain);
        torch::autograd::grad({L}, params, {}, false, false, /*allow_unused=*/true);
      },
      reps);
  const double lmt = median_ms(
      [&] {
        lip::power_iteration_step(*net);
        at::Tensor L = net->lipschitz_bound(lip::BoundMode::kTrain);
        at::Tensor loss = lip::lmt_loss(net->forward(x), y, L, 0.5);
        torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
      },
      reps);
  const double sound = median_ms([&] { net->lipschitz_bound(lip::BoundMode::kSound); }, 3);
  const double estimate = median_ms([&] { net->lipschitz_bound(lip::BoundMode::kEstimate); }, 3);

  std::printf("bench_lipschitz: lmt-mnist-style CNN, batch %lld, 1 thread, median of %d\n",
              static_cast<long long>(batch), reps);
  std::printf("%-44s %10s %8s\n", "what", "ms", "ratio");
  std::printf("%-44s %10.2f %8.3f\n", "plain CE forward+backward", plain, 1.0);
  std::printf("%-44s %10.2f %8.3f\n", "power-iteration step + kTrain L + backward", bound_only,
              bound_only / plain);
  std::printf("%-44s %10.2f %8.3f\n", "LMT step (all of the above, one graph)", lmt, lmt / plain);
  std::printf("%-44s %10.2f %8.3f\n", "kEstimate L (converged power iteration)", estimate,
              estimate / plain);
  std::printf("%-44s %10.2f %8.3f\n", "kSound L (float64 SVD / FFT spectrum)", sound,
              sound / plain);
  std::printf("L: kTrain %.4f  kEstimate %.4f  kSound %.4f\n",
              net->lipschitz_bound(lip::BoundMode::kTrain).item<double>(),
              net->lipschitz_bound(lip::BoundMode::kEstimate).item<double>(),
              net->lipschitz_bound(lip::BoundMode::kSound).item<double>());

  // The sound bound of ResNet-18's heaviest convolutions (CIFAR stem) alone.
  using O = lip::BoundedConv2dOptions;
  for (auto [c, hw] : std::vector<std::pair<int64_t, int64_t>>{{64, 32}, {512, 4}}) {
    lip::BoundedConv2d conv(O(c, c, 3, hw, hw).padding(1).bias(false));
    const double ms = median_ms([&] { conv->spectral_norm(lip::BoundMode::kSound); }, 1);
    std::printf("kSound of one %lldx%lld 3x3 conv on %lldx%lld: %.1f ms\n",
                static_cast<long long>(c), static_cast<long long>(c), static_cast<long long>(hw),
                static_cast<long long>(hw), ms);
  }
  return 0;
}
