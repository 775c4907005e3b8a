// Shared by the attack tests: small classifiers with known weights, synthetic image data and a
// brief in-test training loop (cross-entropy or the LMT loss).
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>

#include <lmt/attack/attack.h>
#include <lmt/lipschitz/lmt_loss.h>
#include <lmt/models/model.h>

namespace lmt::attack::testing {

// Ten Gaussian clusters of 1x8x8 images around prototypes in [0.2, 0.8], clamped to [0,1].
struct Synthetic {
  at::Tensor x, y;
};
inline Synthetic synthetic_images(int64_t n, uint64_t seed, double noise = 0.2) {
  at::manual_seed(1234);  // the same prototypes for every call
  at::Tensor protos = at::rand({10, 1, 8, 8}) * 0.6 + 0.2;
  at::manual_seed(seed);
  at::Tensor y = at::randint(0, 10, {n}, at::kLong);
  at::Tensor x = (protos.index_select(0, y) + noise * at::randn({n, 1, 8, 8})).clamp(0, 1);
  return {x, y};
}

inline std::shared_ptr<models::Model> small_lmt_mnist() {
  models::ModelConfig c;
  c.name = "lmt-mnist";
  c.channels = 1;
  c.height = c.width = 8;
  c.num_classes = 10;
  c.options["hidden"] = "32";
  at::manual_seed(7);
  return models::make_model(c);
}

// Adam, batch 64; lmt_c > 0 trains with the LMT loss (global bound, power iteration each step).
inline void train_briefly(models::Model& model, const Synthetic& data, int steps, double lmt_c) {
  torch::optim::Adam opt(model.parameters(), torch::optim::AdamOptions(3e-3));
  model.train();
  const int64_t n = data.x.size(0);
  for (int s = 0; s < steps; ++s) {
    at::Tensor idx = at::randint(0, n, {64}, at::kLong);
    at::Tensor xb = data.x.index_select(0, idx), yb = data.y.index_select(0, idx);
    at::Tensor logits = model.forward(xb), loss;
    if (lmt_c > 0) {
      lipschitz::power_iteration_step(model);
      loss = lipschitz::lmt_loss(logits, yb, model.lipschitz_bound(lipschitz::BoundMode::kTrain),
                                 lmt_c);
    } else {
      loss = torch::nn::functional::cross_entropy(logits, yb);
    }
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  model.eval();
}

}  // namespace lmt::attack::testing
