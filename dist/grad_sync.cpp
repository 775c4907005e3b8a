// GradSync: bucket planning, autograd post hooks on each parameter's grad accumulator that
// launch a bucket's all-reduce when its last gradient lands, and the finish() that waits and
// writes the averages back. Buckets are launched strictly in bucket order on every rank so that
// collectives match across ranks even when gradients arrive in different orders.
// After the first finish() every gradient is a view into its bucket's flat buffer (DDP's
// gradient_as_bucket_view): backward accumulates straight into the bucket, the all-reduce runs in
// place, and neither the copy in nor the copy out is needed. A gradient replaced behind our back
// (zero_grad(set_to_none), an assignment) is detected by its data pointer, copied once, and made
// a view again.
#include <lmt/dist/error.h>
#include <lmt/dist/grad_sync.h>
#include <lmt/io/trace.h>

#include <algorithm>

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <mutex>
#include <vector>

namespace lmt::dist {

std::vector<GradBucket> plan_buckets(const std::vector<at::Tensor>& params, size_t first_bytes,
                                     size_t cap_bytes) {
  std::vector<GradBucket> buckets;
  GradBucket current;
  at::Device device = at::kCPU;
  auto close = [&] {
    if (!current.params.empty()) buckets.push_back(std::move(current));
    current = GradBucket();
  };
  for (size_t k = params.size(); k-- > 0;) {
    const at::Tensor& p = params[k];
    const size_t bytes = static_cast<size_t>(p.numel()) * p.element_size();
    const size_t cap = buckets.empty() ? std::min(first_bytes, cap_bytes) : cap_bytes;
    if (!current.params.empty() &&
        (p.scalar_type() != current.dtype || p.device() != device || current.bytes + bytes > cap)) {
      close();
    }
    if (current.params.empty()) {
      current.dtype = p.scalar_type();
      device = p.device();
    }
    current.params.push_back(k);
    current.offsets.push_back(current.numel);
    current.numel += p.numel();
    current.bytes += bytes;
  }
  close();
  return buckets;
}

struct GradSync::State {
  std::shared_ptr<Communicator> comm;
  std::vector<at::Tensor> params;  // trainable parameters, constructor order
  GradSyncOptions options;
  std::vector<GradBucket> buckets;
  std::vector<std::pair<size_t, size_t>> where;  // param -> (bucket, slot)
  std::vector<at::Tensor> flats;
  std::vector<std::shared_ptr<Work>> works;
  std::vector<int64_t> launched_us;  // per bucket, when tracing: the launch time
  uint64_t traced_spans = 0;         // the trace's async ids
  std::vector<size_t> pending;       // per bucket: gradients still to come this step
  std::vector<char> ready;           // per param
  size_t next_launch = 0;
  bool arrived_twice = false;
  bool accumulating = false;  // accumulate_only(true): backward only adds into grad()
  // Buckets launch during backward: more than one rank, --overlap, and more than one bucket (a
  // model whose gradients fit one bucket has nothing to overlap: its all-reduce starts at the end
  // of backward either way, where finish() launches it; lmt-mnist had run at 0.85-0.92x).
  bool overlapping = false;
  std::mutex mu;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hook_keys;

  void reset_step() {
    std::fill(ready.begin(), ready.end(), 0);
    for (size_t b = 0; b < buckets.size(); ++b) pending[b] = buckets[b].params.size();
    works.assign(buckets.size(), nullptr);
    launched_us.assign(buckets.size(), 0);
    next_launch = 0;
    arrived_twice = false;
  }

  at::Tensor slot(size_t b, size_t s) const {
    const size_t i = buckets[b].params[s];
    return flats[b].narrow(0, buckets[b].offsets[s], params[i].numel());
  }

  // Called with mu held. Gathers the bucket's gradients (zeros for those that did not arrive)
  // into its flat buffer, a no-op for those already viewing it, and starts the averaging
  // all-reduce.
  void launch(size_t b) {
    at::NoGradGuard no_grad;
    const GradBucket& bucket = buckets[b];
    for (size_t s = 0; s < bucket.params.size(); ++s) {
      const size_t i = bucket.params[s];
      at::Tensor dst = slot(b, s);
      const at::Tensor& g = params[i].grad();
      if (g.defined() && (ready[i] || !options.overlap())) {
        if (g.data_ptr() != dst.data_ptr() || !g.is_contiguous()) dst.copy_(g.reshape(-1));
      } else {
        dst.zero_();
      }
    }
    at::Tensor& flat = flats[b];
    if (io::trace::enabled()) launched_us[b] = io::trace::now_us();
    works[b] = comm->all_reduce_async(flat, ReduceOp::kAvg);
  }

  void on_grad_ready(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (accumulating) return;  // a micro-batch before the last: nothing is launched
    if (ready[i]) {
      arrived_twice = true;
      return;
    }
    ready[i] = 1;
    --pending[where[i].first];
    if (!overlapping) return;  // one bucket: finish() launches it
    while (next_launch < buckets.size() && pending[next_launch] == 0) launch(next_launch++);
  }
};

namespace {

class GradReadyHook : public torch::autograd::FunctionPostHook {
 public:
  GradReadyHook(std::weak_ptr<GradSync::State> state, size_t index)
      : state_(std::move(state)), index_(index) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    if (auto state = state_.lock()) state->on_grad_ready(index_);
    return outputs;
  }

