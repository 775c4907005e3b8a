// Power-iteration vector sync: averaging (all_gather, local sum in rank order) and ownership
// sharing (one all_reduce where non-owners contribute zeros).
#include <lmt/dist/error.h>
#include <lmt/dist/vector_sync.h>

#include <ATen/core/grad_mode.h>

namespace lmt::dist {
namespace {

at::Tensor flatten(const std::vector<at::Tensor>& vectors) {
  std::vector<at::Tensor> flat;
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (!vectors[i].defined() || vectors[i].scalar_type() != vectors[0].scalar_type()) {
      throw DistError("vector sync: vector " + std::to_string(i) +
                      " is undefined or has a different dtype from vector 0");
    }
    flat.push_back(vectors[i].detach().reshape(-1));
  }
  return at::cat(flat);
}

}  // namespace

void average_unit_vectors(Communicator& comm, std::vector<at::Tensor>& vectors) {
  if (vectors.empty() || comm.size() == 1) {
    at::NoGradGuard no_grad;
    for (auto& v : vectors) v.div_(v.norm());
    return;
  }
  at::NoGradGuard no_grad;
  at::Tensor all = comm.all_gather(flatten(vectors));  // [size, total]
  at::Tensor sum = all[0].clone();
  for (int r = 1; r < comm.size(); ++r) sum.add_(all[r]);  // same order, same bits, everywhere
  sum.div_(comm.size());
  int64_t offset = 0;
  for (auto& v : vectors) {
    at::Tensor mean = sum.narrow(0, offset, v.numel()).view(v.sizes());
    v.copy_(mean / mean.norm());
    offset += v.numel();
  }
}

void share_owned_vectors(Communicator& comm, std::vector<at::Tensor>& vectors) {
  if (vectors.empty() || comm.size() == 1) return;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> contributions;
  for (size_t i = 0; i < vectors.size(); ++i) {
    at::Tensor v = vectors[i].detach().reshape(-1);
    const bool owner = vector_owner(i, comm.size()) == comm.rank();
    contributions.push_back(owner ? v : at::zeros_like(v));
  }
  at::Tensor flat = at::cat(contributions);
  comm.all_reduce(flat, ReduceOp::kSum);  // x + 0 + ... + 0 == x exactly
  int64_t offset = 0;
  for (auto& v : vectors) {
    v.copy_(flat.narrow(0, offset, v.numel()).view(v.sizes()));
    offset += v.numel();
  }
}

}  // namespace lmt::dist
