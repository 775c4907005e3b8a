// bench_step: the step time of the real training loop (lmt::train::Trainer: loader, forward,
// objective, backward, GradSync, optimizer) on 1..N ranks, one JSON line from rank 0; and
// `make-data`, a random CIFAR-shaped dataset (32x32x3, 10 classes) for ResNet-18 timings.
//   mpirun -np N --bind-to none bench_step --data DIR [--model M] [--batch-size B] [--steps S]
//       [--warmup W] [--threads T] [--overlap 0|1] [--loss ce|lmt] [--pi-sync average|split]
//       [--model-option K=V ...]
//   bench_step make-data DIR [train_images]
// Step times are the gaps between consecutive step callbacks after W warm-up steps; the line
// holds their median, min and max. bench/bench_step.sh runs it beside the Python reference.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include <lmt/data/dataset_file.h>
#include <lmt/dist/runtime.h>
#include <lmt/train/trainer.h>

namespace {

int make_data(const std::string& dir, int64_t train_images) {
  std::filesystem::create_directories(dir);
  std::mt19937 gen(1);
  for (auto [split, n] : {std::pair<std::string, int64_t>{"train", train_images}, {"test", 256}}) {
    lmt::data::DatasetInfo info;
    info.size = n;
    info.height = info.width = 32;
    info.channels = 3;
    info.num_classes = 10;
    info.source = "random-cifar-shape";
    for (int c = 0; c < 10; ++c) info.class_names.push_back("class" + std::to_string(c));
    info.mean = {0.5f, 0.5f, 0.5f};
    info.std = {0.29f, 0.29f, 0.29f};
    std::vector<uint8_t> images(static_cast<size_t>(n * info.image_bytes()));
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (auto& p : images) p = uint8_t(gen() & 255);
    for (auto& l : labels) l = int32_t(gen() % 10);
    lmt::data::write_dataset(dir + "/" + split + ".h5", info, images.data(), labels.data());
  }
  std::printf("{\"bench\":\"make-data\",\"dir\":\"%s\",\"train_images\":%lld}\n", dir.c_str(),
              (long long)train_images);
  return 0;
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[size_t(q * double(v.size() - 1) + 0.5)];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "make-data")
    return make_data(argv[2], argc >= 4 ? std::atoll(argv[3]) : 4096);
  lmt::dist::Runtime runtime(argc, argv);
  try {
    lmt::train::TrainOptions o;
    o.max_steps = 40;
    int64_t warmup = 5;
    o.threads = 1;
    o.log_every = 1 << 30;
    o.out_dir = "/tmp/lmt-bench-step-" + std::to_string(::getpid());
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string flag = argv[i], value = argv[i + 1];
      if (flag == "--data") o.data_dir = value;
      else if (flag == "--model") o.model = value;
      else if (flag == "--batch-size") o.batch_size = std::atoll(value.c_str());
      else if (flag == "--steps") o.max_steps = std::atoll(value.c_str());
      else if (flag == "--warmup") warmup = std::atoll(value.c_str());
      else if (flag == "--threads") o.threads = std::atoi(value.c_str());
      else if (flag == "--overlap") o.overlap = value == "1" || value == "true";
      else if (flag == "--loss") o.loss = value;
      else if (flag == "--pi-sync") o.pi_sync = value;
      else if (flag == "--out") o.out_dir = value;
      else if (flag == "--model-option")
        o.model_options[value.substr(0, value.find('='))] = value.substr(value.find('=') + 1);
      else throw std::runtime_error("bench_step: unknown flag " + flag);
    }
    o.max_steps += warmup;
    auto comm = lmt::dist::make_mpi_communicator();
    std::vector<double> times;
    double previous = 0;
    {
      lmt::train::Trainer trainer(o, comm);
      trainer.on_step([&](const lmt::train::StepEvent& e) {
        if (e.global_step > warmup) times.push_back(e.elapsed_s - previous);
        previous = e.elapsed_s;
      });
      trainer.run();
    }
    if (comm->rank() == 0) {
      std::filesystem::remove_all(o.out_dir);
      const double median = percentile(times, 0.5);
      std::printf(
          "{\"bench\":\"step\",\"impl\":\"lmt\",\"model\":\"%s\",\"loss\":\"%s\",\"world_size\":%d,"
          "\"threads\":%d,\"overlap\":%s,\"pi_sync\":\"%s\",\"batch_size\":%lld,\"steps\":%zu,"
          "\"median_step_s\":%.6f,\"min_step_s\":%.6f,\"max_step_s\":%.6f,\"steps_per_s\":%.3f,"
          "\"images_per_s\":%.1f}\n",
          o.model.c_str(), o.loss.c_str(), comm->size(), o.threads, o.overlap ? "true" : "false",
          o.pi_sync.c_str(), (long long)o.batch_size, times.size(), median,
          percentile(times, 0.0), percentile(times, 1.0), 1.0 / median,
          double(o.batch_size) / median);
    }
  } catch (const std::exception& e) {
    return runtime.exit_after_error(std::string("bench_step: ") + e.what());
  }
  return 0;
}
