// dist_probe: runs one lmt::dist behaviour on every rank of a real MPI job, checks it against
// an independent reference on each rank, and reduces the failure count (exit 0 = all passed).
#include <lmt/dist/communicator.h>
#include <lmt/dist/error.h>
#include <lmt/dist/grad_sync.h>
#include <lmt/dist/module_sync.h>
#include <lmt/dist/runtime.h>
#include <lmt/dist/vector_sync.h>
#include <lmt/io/trace.h>
#include <torch/optim/sgd.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>

#include <unistd.h>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dist = lmt::dist;

namespace {

std::map<std::string, std::string> g_args;
int g_rank = 0;
int g_failures = 0;

std::string arg(const std::string& key, const std::string& fallback) {
  auto it = g_args.find(key);
  return it == g_args.end() ? fallback : it->second;
}

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "rank %d: FAIL %s\n", g_rank, what.c_str());
  }
}

dist::CommOptions comm_options() {
  return dist::CommOptions()
      .timeout(std::chrono::seconds(std::stoi(arg("timeout", "60"))))
      .progress(arg("progress", "thread") == "thread" ? dist::MpiProgress::kThread
                                                      : dist::MpiProgress::kNonblocking);
}

// Counts the trace's "all_reduce" events (one per collective a progress-thread job ran) on the
// thread named "probe main" and on the one named "mpi progress". Events are one JSON object per
// line (io::trace::take_events).
std::pair<int, int> all_reduces_by_thread(const std::string& events) {
  std::map<std::string, std::string> names;  // "tid":N -> thread name
  std::vector<std::string> lines;
  for (size_t at = 0; at < events.size();) {
    size_t end = events.find('\n', at);
    if (end == std::string::npos) end = events.size();
    lines.push_back(events.substr(at, end - at));
    at = end + 1;
  }
  auto tid_of = [](const std::string& line) {
    const size_t t = line.find("\"tid\":");
    return t == std::string::npos ? std::string() : line.substr(t, line.find_first_of(",}", t) - t);
  };
  for (const auto& line : lines) {
    if (line.find("\"name\":\"thread_name\"") == std::string::npos) continue;
    for (const char* name : {"probe main", "mpi progress"})
      if (line.find(std::string("\"args\":{\"name\":\"") + name + "\"") != std::string::npos)
        names[tid_of(line)] = name;
  }
  int on_main = 0, on_progress = 0;
  for (const auto& line : lines) {
    if (line.find("\"name\":\"all_reduce\"") == std::string::npos) continue;
    const std::string& who = names[tid_of(line)];
    on_main += who == "probe main";
    on_progress += who == "mpi progress";
  }
  return {on_main, on_progress};
}

