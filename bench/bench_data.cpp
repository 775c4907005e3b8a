// bench_data: Fashion-MNIST conversion time, then one training epoch through the Loader in
// several configurations: raw drain rate, and the time the training thread waits in next()
// while it "computes" (sleeps) between batches, with and without prefetching.
// Usage: bench_data [fashion-mnist dir] [global batch] [compute ms per batch]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <unistd.h>

#include <lmt/data/convert.h>
#include <lmt/data/loader.h>

namespace data = lmt::data;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct EpochTiming {
  double total_s = 0, waiting_s = 0;
  int64_t images = 0;
};

// One epoch; compute_ms of simulated work per batch after each next().
EpochTiming run_epoch(const std::string& path, data::LoaderOptions options, double compute_ms) {
  data::Loader loader(path, options);
  EpochTiming t;
  const auto t0 = Clock::now();
  loader.start_epoch(0);
  for (;;) {
    const auto w0 = Clock::now();
    auto batch = loader.next();
    t.waiting_s += seconds_since(w0);
    if (!batch) break;
    t.images += batch->images.size(0);
    if (compute_ms > 0)
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(compute_ms));
  }
  t.total_s = seconds_since(t0);
  return t;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string src = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 256;
  const double compute_ms = argc > 3 ? std::atof(argv[3]) : 2.0;
  const auto out =
      std::filesystem::temp_directory_path() / ("lmt_bench_data_" + std::to_string(::getpid()));
  try {
    auto t0 = Clock::now();
    data::convert_fashion_mnist(src, out.string(), [](const std::string&) {});
    const double convert_s = seconds_since(t0);
    const std::string path = (out / "train.h5").string();
    std::printf("convert_fashion_mnist (60k + 10k images): %.2f s\n\n", convert_s);

    struct Case {
      const char* name;
      data::LoaderOptions options;
    };
    auto base = [&] { return data::LoaderOptions().batch_size(batch).seed(1); };
    auto aug = [&] { return base().random_crop_padding(4).horizontal_flip(true).pad_to(32, 32); };
    const Case cases[] = {
        {"in memory, inline (prefetch 0)", base().prefetch(0)},
        {"in memory, 1 thread, prefetch 2", base()},
        {"in memory, 2 threads, prefetch 4", base().threads(2).prefetch(4)},
        {"in memory + pad 32 + crop 4 + flip, inline", aug().prefetch(0)},
        {"in memory + pad 32 + crop 4 + flip, 1 thread", aug()},
        {"streaming from HDF5, inline", base().in_memory_limit_bytes(0).prefetch(0)},
        {"streaming from HDF5, 1 thread, prefetch 2", base().in_memory_limit_bytes(0)},
    };
    std::printf("global batch %lld, one epoch of %s\n", static_cast<long long>(batch),
                path.c_str());
    std::printf("%-46s %12s %9s | %14s %12s %9s\n", "configuration", "drain img/s", "vs first",
                "compute ms/bt", "wait s/epoch", "wait %");
    double first_rate = 0;
    for (const Case& c : cases) {
      const EpochTiming drain = run_epoch(path, c.options, 0);
      const EpochTiming overlap = run_epoch(path, c.options, compute_ms);
      const double rate = drain.images / drain.total_s;
      if (first_rate == 0) first_rate = rate;
      std::printf("%-46s %12.0f %8.2fx | %14.1f %12.3f %8.1f%%\n", c.name, rate, rate / first_rate,
                  compute_ms, overlap.waiting_s, 100 * overlap.waiting_s / overlap.total_s);
    }
  } catch (const data::DataError& e) {
    std::fprintf(stderr, "bench_data: %s\n", e.what());
    std::filesystem::remove_all(out);
    return 1;
  }
  std::filesystem::remove_all(out);
  return 0;
}
