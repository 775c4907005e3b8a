// bench_allreduce (run under mpirun -np N, N >= 2): on ResNet-18's gradient set (11,689,512
// floats) compares the bus bandwidth of GradSync's bucketed path with one raw MPI_Allreduce of
// a flat buffer of the same bytes, verifies every result, and measures how much of an async
// all-reduce hides behind computation with a communication thread vs plain nonblocking MPI.
#include <lmt/dist/communicator.h>
#include <lmt/dist/grad_sync.h>
#include <lmt/dist/runtime.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace dist = lmt::dist;

namespace {

// torchvision resnet18(num_classes=1000) parameter shapes, in registration order.
std::vector<std::vector<int64_t>> resnet18_shapes() {
  std::vector<std::vector<int64_t>> s = {{64, 3, 7, 7}, {64}, {64}};
  auto conv_bn = [&](int64_t out, int64_t in, int64_t k) {
    s.push_back({out, in, k, k});
    s.push_back({out});
    s.push_back({out});
  };
  int64_t in = 64;
  for (int64_t width : {64, 128, 256, 512}) {
    for (int block = 0; block < 2; ++block) {
      conv_bn(width, block == 0 ? in : width, 3);
      conv_bn(width, width, 3);
      if (block == 0 && width != in) conv_bn(width, in, 1);  // downsample
    }
    in = width;
  }
  s.push_back({1000, 512});
  s.push_back({1000});
  return s;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median over repetitions of the slowest rank's time.
template <typename F>
double time_collective(dist::Communicator& comm, int reps, F&& body,
                       const std::function<void()>& prepare = {}) {
  std::vector<double> ts;
  for (int r = 0; r < reps; ++r) {
    if (prepare) prepare();
    comm.barrier();
    double t0 = now();
    body();
    ts.push_back(dist::all_reduce_doubles(comm, {now() - t0}, dist::ReduceOp::kMax)[0]);
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

// A fixed amount of computation on the calling thread (stands in for backward).
void compute(int matmuls) {
  static at::Tensor a = at::randn({192, 192});
  at::Tensor x = a;
  for (int i = 0; i < matmuls; ++i) x = at::mm(x, a).tanh_();
}

}  // namespace

int main(int argc, char** argv) {
  dist::Runtime runtime(argc, argv);
  try {
    at::set_num_threads(1);
    auto comm = dist::make_mpi_communicator();
    const int n = comm->size(), rank = comm->rank();
    const int reps = argc > 1 ? std::stoi(argv[1]) : 10;
    std::vector<at::Tensor> params;
    int64_t total = 0;
    for (auto& shape : resnet18_shapes()) {
      params.push_back(at::zeros(shape).requires_grad_());
      total += params.back().numel();
    }
    if (total != 11689512) {
      std::fprintf(stderr, "resnet18 shape list has %lld floats, expected 11689512\n",
                   static_cast<long long>(total));
      return 1;
    }
    const double bytes = 4.0 * total;
    const double bus = n > 1 ? 2.0 * (n - 1) / n : 0.0;
    int64_t wrong = 0;

    // Paths timed in interleaved repetitions, so load from other processes hits all alike.
    struct Row {
      std::string name;
      size_t buckets;
      std::function<void()> run;
      std::function<void()> prepare;  // untimed: the gradients backward would leave
      std::vector<double> seconds;
    };
    at::Tensor flat = at::full({total}, float(rank + 1));
    std::vector<Row> rows;
    rows.push_back({"raw MPI_Allreduce, one flat buffer",
                    1,
                    [&] {
                      MPI_Allreduce(MPI_IN_PLACE, flat.data_ptr(), static_cast<int>(total),
                                    MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                    },
                    {},
                    {}});
    rows.push_back({"Communicator::all_reduce, one flat buffer",
                    1,
                    [&] { comm->all_reduce(flat, dist::ReduceOp::kSum); },
                    {},
                    {}});
    // GradSync after backward (overlap off): bucketed all-reduce and average. The gradients are
    // views into the buckets from the second step on, so nothing is copied in or out; the
    // first (warm-up, verified) repetition still copies.
    std::vector<std::unique_ptr<dist::GradSync>> syncs;
    for (size_t cap_mib : {1, 25, 100}) {
      syncs.push_back(std::make_unique<dist::GradSync>(
          comm, params, dist::GradSyncOptions().bucket_cap_bytes(cap_mib << 20).overlap(false)));
      dist::GradSync* sync = syncs.back().get();
      rows.push_back({"GradSync, cap " + std::to_string(cap_mib) + " MiB (first 1 MiB)",
                      sync->buckets().size(),
                      [sync] { sync->finish(); },
                      [&] {  // untimed: what backward leaves (in the buckets after step 1)
                        for (auto& p : params) p.mutable_grad().fill_(float(rank + 1));
                      },
                      {}});
    }
    for (auto& p : params) p.mutable_grad() = at::zeros_like(p);
    for (int r = 0; r < reps; ++r) {
      for (auto& row : rows) {
        if (r == 0) {  // warm-up, and verify the result
          if (row.prepare) row.prepare();
          row.run();
          if (row.prepare) {
            for (auto& p : params) wrong += p.grad().ne((n + 1) / 2.0f).sum().item<int64_t>();
          }
        }
        row.seconds.push_back(time_collective(*comm, 1, row.run, row.prepare));
      }
    }
    for (auto& row : rows) {
      std::sort(row.seconds.begin(), row.seconds.end());
    }
    auto median = [](const Row& row) { return row.seconds[row.seconds.size() / 2]; };
    const double t_raw = median(rows[0]);
    at::Tensor one = at::full({total}, float(rank + 1));
    MPI_Allreduce(MPI_IN_PLACE, one.data_ptr(), static_cast<int>(total), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
    wrong += one.ne(float(n * (n + 1) / 2)).sum().item<int64_t>();
    wrong = static_cast<int64_t>(
        dist::all_reduce_doubles(*comm, {double(wrong)}, dist::ReduceOp::kSum)[0]);
    if (rank == 0) {
      std::printf("ResNet-18 gradients: %lld floats (%.1f MB), %d ranks, median of %d reps\n",
                  static_cast<long long>(total), bytes / 1e6, n, reps);
      std::printf("%-40s %8s %9s %10s %10s %8s\n", "path", "buckets", "time ms", "algbw GB/s",
                  "busbw GB/s", "vs raw");
      for (const auto& r : rows) {
        const double t = median(r);
        std::printf("%-40s %8zu %9.2f %10.2f %10.2f %8.2f\n", r.name.c_str(), r.buckets, t * 1e3,
                    bytes / t / 1e9, bus * bytes / t / 1e9, t_raw / t);
      }
      std::printf("wrong elements across ranks: %lld\n\n", static_cast<long long>(wrong));
    }

    // Overlap: the 25 MiB buckets' async all-reduces while this thread computes.
    auto buckets = dist::plan_buckets(params, 1 << 20, 25 << 20);
    std::vector<at::Tensor> flats;
    for (auto& b : buckets) flats.push_back(at::ones({b.numel}));
    const int matmuls = argc > 2 ? std::stoi(argv[2]) : 20;
    // Two stand-ins for backward: real computation (competes for the core) and an idle wait of
    // the same length (shows only whether the all-reduce progresses without MPI calls).
    double t_compute = time_collective(*comm, reps, [&] { compute(matmuls); });
    const auto idle = std::chrono::microseconds(static_cast<int64_t>(t_compute * 1e6));
    if (rank == 0) {
      std::printf(
          "overlap of async all-reduce (%zu buckets) with %d matmuls of 192x192, or an "
          "idle wait as long\n",
          buckets.size(), matmuls);
      std::printf("%-12s %-8s %9s %9s %9s %7s\n", "progress", "work", "comm ms", "work ms",
                  "both ms", "hidden");
    }
    for (auto mode : {dist::MpiProgress::kThread, dist::MpiProgress::kNonblocking}) {
      auto c = dist::make_mpi_communicator(dist::CommOptions().progress(mode));
      for (bool busy : {true, false}) {
        auto all = [&](bool with_work) {
          std::vector<std::shared_ptr<dist::Work>> works;
          for (auto& f : flats) works.push_back(c->all_reduce_async(f, dist::ReduceOp::kAvg));
          if (with_work && busy) compute(matmuls);
          if (with_work && !busy) std::this_thread::sleep_for(idle);
          for (auto& w : works) w->wait();
        };
        all(false);  // warm-up
        std::vector<double> comm_t, both_t;
        for (int r = 0; r < reps; ++r) {
          comm_t.push_back(time_collective(*c, 1, [&] { all(false); }));
          both_t.push_back(time_collective(*c, 1, [&] { all(true); }));
        }
        std::sort(comm_t.begin(), comm_t.end());
        std::sort(both_t.begin(), both_t.end());
        double t_comm = comm_t[reps / 2], t_both = both_t[reps / 2];
        // Fraction of the shorter activity hidden behind the other (1 = perfect overlap).
        double hidden = (t_comm + t_compute - t_both) / std::min(t_comm, t_compute);
        if (rank == 0) {
          std::printf("%-12s %-8s %9.2f %9.2f %9.2f %7.2f\n",
                      mode == dist::MpiProgress::kThread ? "thread" : "nonblocking",
                      busy ? "compute" : "idle", t_comm * 1e3, t_compute * 1e3, t_both * 1e3,
                      hidden);
        }
      }
    }
    return wrong == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    return runtime.exit_after_error(e.what());
  }
}