 private:
  std::weak_ptr<GradSync::State> state_;
  size_t index_;
};

}  // namespace

GradSync::GradSync(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> params,
                   GradSyncOptions options)
    : state_(std::make_shared<State>()) {
  if (!comm) throw DistError("GradSync: communicator is null");
  State& s = *state_;
  s.comm = std::move(comm);
  s.options = options;
  for (auto& p : params) {
    if (p.defined() && p.requires_grad()) s.params.push_back(p);
  }
  s.buckets = plan_buckets(s.params, options.first_bucket_bytes(), options.bucket_cap_bytes());
  s.where.resize(s.params.size());
  for (size_t b = 0; b < s.buckets.size(); ++b) {
    const GradBucket& bucket = s.buckets[b];
    for (size_t k = 0; k < bucket.params.size(); ++k) s.where[bucket.params[k]] = {b, k};
    if (s.comm->size() > 1) {
      s.flats.push_back(
          at::empty({bucket.numel}, s.params[bucket.params[0]].options().requires_grad(false)));
    }
  }
  s.ready.resize(s.params.size());
  s.pending.resize(s.buckets.size());
  s.reset_step();
  s.overlapping = s.comm->size() > 1 && options.overlap() && s.buckets.size() > 1;
  if (s.comm->size() == 1 || !options.overlap()) return;  // the hooks also catch a 2nd backward
  for (size_t i = 0; i < s.params.size(); ++i) {
    auto acc = torch::autograd::impl::grad_accumulator(s.params[i]);
    if (!acc) {
      throw DistError("GradSync: parameter " + std::to_string(i) +
                      " is not a leaf that accumulates gradients");
    }
    s.hook_keys.push_back(
        acc->add_post_hook(std::make_unique<GradReadyHook>(std::weak_ptr<State>(state_), i)));
    s.accumulators.push_back(std::move(acc));
  }
}

GradSync::~GradSync() {
  State& s = *state_;
  for (size_t i = 0; i < s.accumulators.size(); ++i) {
    s.accumulators[i]->del_post_hook(s.hook_keys[i]);
  }
  // Let in-flight collectives land before their buffers go away.
  for (auto& w : s.works) {
    if (w) {
      try {
        w->wait();
      } catch (...) {
      }
    }
  }
}

void GradSync::finish() {
  State& s = *state_;
  at::NoGradGuard no_grad;
  if (s.comm->size() == 1) {
    for (auto& p : s.params) {
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    }
    return;
  }
  std::unique_lock<std::mutex> lock(s.mu);
  if (s.arrived_twice) {
    for (size_t b = s.next_launch; b < s.buckets.size(); ++b) s.launch(b);  // keep ranks matched
    for (auto& w : s.works) w->wait();
    s.reset_step();
    throw DistError(
        "GradSync: a gradient arrived twice before finish(); call finish() after "
        "every backward, or accumulate with accumulate_only(true) before all but the last)");
  }
  const size_t launched_in_backward = s.next_launch;
  while (s.next_launch < s.buckets.size()) s.launch(s.next_launch++);
  for (size_t b = 0; b < s.buckets.size(); ++b) {
    s.works[b]->wait();
    if (io::trace::enabled()) {  // the bucket from its launch (during backward) to its result
      const int64_t done = io::trace::now_us();
      io::trace::async_span(
          ("allreduce bucket " + std::to_string(b)).c_str(), "allreduce",
          (uint64_t(s.comm->rank()) << 40) + ++s.traced_spans, s.launched_us[b], done,
          "\"bytes\":" + std::to_string(s.buckets[b].bytes) +
              ",\"launched_during_backward\":" + (b < launched_in_backward ? "true" : "false"));
    }
    const GradBucket& bucket = s.buckets[b];
    for (size_t k = 0; k < bucket.params.size(); ++k) {
      at::Tensor& p = s.params[bucket.params[k]];
      at::Tensor mean = s.slot(b, k);
      // From now on the gradient IS the bucket slot (nothing to copy next step). It aliases the
      // bucket's storage through set_() rather than view(): an autograd view would make
      // Optimizer::zero_grad()'s detach_() throw.
      if (!p.grad().defined() || p.grad().data_ptr() != mean.data_ptr()) {
        std::vector<int64_t> strides(static_cast<size_t>(p.dim()), 1);
        for (int64_t d = p.dim() - 2; d >= 0; --d) strides[d] = strides[d + 1] * p.size(d + 1);
        at::Tensor grad = at::empty({0}, mean.options());
        grad.set_(mean.storage(), mean.storage_offset(), p.sizes(), strides);
        p.mutable_grad() = grad;
      }
    }
  }
  s.reset_step();
}

void GradSync::accumulate_only(bool on) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->accumulating = on;
}

const std::vector<GradBucket>& GradSync::buckets() const { return state_->buckets; }
const GradSyncOptions& GradSync::options() const { return state_->options; }

}  // namespace lmt::dist
