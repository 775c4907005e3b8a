// Control messages over any Communicator (strings, doubles) as CPU tensors, and the
// out-of-line destructors of the interface.
#include <lmt/dist/communicator.h>
#include <lmt/dist/error.h>

#include <cstring>

namespace lmt::dist {

Work::~Work() = default;
Communicator::~Communicator() = default;

#if !(defined(LMT_HAVE_NCCL) && LMT_HAVE_NCCL)
bool nccl_available() { return false; }
std::string nccl_version_summary() { return ""; }
std::string cuda_runtime_summary() { return ""; }
#endif

std::vector<std::string> all_gather_strings(Communicator& comm, const std::string& s) {
  at::Tensor len = at::full({1}, static_cast<int64_t>(s.size()), at::kLong);
  at::Tensor lens = comm.all_gather(len).view(-1);
  const int64_t longest = lens.max().item<int64_t>();
  at::Tensor bytes = at::zeros({std::max<int64_t>(longest, 1)}, at::kByte);
  if (!s.empty()) std::memcpy(bytes.data_ptr(), s.data(), s.size());
  at::Tensor all = comm.all_gather(bytes);
  std::vector<std::string> out;
  for (int r = 0; r < comm.size(); ++r) {
    const char* row = static_cast<const char*>(all[r].data_ptr());
    out.emplace_back(row, static_cast<size_t>(lens[r].item<int64_t>()));
  }
  return out;
}

std::string broadcast_string(Communicator& comm, std::string s, int root) {
  at::Tensor len = at::full({1}, static_cast<int64_t>(s.size()), at::kLong);
  comm.broadcast(len, root);
  const int64_t n = len.item<int64_t>();
  at::Tensor bytes = at::zeros({std::max<int64_t>(n, 1)}, at::kByte);
  if (comm.rank() == root && n > 0) std::memcpy(bytes.data_ptr(), s.data(), s.size());
  comm.broadcast(bytes, root);
  return std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(n));
}

std::vector<double> all_reduce_doubles(Communicator& comm, std::vector<double> values,
                                       ReduceOp op) {
  if (values.empty()) return values;
  at::Tensor t = at::empty({static_cast<int64_t>(values.size())}, at::kDouble);
  std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(double));
  comm.all_reduce(t, op);
  std::memcpy(values.data(), t.data_ptr(), values.size() * sizeof(double));
  return values;
}

}  // namespace lmt::dist
