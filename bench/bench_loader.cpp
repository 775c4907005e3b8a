// bench_loader: converter images/s (ImageNet tree -> uint8 64 px / JPEG shards) and loader
// images/s (uint8 64 px; JPEG decode + random-resized-crop at 224, 1 and 2 threads) against the
// images/s one resnet18 SGD step (batch 32) consumes at the same size, all in one run.
// Usage: bench_loader [train_images=512]
//        bench_loader jpeg DATA_DIR [epochs=3]: the JPEG loader alone on DATA_DIR/train.h5 (from
//        bench/prep_jpeg_photos.sh), full decode vs scaled partial decode, 1 and 2 threads, one
//        JSON line each (bench/bench_jpeg_loader.sh runs it beside the torchvision peer).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include <unistd.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/sgd.h>

#include <lmt/data/convert.h>
#include <lmt/data/jpeg.h>
#include <lmt/data/loader.h>
#include <lmt/models/model.h>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
static double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ImageNet-like photos: 500x375 (and 375x500), smooth gradients plus texture, quality 90.
static void write_tree(const fs::path& root, int n) {
  const int classes = 10;
  uint32_t x = 12345;
  for (int i = 0; i < n + classes * 2; ++i) {
    const bool val = i >= n;
    const int c = i % classes;
    const int64_t h = (i % 3 == 0) ? 500 : 375, w = (i % 3 == 0) ? 375 : 500;
    std::vector<uint8_t> px(size_t(h * w * 3));
    for (int64_t p = 0; p < h * w; ++p) {
      x = x * 1664525u + 1013904223u;
      const int64_t yy = p / w, xx = p % w;
      px[p * 3 + 0] = uint8_t((xx * 200 / w + c * 20 + (x >> 28)) & 255);
      px[p * 3 + 1] = uint8_t((yy * 180 / h + ((xx / 16 + yy / 16) % 2) * 40 + (x >> 29)) & 255);
      px[p * 3 + 2] = uint8_t(((xx + yy) * 120 / (w + h) + c * 9 + (x >> 27)) & 255);
    }
    const auto bytes = lmt::data::encode_jpeg(px.data(), h, w, lmt::data::JpegInput::kRgb, 90);
    const fs::path dir = root / (val ? "val" : "train") / ("n0" + std::to_string(1000000 + c));
    fs::create_directories(dir);
    std::FILE* f = std::fopen((dir / (std::to_string(i) + ".JPEG")).c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
}

static double convert_rate(const fs::path& src, const fs::path& out, bool jpeg, int threads,
                           int n) {
  const auto o = lmt::data::ImageConvertOptions()
                     .jpeg(jpeg)
                     .size(jpeg ? 224 : 64)
                     .threads(threads)
                     .shard_bytes(int64_t{64} << 20);
  const auto t0 = Clock::now();
  lmt::data::convert_imagenet(src.string(), out.string(), o, [](const std::string&) {});
  return (n + 20) / since(t0);
}

static double loader_rate(const std::string& file, bool jpeg, int threads, int64_t* size) {
  auto o = lmt::data::LoaderOptions()
               .batch_size(32)
               .threads(threads)
               .prefetch(2 * threads)
               .horizontal_flip(true)
               .seed(1);
  if (jpeg)
    o.image_size(224);
  else
    o.random_crop_padding(4);
  lmt::data::Loader loader(file, o);
  *size = loader.info().height;
  int64_t images = 0;
  const auto t0 = Clock::now();
  for (int e = 0; e < 2; ++e) {
    loader.start_epoch(e);
    while (auto b = loader.next()) images += b->labels.size(0);
  }
  return images / since(t0);
}

// The JPEG loader at 224 px as a training run uses it (batch 32, random-resized-crop, flip),
// full decode or the scaled partial decode; one warm-up epoch, then `epochs` timed.
static double jpeg_loader_rate(const std::string& file, int threads, bool scaled, int epochs,
                               int64_t* images) {
  lmt::data::Loader loader(file, lmt::data::LoaderOptions()
                                     .batch_size(32)
                                     .threads(threads)
                                     .prefetch(2 * threads)
                                     .horizontal_flip(true)
                                     .image_size(224)
                                     .jpeg_scaled_decode(scaled)
                                     .seed(1));
  loader.start_epoch(0);
  while (loader.next()) {
  }
  *images = 0;
  const auto t0 = Clock::now();
  for (int e = 1; e <= epochs; ++e) {
    loader.start_epoch(e);
    while (auto b = loader.next()) *images += b->labels.size(0);
  }
  return double(*images) / since(t0);
}

static int jpeg_mode(const std::string& dir, int epochs) {
  const std::string file = dir + "/train.h5";
  for (int threads : {1, 2})
    for (bool scaled : {false, true}) {
      int64_t images = 0;
      const double rate = jpeg_loader_rate(file, threads, scaled, epochs, &images);
      std::printf("{\"decode\":\"%s\",\"threads\":%d,\"images\":%lld,\"images_per_s\":%.1f}\n",
                  scaled ? "scaled" : "full", threads, (long long)images, rate);
      std::fflush(stdout);
    }
  return 0;
}

static double resnet_rate(int64_t size) {
  lmt::models::ModelConfig c;
  c.name = "resnet18";
  c.num_classes = 1000;
  c.channels = 3;
  c.height = c.width = size;
  auto model = lmt::models::make_model(c);
  model->train();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const at::Tensor x = at::rand({32, 3, size, size});
  const at::Tensor y = at::randint(0, 1000, {32}, at::kLong);
  double total = 0;
  const int reps = 3;
  for (int rep = 0; rep <= reps; ++rep) {
    const auto t0 = Clock::now();
    sgd.zero_grad();
    at::cross_entropy_loss(model->forward(x), y).backward();
    sgd.step();
    if (rep > 0) total += since(t0);  // first step: warm-up
  }
  return 32 * reps / total;
}

int main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[1]) == "jpeg")
    return jpeg_mode(argv[2], argc > 3 ? std::stoi(argv[3]) : 3);
  const int n = argc > 1 ? std::stoi(argv[1]) : 512;
  const fs::path root = fs::temp_directory_path() / ("bench_loader_" + std::to_string(::getpid()));
  write_tree(root / "src", n);
  std::printf("bench_loader: %d train JPEGs 500x375, %u hardware threads, at::get_num_threads %d\n",
              n, std::thread::hardware_concurrency(), at::get_num_threads());
  std::printf("\n%-34s %10s\n", "converter", "images/s");
  for (int t : {1, 2})
    std::printf("imagenet --size 64, %d thread(s)     %10.1f\n", t,
                convert_rate(root / "src", root / ("u8_" + std::to_string(t)), false, t, n));
  for (int t : {1, 2})
    std::printf("imagenet --jpeg, %d thread(s)        %10.1f\n", t,
                convert_rate(root / "src", root / ("jp_" + std::to_string(t)), true, t, n));

  std::printf("\n%-34s %10s %14s %8s\n", "loader (batch 32, no consumer)", "images/s",
              "resnet18 img/s", "ratio");
  for (const bool jpeg : {false, true}) {
    const std::string file = (root / (jpeg ? "jp_1" : "u8_1") / "train.h5").string();
    int64_t size = 0;
    double rates[2];
    for (int t : {1, 2}) rates[t - 1] = loader_rate(file, jpeg, t, &size);
    const double model = resnet_rate(size);
    for (int t : {1, 2})
      std::printf("%-5s %3lld px, %d loader thread(s)    %10.1f %14.1f %8.2f\n",
                  jpeg ? "jpeg" : "uint8", (long long)size, t, rates[t - 1], model,
                  rates[t - 1] / model);
  }
  fs::remove_all(root);
  return 0;
}
