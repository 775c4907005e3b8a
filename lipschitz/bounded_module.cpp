// lmt::lipschitz: the BoundedModule / SpectralOperator registry walks over a module tree.
// Finds every operator by dynamic_cast over named_modules(), in registration order.
#include <lmt/lipschitz/bounded_module.h>

#include <chrono>

#include "spectral.h"

namespace lmt::lipschitz {

const char* to_string(BoundMode mode) {
  switch (mode) {
    case BoundMode::kTrain:
      return "train";
    case BoundMode::kEstimate:
      return "estimate";
    case BoundMode::kSound:
      return "sound";
  }
  return "unknown";
}

namespace {
thread_local detail::BoundMemoEntries* memo = nullptr;
}

detail::BoundMemoEntries* detail::active_memo() { return memo; }

BoundMemo::BoundMemo(const SoundBoundLimits& limits)
    : entries_(new detail::BoundMemoEntries), previous_(memo) {
  entries_->limits = limits;
  memo = entries_.get();
}
BoundMemo::~BoundMemo() { memo = previous_; }

SoundBound SpectralOperator::sound_bound() {
  SoundBound b;
  const auto start = std::chrono::steady_clock::now();
  b.bound = spectral_norm(BoundMode::kSound).item<double>();
  b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  b.reference = spectral_norm(BoundMode::kEstimate).item<double>();
  b.method = "sound";
  return b;
}

std::vector<NamedOperator> spectral_operators(torch::nn::Module& module) {
  std::vector<NamedOperator> ops;
  if (auto* self = dynamic_cast<SpectralOperator*>(&module)) ops.push_back({"", self});
  for (const auto& item : module.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    if (auto* op = dynamic_cast<SpectralOperator*>(item.value().get())) {
      ops.push_back({item.key(), op});
    }
  }
  return ops;
}

void power_iteration_step(torch::nn::Module& module, int iterations) {
  for (auto& named : spectral_operators(module)) named.op->power_iteration_step(iterations);
}

std::vector<at::Tensor> power_iteration_vectors(torch::nn::Module& module) {
  std::vector<at::Tensor> vectors;
  for (auto& named : spectral_operators(module)) {
    vectors.push_back(named.op->power_iteration_vector());
  }
  return vectors;
}

}  // namespace lmt::lipschitz