void probe_collectives(dist::Communicator& comm) {
  const int n = comm.size(), r = comm.rank();
  for (at::ScalarType type : {at::kFloat, at::kDouble, at::kInt, at::kLong}) {
    const std::string name = c10::toString(type);
    at::Tensor base = at::arange(7, at::kLong).to(type);
    at::Tensor t = base * (r + 1);
    comm.all_reduce(t, dist::ReduceOp::kSum);
    check(at::equal(t, base * (n * (n + 1) / 2)), "all_reduce sum " + name);
    t = base * (r + 1);
    comm.all_reduce(t, dist::ReduceOp::kMax);
    check(at::equal(t, base * n), "all_reduce max " + name);
    t = base * (r + 1);
    comm.all_reduce(t, dist::ReduceOp::kMin);
    check(at::equal(t, base), "all_reduce min " + name);
  }
  at::Tensor avg = at::arange(6, at::kDouble) * (r + 1);
  comm.all_reduce(avg, dist::ReduceOp::kAvg);
  check(at::allclose(avg, at::arange(6, at::kDouble) * ((n + 1) / 2.0)), "all_reduce avg");
  // A non-contiguous view is reduced in place.
  at::Tensor square = at::arange(12, at::kFloat).view({3, 4});
  at::Tensor view = (square * (r + 1)).t();
  comm.all_reduce(view, dist::ReduceOp::kSum);
  check(at::equal(view, square.t() * (n * (n + 1) / 2)), "all_reduce non-contiguous");
  // Several async reductions waited in reverse order.
  std::vector<at::Tensor> ts;
  std::vector<std::shared_ptr<dist::Work>> works;
  for (int k = 0; k < 3; ++k) ts.push_back(at::full({1000}, float(r + k)));
  for (auto& x : ts) works.push_back(comm.all_reduce_async(x, dist::ReduceOp::kSum));
  for (int k = 2; k >= 0; --k) works[k]->wait();
  for (int k = 0; k < 3; ++k) {
    check(at::equal(ts[k], at::full({1000}, float(n * (n - 1) / 2 + n * k))), "async all_reduce");
  }
  // Collectives waited as soon as they are launched (the waiting thread issues them itself when
  // the progress thread is idle and nothing is queued before them) mixed with queued ones waited
  // in a rank-dependent order and blocking calls in between: which thread issued what differs
  // between ranks, the issue order and so the results must not.
  // The trace shows which thread issued each collective: with --progress thread both paths must
  // have been taken (a queued job waited out of order can only be run by the progress thread; one
  // waited at once is issued by the waiter unless the progress thread wakes first, every time).
  const bool threaded = arg("progress", "thread") == "thread";
  lmt::io::trace::set_thread_name("probe main");
  lmt::io::trace::take_events();
  lmt::io::trace::start(r);
  std::mt19937 shared(1234), mine(99 + r);  // sizes agree on every rank, wait choices do not
  for (int round = 0; round < 300; ++round) {
    const int count = 1 + int(shared() % 4);
    std::vector<at::Tensor> xs;
    std::vector<std::shared_ptr<dist::Work>> ws;
    for (int k = 0; k < count; ++k) {
      xs.push_back(at::full({int64_t(1) << (shared() % 15)}, float(r + round + k)));
      ws.push_back(comm.all_reduce_async(xs.back(), dist::ReduceOp::kSum));
      if (mine() % 2) ws.back()->wait();
    }
    std::vector<int> order(size_t(count), 0);
    for (int k = 0; k < count; ++k) order[size_t(k)] = k;
    std::shuffle(order.begin(), order.end(), mine);
    for (int k : order) ws[size_t(k)]->wait();
    for (int k = 0; k < count; ++k)
      check(at::equal(xs[size_t(k)],
                      at::full_like(xs[size_t(k)], float(n * (n - 1) / 2 + n * (round + k)))),
            "all_reduce waited at once or queued, round " + std::to_string(round));
    if (shared() % 3 == 0) {
      at::Tensor g2 = comm.all_gather(at::full({3}, int64_t(r + round)));
      check(at::equal(g2.select(1, 0), at::arange(n, at::kLong) + round), "all_gather between");
    }
  }
  lmt::io::trace::stop();
  {
    const auto [on_main, on_progress] = all_reduces_by_thread(lmt::io::trace::take_events());
    if (threaded) {
      check(on_progress > 0,
            "no all_reduce ran on the 'mpi progress' thread (is --progress "
            "thread running? it needs MPI_THREAD_MULTIPLE)");
      check(on_main > 0, "no all_reduce was issued by the waiting thread itself");
    } else {
      check(on_progress == 0, "an 'mpi progress' thread ran with --progress nonblocking");
    }
    if (r == 0)
      std::printf("all_reduce jobs run by the waiter: %d, by the progress thread: %d\n", on_main,
                  on_progress);
  }
  // Large random sums (segmented/ring algorithms): every rank ends with the same bits.
  for (int64_t numel : {int64_t(1) << 12, int64_t(1) << 21}) {
    at::manual_seed(55 + r);
    at::Tensor big = at::randn({numel});
    at::Tensor want = comm.all_gather(big).to(at::kDouble).sum(0);
    comm.all_reduce(big, dist::ReduceOp::kSum);
    check(at::allclose(big.to(at::kDouble), want, 1e-5, 1e-5), "large all_reduce value");
    at::Tensor all = comm.all_gather(big);
    for (int q = 1; q < n; ++q) check(at::equal(all[q], all[0]), "large all_reduce identical");
  }
  for (int root = 0; root < n; ++root) {
    at::Tensor b = at::full({5}, double(r));
    comm.broadcast(b, root);
    check(at::equal(b, at::full({5}, double(root))), "broadcast root " + std::to_string(root));
  }
  at::Tensor g = comm.all_gather(at::full({2, 3}, int64_t(r)));
  check(g.sizes() == at::IntArrayRef({n, 2, 3}), "all_gather shape");
  for (int q = 0; q < n; ++q)
    check(at::equal(g[q], at::full({2, 3}, int64_t(q))), "all_gather row");
  comm.barrier();
  auto strings = dist::all_gather_strings(comm, "rank-" + std::string(r, 'x'));
  check(static_cast<int>(strings.size()) == n, "all_gather_strings size");
  for (int q = 0; q < n && q < static_cast<int>(strings.size()); ++q) {
    check(strings[q] == "rank-" + std::string(q, 'x'), "all_gather_strings row");
  }
  std::string s = dist::broadcast_string(comm, r == n - 1 ? "from the last rank" : "", n - 1);
  check(s == "from the last rank", "broadcast_string");
  auto d = dist::all_reduce_doubles(comm, {1.5 * r, 1.0}, dist::ReduceOp::kSum);
  check(d.size() == 2 && d[0] == 1.5 * n * (n - 1) / 2 && d[1] == n, "all_reduce_doubles");
  // A Work outlives its communicator: the destructor finishes the queued collectives, and
  // waiting afterwards returns their results without touching the destroyed communicator.
  {
    auto second = dist::make_mpi_communicator(comm_options());
    std::vector<at::Tensor> xs;
    std::vector<std::shared_ptr<dist::Work>> ws;
    for (int k = 0; k < 4; ++k) {
      xs.push_back(at::full({4096}, float(r + k)));
      ws.push_back(second->all_reduce_async(xs.back(), dist::ReduceOp::kSum));
    }
    second.reset();
    for (int k = 3; k >= 0; --k) ws[size_t(k)]->wait();
    for (int k = 0; k < 4; ++k)
      check(at::equal(xs[size_t(k)], at::full({4096}, float(n * (n - 1) / 2 + n * k))),
            "all_reduce waited after its communicator was destroyed");
  }
}

