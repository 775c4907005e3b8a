// verify_and_broadcast: compare a hash of every rank's parameter/buffer signature, name the
// first difference when they disagree, then broadcast rank 0's values flattened per dtype.
#include <lmt/dist/error.h>
#include <lmt/dist/module_sync.h>
#include <lmt/io/digest.h>

#include <ATen/core/grad_mode.h>

#include <map>
#include <sstream>

namespace lmt::dist {
namespace {

struct Entry {
  std::string kind, name, shape, dtype;
};

std::string shape_text(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << ']';
  return out.str();
}

std::vector<at::Tensor> synced_tensors(torch::nn::Module& module, std::vector<Entry>* entries) {
  std::vector<at::Tensor> tensors;
  auto add = [&](const char* kind, const std::string& name, const at::Tensor& t) {
    if (!t.defined()) return;
    if (entries)
      entries->push_back({kind, name, shape_text(t.sizes()), c10::toString(t.scalar_type())});
    tensors.push_back(t);
  };
  for (const auto& p : module.named_parameters(true)) add("parameter", p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) add("buffer", b.key(), b.value());
  return tensors;
}

// One line per tensor; '\n' and '\t' cannot occur in module names.
std::string encode(const std::vector<Entry>& entries) {
  std::string s;
  for (const auto& e : entries)
    s += e.kind + '\t' + e.name + '\t' + e.shape + '\t' + e.dtype + '\n';
  return s;
}

std::vector<Entry> decode(const std::string& s) {
  std::vector<Entry> entries;
  std::istringstream lines(s);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    Entry e;
    std::getline(f, e.kind, '\t');
    std::getline(f, e.name, '\t');
    std::getline(f, e.shape, '\t');
    std::getline(f, e.dtype, '\t');
    entries.push_back(e);
  }
  return entries;
}

// The first difference between rank r's list and rank 0's, as a sentence.
std::string first_mismatch(int r, const std::vector<Entry>& mine, const std::vector<Entry>& ref) {
  const std::string who = "rank " + std::to_string(r) + ": ";
  for (size_t i = 0; i < std::max(mine.size(), ref.size()); ++i) {
    if (i >= mine.size()) {
      return who + "has no " + ref[i].kind + " '" + ref[i].name + "' that rank 0 has";
    }
    if (i >= ref.size()) {
      return who + "has " + mine[i].kind + " '" + mine[i].name + "' that rank 0 does not have";
    }
    const Entry& a = mine[i];
    const Entry& b = ref[i];
    if (a.kind != b.kind || a.name != b.name) {
      return who + a.kind + " " + std::to_string(i) + " is '" + a.name + "', rank 0 has " + b.kind +
             " '" + b.name + "'";
    }
    if (a.shape != b.shape) {
      return who + a.kind + " '" + a.name + "' has shape " + a.shape + ", rank 0 has " + b.shape;
    }
    if (a.dtype != b.dtype) {
      return who + a.kind + " '" + a.name + "' has dtype " + a.dtype + ", rank 0 has " + b.dtype;
    }
  }
  return "";
}

}  // namespace

void verify_and_broadcast(Communicator& comm, torch::nn::Module& module) {
  std::vector<Entry> entries;
  std::vector<at::Tensor> tensors = synced_tensors(module, &entries);
  if (comm.size() == 1) return;
  const std::string mine = encode(entries);
  at::Tensor hash = at::full({1}, static_cast<int64_t>(io::fnv1a64(mine)), at::kLong);
  at::Tensor hashes = comm.all_gather(hash).view(-1);
  if (!hashes.eq(hashes[0]).all().item<bool>()) {
    std::vector<std::string> lists = all_gather_strings(comm, mine);
    const std::vector<Entry> ref = decode(lists[0]);
    for (int r = 1; r < comm.size(); ++r) {
      std::string diff = first_mismatch(r, decode(lists[r]), ref);
      if (!diff.empty()) throw DistError("model check: " + diff);
    }
    throw DistError("model check: parameter/buffer signature hashes differ but lists agree");
  }
  // One broadcast per dtype (first-appearance order, the same on every rank).
  at::NoGradGuard no_grad;
  std::vector<at::ScalarType> order;
  std::map<at::ScalarType, std::vector<at::Tensor>> groups;
  for (const auto& t : tensors) {
    if (!groups.count(t.scalar_type())) order.push_back(t.scalar_type());
    groups[t.scalar_type()].push_back(t);
  }
  for (at::ScalarType type : order) {
    std::vector<at::Tensor> flat;
    for (const auto& t : groups[type]) flat.push_back(t.detach().reshape(-1).cpu());
    at::Tensor buffer = at::cat(flat);
    comm.broadcast(buffer, 0);
    int64_t offset = 0;
    for (auto& t : groups[type]) {
      t.detach().copy_(buffer.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

}  // namespace lmt::dist
