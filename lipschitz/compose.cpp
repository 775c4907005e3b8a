// lmt::lipschitz: forward and bound of Sequential (product), Residual (sum with identity or a
// shortcut) and Parallel (sum of branches), the folded conv + batch-norm part, and the check that
// a tree and the model registering its layers hold the same tensors.
#include <unordered_set>
#include <utility>

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
  BoundedModule* last = parts_.back().get();
  HeadSplit split;
  if (auto* linear = dynamic_cast<BoundedLinearImpl*>(last)) {
    at::Tensor w = linear->weight;
    if (mode == BoundMode::kSound) w = w.detach().to(at::kDouble);
    if (mode == BoundMode::kEstimate) w = w.detach();
    split = {constant_bound(1.0, mode), w};
  } else if (auto* head = dynamic_cast<LinearHead*>(last)) {
    split = {constant_bound(1.0, mode), head->head_weight(mode)};
  } else if (auto* inner = dynamic_cast<SequentialImpl*>(last)) {
    split = inner->head_split(mode);
    if (!split.defined()) return {};
  } else {
    return {};
  }
  at::Tensor body = constant_bound(1.0, mode);
  for (size_t i = 0; i + 1 < parts_.size(); ++i) body = body * parts_[i]->lipschitz_bound(mode);
  split.body_bound = body * split.body_bound;
  return split;
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

ConvBatchNorm2dImpl::ConvBatchNorm2dImpl(BoundedConv2d conv_, torch::nn::BatchNorm2d bn_)
    : conv(register_module("conv", std::move(conv_))), bn(register_module("bn", std::move(bn_))) {
  conv->attach_batch_norm(bn);
}

at::Tensor ConvBatchNorm2dImpl::forward(const at::Tensor& x) {
  return bn->forward(conv->forward(x));
}

at::Tensor ConvBatchNorm2dImpl::lipschitz_bound(BoundMode mode) {
  return conv->spectral_norm(mode);  // the folded operator
}

void require_same_tensors(torch::nn::Module& tree, torch::nn::Module& owner,
                          const std::string& what) {
  // Every defined parameter and buffer with its name in `module`, in registration order.
  using Named = std::vector<std::pair<const void*, std::string>>;
  auto tensors = [](torch::nn::Module& module) {
    Named named;
    for (const auto& p : module.named_parameters())
      if (p.value().defined()) named.emplace_back(p.value().unsafeGetTensorImpl(), p.key());
    for (const auto& b : module.named_buffers())
      if (b.value().defined()) named.emplace_back(b.value().unsafeGetTensorImpl(), b.key());
    return named;
  };
  auto first_missing = [](const Named& from, const Named& in) -> const std::string* {
    std::unordered_set<const void*> present;
    for (const auto& item : in) present.insert(item.first);
    for (const auto& item : from)
      if (!present.count(item.first)) return &item.second;
    return nullptr;
  };
  const Named in_tree = tensors(tree), in_owner = tensors(owner);
  if (const std::string* name = first_missing(in_tree, in_owner))
    throw BoundError(what + ": tensor '" + *name +
                     "' of the composed network is not registered on the model (it would be "
                     "neither saved nor trained)");
  if (const std::string* name = first_missing(in_owner, in_tree))
    throw BoundError(what + ": tensor '" + *name +
                     "' of the model is not part of its composed network (it would be saved but "
                     "neither run nor bounded)");
}

}  // namespace lmt::lipschitz