// A small net with an unused-on-odd-ranks parameter and a frozen one.
struct ProbeNet : torch::nn::Module {
  ProbeNet() {
    fc1 = register_module("fc1", torch::nn::Linear(20, 30));
    fc2 = register_module("fc2", torch::nn::Linear(30, 30));
    fc3 = register_module("fc3", torch::nn::Linear(30, 5));
    sometimes = register_parameter("sometimes", at::randn({7}));
    frozen = register_parameter("frozen", at::randn({3}), /*requires_grad=*/false);
  }
  at::Tensor loss(const at::Tensor& x, const at::Tensor& y, bool use_sometimes) {
    at::Tensor h = fc3->forward(fc2->forward(fc1->forward(x).tanh()).tanh());
    at::Tensor l = torch::nn::functional::cross_entropy(h, y) + frozen.sum();
    if (use_sometimes) l = l + 0.1 * (sometimes * sometimes).sum();
    return l;
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
  at::Tensor sometimes, frozen;
};

void probe_grad_sync(std::shared_ptr<dist::Communicator> comm) {
  const int n = comm->size(), r = comm->rank();
  at::manual_seed(0);
  ProbeNet net;
  at::manual_seed(100 + r);
  at::Tensor x = at::randn({8, 20});
  at::Tensor y = at::randint(0, 5, {8}, at::kLong);
  const bool use_sometimes = r % 2 == 0;
  std::vector<at::Tensor> params = net.parameters();
  // Reference: each rank's plain gradients, gathered and averaged in rank order.
  net.loss(x, y, use_sometimes).backward();
  std::vector<at::Tensor> expected;
  for (auto& p : params) {
    if (!p.requires_grad()) continue;
    at::Tensor g = p.grad().defined() ? p.grad().clone() : at::zeros_like(p);
    at::Tensor all = comm->all_gather(g);
    expected.push_back(all.to(at::kDouble).sum(0).div(n).to(at::kFloat));
    p.mutable_grad() = at::Tensor();
  }
  const size_t cap = std::stoul(arg("cap", "26214400"));
  const size_t first = std::stoul(arg("first", "1048576"));
  dist::GradSync sync(
      comm, params,
      dist::GradSyncOptions().first_bucket_bytes(first).bucket_cap_bytes(cap).overlap(
          arg("overlap", "1") == "1"));
  // Buckets: reverse registration order, within the caps unless a gradient alone exceeds one.
  std::vector<size_t> order;
  for (size_t b = 0; b < sync.buckets().size(); ++b) {
    const auto& bucket = sync.buckets()[b];
    order.insert(order.end(), bucket.params.begin(), bucket.params.end());
    check(bucket.params.size() == 1 || bucket.bytes <= (b == 0 ? first : cap), "bucket cap");
  }
  check(order.size() == expected.size(), "every trainable parameter is in one bucket");
  for (size_t k = 0; k < order.size(); ++k)
    check(order[k] == order.size() - 1 - k, "reverse order");
  for (int step = 0; step < 2; ++step) {
    net.loss(x, y, use_sometimes).backward();
    sync.finish();
    size_t k = 0;
    for (auto& p : params) {
      if (!p.requires_grad()) continue;
      const std::string what = "step " + std::to_string(step) + " param " + std::to_string(k);
      check(p.grad().defined() && at::allclose(p.grad(), expected[k], 1e-5, 1e-7),
            what + " grad equals the mean of the ranks' gradients");
      at::Tensor all = comm->all_gather(p.grad());
      for (int q = 1; q < n; ++q) check(at::equal(all[q], all[0]), what + " identical on ranks");
      if (step == 0)
        p.mutable_grad() = at::Tensor();  // as zero_grad(set_to_none)
      else
        p.grad().zero_();
      ++k;
    }
  }
}

// Data parallelism's promise: ranks taking equal shards of a global batch, each with its shard's
// mean loss, get after GradSync the gradient of the global batch's mean loss on one process.
void probe_equivalence(std::shared_ptr<dist::Communicator> comm) {
  const int n = comm->size(), r = comm->rank();
  const int64_t global = 24, shard = global / n;
  at::manual_seed(3);
  at::Tensor x = at::randn({global, 20});
  at::Tensor y = at::randint(0, 5, {global}, at::kLong);
  at::manual_seed(0);
  ProbeNet whole;
  whole.loss(x, y, true).backward();
  at::manual_seed(0);
  ProbeNet net;
  dist::GradSync sync(comm, net.parameters(),
                      dist::GradSyncOptions().overlap(arg("overlap", "1") == "1"));
  net.loss(x.narrow(0, r * shard, shard), y.narrow(0, r * shard, shard), true).backward();
  sync.finish();
  auto want = whole.parameters();
  auto got = net.parameters();
  for (size_t k = 0; k < got.size(); ++k) {
    if (!got[k].requires_grad()) continue;
    check(at::allclose(got[k].grad(), want[k].grad(), 1e-5, 1e-6),
          "parameter " + std::to_string(k) + " gradient equals the single-process global batch's");
  }
  // Optimizer steps: after finish() the gradients are views into GradSync's buckets, and
  // zero_grad() (in-place zeroing) and step() work on them; the replicas stay equal to the
  // single-process run.
  torch::optim::SGD whole_opt(whole.parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  torch::optim::SGD net_opt(net.parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  whole_opt.step();
  net_opt.step();
  for (int step = 0; step < 3; ++step) {
    whole_opt.zero_grad();
    whole.loss(x, y, true).backward();
    whole_opt.step();
    net_opt.zero_grad();
    net.loss(x.narrow(0, r * shard, shard), y.narrow(0, r * shard, shard), true).backward();
    sync.finish();
    net_opt.step();
  }
  for (size_t k = 0; k < got.size(); ++k) {
    check(at::allclose(got[k], want[k], 1e-5, 1e-6),
          "parameter " + std::to_string(k) + " after 4 SGD steps equals the single process's");
  }
}

struct SyncNet : torch::nn::Module {
  explicit SyncNet(int in) {
    fc = register_module("fc", torch::nn::Linear(in, 10));
    bn = register_module("bn", torch::nn::BatchNorm1d(10));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};

void probe_module_sync(dist::Communicator& comm) {
  const int r = comm.rank();
  const bool mismatch = arg("mismatch", "0") == "1";
  at::manual_seed(1000 + r);
  SyncNet net(mismatch && r == 1 ? 100 : 50);
  net.bn->running_mean.add_(r);  // buffers differ too
  if (mismatch) {
    try {
      dist::verify_and_broadcast(comm, net);
      check(false, "verify_and_broadcast accepted a shape mismatch");
    } catch (const dist::DistError& e) {
      const std::string want =
          "rank 1: parameter 'fc.weight' has shape [10, 100], rank 0 has [10, 50]";
      check(std::string(e.what()).find(want) != std::string::npos,
            std::string("message names parameter and rank: ") + e.what());
    }
    return;
  }
  std::vector<at::Tensor> mine;
  for (auto& t : net.parameters()) mine.push_back(t.detach().clone());
  for (auto& t : net.buffers()) mine.push_back(t.detach().clone());
  dist::verify_and_broadcast(comm, net);
  std::vector<at::Tensor> now = net.parameters();
  for (auto& t : net.buffers()) now.push_back(t);
  for (size_t k = 0; k < now.size(); ++k) {
    at::Tensor all = comm.all_gather(now[k].detach());
    at::Tensor before = comm.all_gather(mine[k]);
    for (int q = 0; q < comm.size(); ++q) {
      check(at::equal(all[q], before[0]), "tensor " + std::to_string(k) + " equals rank 0's");
    }
  }
}

void probe_vectors(dist::Communicator& comm) {
  const int n = comm.size(), r = comm.rank();
  at::manual_seed(7 + r);
  std::vector<at::Tensor> vs = {at::randn({5}), at::randn({1, 17}), at::randn({40})};
  std::vector<at::Tensor> gathered;
  for (auto& v : vs) gathered.push_back(comm.all_gather(v));
  std::vector<at::Tensor> owned = {vs[0].clone(), vs[1].clone(), vs[2].clone()};
  dist::average_unit_vectors(comm, vs);
  for (size_t k = 0; k < vs.size(); ++k) {
    at::Tensor mean = gathered[k].to(at::kDouble).mean(0);
    at::Tensor want = (mean / mean.norm()).to(at::kFloat);
    check(at::allclose(vs[k], want, 1e-5, 1e-6), "average_unit_vectors value");
    check(std::abs(vs[k].norm().item<double>() - 1.0) < 1e-6, "unit norm");
    at::Tensor all = comm.all_gather(vs[k]);
    for (int q = 1; q < n; ++q) check(at::equal(all[q], all[0]), "bitwise identical average");
  }
  dist::share_owned_vectors(comm, owned);
  for (size_t k = 0; k < owned.size(); ++k) {
    check(at::equal(owned[k], gathered[k][k % n]), "owner's vector everywhere");
  }
  (void)r;
}

void probe_timeout(dist::Communicator& comm) {
  comm.barrier();
  if (comm.rank() == std::stoi(arg("sleep-rank", "1"))) {
    if (arg("stall", "sleep") == "stop") raise(SIGSTOP);  // frozen: cannot answer the probe
    std::this_thread::sleep_for(std::chrono::seconds(std::stoi(arg("sleep", "60"))));
  }
  at::Tensor t = at::ones({4});
  comm.all_reduce(t);
  check(false, "all_reduce returned although a rank slept past the timeout");
}

void probe_kill(dist::Communicator& comm) {
  comm.barrier();
  if (comm.rank() == std::stoi(arg("victim", "2"))) raise(SIGKILL);
  for (int k = 0; k < 600; ++k) {
    at::Tensor t = at::ones({1 << 16});
    comm.all_reduce(t);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  check(false, "ranks kept running for a minute after a peer was killed");
}

void probe_throw(dist::Communicator& comm) {
  comm.barrier();
  if (comm.rank() == std::stoi(arg("thrower", "1"))) throw dist::DistError("injected failure");
  at::Tensor t = at::ones({4});
  comm.all_reduce(t);
  check(false, "all_reduce returned although a peer threw");
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<dist::Runtime> runtime;
  try {
    // --startup-timeout S: the start-up deadline (read before MPI starts, as lmt does).
    dist::RuntimeOptions options;
    for (int i = 1; i + 1 < argc; ++i)
      if (std::string(argv[i]) == "--startup-timeout")
        options.startup_timeout(std::chrono::seconds(std::stoi(argv[i + 1])));
    runtime = std::make_unique<dist::Runtime>(argc, argv, options);
  } catch (const std::exception& e) {
    dist::report_error(dist::RankEnv(), e.what());
    return 1;
  }
  const dist::RankEnv& env = runtime->env();
  try {
    g_rank = runtime->rank();
    at::set_num_threads(1);
    const std::string what = argc > 1 ? argv[1] : "";
    for (int i = 2; i + 1 < argc; i += 2) g_args[std::string(argv[i]).substr(2)] = argv[i + 1];
    if (what == "runtime") {
      std::printf("rank %d size %d local %d/%d launcher %s\n", env.rank, env.world_size,
                  env.local_rank, env.local_size, env.launcher.c_str());
      return 0;
    }
    auto comm = dist::make_mpi_communicator(comm_options());
    // --staged 1: every tensor through make_staging_communicator's host copies (the path of
    // --grad-backend mpi on GPUs), which must give the same results.
    if (arg("staged", "0") == "1") comm = dist::make_staging_communicator(comm, true);
    if (what == "collectives")
      probe_collectives(*comm);
    else if (what == "grad_sync")
      probe_grad_sync(comm);
    else if (what == "equivalence")
      probe_equivalence(comm);
    else if (what == "module_sync")
      probe_module_sync(*comm);
    else if (what == "vectors")
      probe_vectors(*comm);
    else if (what == "timeout")
      probe_timeout(*comm);
    else if (what == "kill")
      probe_kill(*comm);
    else if (what == "throw")
      probe_throw(*comm);
    else
      throw dist::DistError("dist_probe: unknown probe '" + what + "'");
    auto total = dist::all_reduce_doubles(*comm, {double(g_failures)}, dist::ReduceOp::kSum);
    if (g_rank == 0) {
      std::printf("%s %s on %d ranks: %d failures\n", total[0] == 0 ? "PASS" : "FAIL", what.c_str(),
                  comm->size(), int(total[0]));
    }
    return total[0] == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    return runtime->exit_after_error(e.what());
  }
}
