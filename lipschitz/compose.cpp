// lmt::lipschitz: forward and bound of Sequential (product), Residual (sum with identity or a
// shortcut) and Parallel (sum of branches).
#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/rules.h>

namespace lmt::lipschitz {

at::Tensor SequentialImpl::forward(const at::Tensor& x) {
  at::Tensor y = x;
  for (auto& part : parts_) y = part->forward(y);
  return y;
}

at::Tensor SequentialImpl::lipschitz_bound(BoundMode mode) {
  at::Tensor bound = constant_bound(1.0, mode);
  for (auto& part : parts_) bound = bound * part->lipschitz_bound(mode);
  return bound;
}

HeadSplit SequentialImpl::head_split(BoundMode mode) {
  if (parts_.empty()) return {};
  auto* head = dynamic_cast<BoundedLinearImpl*>(parts_.back().get());
  if (head == nullptr) return {};
  at::Tensor body = constant_bound(1.0, mode);
  for (size_t i = 0; i + 1 < parts_.size(); ++i) body = body * parts_[i]->lipschitz_bound(mode);
  at::Tensor w = head->weight;
  if (mode == BoundMode::kSound) w = w.detach().to(at::kDouble);
  if (mode == BoundMode::kEstimate) w = w.detach();
  return {body, w};
}

at::Tensor ResidualImpl::forward(const at::Tensor& x) {
  at::Tensor f = branch_->forward(x);
  return shortcut_ ? shortcut_->forward(x) + f : x + f;
}

at::Tensor ResidualImpl::lipschitz_bound(BoundMode mode) {
  at::Tensor g = shortcut_ ? shortcut_->lipschitz_bound(mode) : constant_bound(1.0, mode);
  return g + branch_->lipschitz_bound(mode);
}

at::Tensor ParallelImpl::forward(const at::Tensor& x) {
  if (branches_.empty()) throw BoundError("Parallel: no branches");
  at::Tensor y = branches_[0]->forward(x);
  for (size_t i = 1; i < branches_.size(); ++i) y = y + branches_[i]->forward(x);
  return y;
}

at::Tensor ParallelImpl::lipschitz_bound(BoundMode mode) {
  if (branches_.empty()) throw BoundError("Parallel: no branches");
  at::Tensor bound = branches_[0]->lipschitz_bound(mode);
  for (size_t i = 1; i < branches_.size(); ++i) bound = bound + branches_[i]->lipschitz_bound(mode);
  return bound;
}

}  // namespace lmt::lipschitz
