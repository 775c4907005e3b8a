// lmt::data: the per-rank loader. Worker threads claim global steps in order, assemble this
// rank's batch for each (a pure function of seed, epoch, step), and hand it over in order.
#include <lmt/data/loader.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#include <lmt/data/augment.h>
#include <lmt/data/image_resize.h>
#include <lmt/data/jpeg.h>
#include <lmt/io/trace.h>

namespace lmt::data {

struct Loader::Impl {
  std::string path;
  LoaderOptions options;
  DatasetInfo info;
  ShardPlan plan;
  ImageGeometry geometry;
  std::vector<uint8_t> images;            // all images when in memory
  std::unique_ptr<DatasetReader> reader;  // otherwise read per sample
  std::vector<int32_t> labels;
  bool jpeg = false;    // storage "jpeg": decode + crop + resize per sample
  bool pinned = false;  // pin_memory() and a CUDA-capable LibTorch

  // Epoch state; the fields below `mutex` are guarded by it.
  int64_t epoch = -1;
  std::vector<int64_t> permutation;
  std::mutex mutex;
  std::condition_variable changed;
  int64_t next_step = 0;   // the step next() returns next
  int64_t next_claim = 0;  // the step the next free worker assembles
  bool stopping = false;
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Slot> ready;
  std::vector<std::thread> workers;

  Batch assemble(int64_t step) const {
    const ShardPlan::Range r = plan.positions(step, options.rank());
    const int64_t b = r.size();
    const auto long_options = at::TensorOptions().dtype(at::kLong);
    Batch batch;
    batch.images = at::empty({b, info.channels, geometry.out_height, geometry.out_width},
                             at::TensorOptions().dtype(at::kFloat).pinned_memory(pinned));
    batch.labels = at::empty({b}, long_options.pinned_memory(pinned));
    batch.indices = at::empty({b}, long_options.pinned_memory(pinned));
    batch.epoch = epoch;
    batch.step = step;
    batch.global_batch_size = plan.global_samples(step);
    float* out = batch.images.data_ptr<float>();
    int64_t* out_labels = batch.labels.data_ptr<int64_t>();
    int64_t* out_indices = batch.indices.data_ptr<int64_t>();
    const int64_t in_bytes = info.image_bytes();
    const int64_t out_floats = info.channels * geometry.out_height * geometry.out_width;
    std::vector<uint8_t> buffer(reader ? static_cast<size_t>(in_bytes) : 0);
    if (jpeg) {
      const std::vector<std::vector<uint8_t>> bytes = read_batch_bytes(r.begin, b);
      for (int64_t i = 0; i < b; ++i) {
        const int64_t position = r.begin + i;
        const int64_t index = permutation[position];
        render_jpeg(bytes[i], position, index, out + i * out_floats);
        out_labels[i] = labels[index];
        out_indices[i] = index;
      }
      return batch;
    }
    for (int64_t i = 0; i < b; ++i) {
      const int64_t position = r.begin + i;
      const int64_t index = permutation[position];
      const uint8_t* image = images.data() + index * in_bytes;
      if (reader) {
        reader->read_images(index, 1, buffer.data());
        image = buffer.data();
      }
      const SampleAugment augment =
          sample_augment(options.seed(), epoch, position, options.random_crop_padding(),
                         options.horizontal_flip());
      render_sample(image, geometry, augment, out + i * out_floats);
      out_labels[i] = labels[index];
      out_indices[i] = index;
    }
    return batch;
  }

  // The JPEG bytes of positions [begin, begin + b), in position order. The indices are sorted
  // and each run of consecutive indices is read with one HDF5 call (a whole batch when the order
  // is not shuffled, as in evaluation); the order the samples are used in does not change.
  std::vector<std::vector<uint8_t>> read_batch_bytes(int64_t begin, int64_t b) const {
    std::vector<int64_t> order(size_t(b), 0);  // positions sorted by index
    std::iota(order.begin(), order.end(), begin);
    std::sort(order.begin(), order.end(),
              [&](int64_t p, int64_t q) { return permutation[p] < permutation[q]; });
    std::vector<std::vector<uint8_t>> bytes(static_cast<size_t>(b));
    for (size_t k = 0; k < order.size();) {
      size_t end = k + 1;
      while (end < order.size() && permutation[order[end]] == permutation[order[end - 1]] + 1)
        ++end;
      auto run = reader->read_encoded_run(permutation[order[k]], int64_t(end - k));
      for (size_t j = k; j < end; ++j) bytes[size_t(order[j] - begin)] = std::move(run[j - k]);
      k = end;
    }
    return bytes;
  }

  // Decodes sample `index` and writes its float CHW input: a pure function of (seed, epoch,
  // position), like the uint8 path. The crop box comes from the header's size, so the scaled
  // partial decode and the full decode crop the same box.
  void render_jpeg(const std::vector<uint8_t>& bytes, int64_t position, int64_t index,
                   float* out) const {
    const std::string what = path + " sample " + std::to_string(index);
    const bool training = options.drop_last();
    const auto box_of = [&](int64_t height, int64_t width) {
      return training ? random_resized_crop_box(mix_key(options.seed() ^ 0x7272632d626f78ULL,
                                                        uint64_t(epoch), uint64_t(position)),
                                                height, width)
                      : centre_crop_box(height, width, 0.875);
    };
    const bool flip =
        training &&
        sample_augment(options.seed(), epoch, position, 0, options.horizontal_flip()).flip;
    if (options.jpeg_scaled_decode()) {
      const JpegHeader header = read_jpeg_header(bytes.data(), bytes.size(), what);
      decode_crop_resize_chw(bytes.data(), bytes.size(), what, box_of(header.height, header.width),
                             geometry.out_height, geometry.out_width, flip, out, &header);
      return;
    }
    const Image image = decode_jpeg(bytes.data(), bytes.size(), what);
    resize_box_chw(image, box_of(image.height, image.width), geometry.out_height,
                   geometry.out_width, flip, out);
  }

  void work() {
    io::trace::set_thread_name("loader");
    const int64_t steps = plan.steps_per_epoch();
    for (;;) {
      int64_t step = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] {
          return stopping || next_claim >= steps || next_claim < next_step + options.prefetch();
        });
        if (stopping || next_claim >= steps) return;
        step = next_claim++;
      }
      Slot slot;
      try {
        io::TraceScope traced("loader: assemble batch", "data");
        traced.arg("step", step);
        slot.batch = assemble(step);
      } catch (...) {
        slot.error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex);
      ready[step] = std::move(slot);
      changed.notify_all();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    changed.notify_all();
    for (std::thread& t : workers) t.join();
    workers.clear();
    stopping = false;
    ready.clear();
  }
};

namespace {
[[noreturn]] void option_error(const std::string& path, const std::string& what) {
  throw DataError(path + ": " + what);
}
}  // namespace

Loader::Loader(std::string path, LoaderOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = std::move(path);
  m.options = options;
  if (options.threads() < 1) option_error(m.path, "loader threads must be at least 1");
  if (options.prefetch() < 0) option_error(m.path, "loader prefetch must not be negative");
  if (options.random_crop_padding() < 0)
    option_error(m.path, "random crop padding must not be negative");
  if (options.limit() < -1)
    option_error(m.path, "sample limit " + std::to_string(options.limit()) +
                             " must be -1 (all) or at least 0");
  auto reader = std::make_unique<DatasetReader>(m.path);
  m.info = reader->info();
  const int64_t samples =
      options.limit() < 0 ? m.info.size : std::min(options.limit(), m.info.size);
  m.plan =
      make_shard_plan(samples, options.batch_size(), options.world_size(), options.drop_last());
  if (options.rank() < 0 || options.rank() >= options.world_size())
    option_error(m.path, "rank " + std::to_string(options.rank()) + " outside world size " +
                             std::to_string(options.world_size()));
  if (options.drop_last() && m.plan.steps_per_epoch() == 0)
    option_error(m.path, (samples < m.info.size ? "limited to " : "has ") +
                             std::to_string(samples) +
                             " samples, fewer than one global batch (--batch-size " +
                             std::to_string(options.batch_size()) + ") with drop_last");
  // Pinning needs CUDA's allocator; without CUDA the flag is a no-op (loader.h).
  m.pinned = options.pin_memory() && at::hasCUDA();
  m.geometry = {m.info.height, m.info.width, m.info.channels,
                m.info.height, m.info.width, options.random_crop_padding()};
  m.jpeg = m.info.storage == "jpeg";
  if (m.jpeg) {
    int64_t size = options.image_size() > 0 ? options.image_size() : options.pad_height();
    if (size <= 0) size = m.info.height;
    if (options.image_size() < 0) option_error(m.path, "image size must not be negative");
    if (m.info.channels != 3) option_error(m.path, "JPEG storage must have 3 channels");
    m.info.height = m.info.width = size;
    m.geometry = {size, size, 3, size, size, 0};
    m.labels = reader->read_labels();
    m.reader = std::move(reader);
    return;
  }
  if (options.pad_height() != 0 || options.pad_width() != 0) {
    if (options.pad_height() < m.info.height || options.pad_width() < m.info.width)
      option_error(m.path, "pad_to " + std::to_string(options.pad_height()) + "x" +
                               std::to_string(options.pad_width()) + " is smaller than the " +
                               std::to_string(m.info.height) + "x" + std::to_string(m.info.width) +
                               " images");
    m.geometry.out_height = options.pad_height();
    m.geometry.out_width = options.pad_width();
  }
  m.labels = reader->read_labels();
  if (samples * m.info.image_bytes() <= options.in_memory_limit_bytes()) {
    m.images.resize(static_cast<size_t>(samples * m.info.image_bytes()));
    reader->read_images(0, samples, m.images.data());
  } else {
    m.reader = std::move(reader);
  }
}

Loader::~Loader() {
  if (impl_) impl_->stop_workers();
}
Loader::Loader(Loader&&) noexcept = default;
Loader& Loader::operator=(Loader&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->stop_workers();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

const DatasetInfo& Loader::info() const { return impl_->info; }
const ShardPlan& Loader::plan() const { return impl_->plan; }
int64_t Loader::steps_per_epoch() const { return impl_->plan.steps_per_epoch(); }

void Loader::start_epoch(int64_t epoch, int64_t first_step) {
  Impl& m = *impl_;
  m.stop_workers();
  const int64_t steps = m.plan.steps_per_epoch();
  if (epoch < 0) option_error(m.path, "epoch " + std::to_string(epoch) + " is negative");
  if (first_step < 0 || first_step > steps)
    option_error(m.path, "first step " + std::to_string(first_step) + " outside the epoch's " +
                             std::to_string(steps) + " steps");
  m.epoch = epoch;
  m.permutation =
      epoch_permutation(m.options.seed(), epoch, m.plan.num_samples, m.options.shuffle());
  m.next_step = first_step;
  m.next_claim = first_step;
  if (m.options.prefetch() > 0)
    for (int64_t t = 0; t < m.options.threads(); ++t) m.workers.emplace_back([&m] { m.work(); });
}

std::optional<Batch> Loader::next() {
  Impl& m = *impl_;
  if (m.epoch < 0) option_error(m.path, "next() called before start_epoch()");
  if (m.next_step >= m.plan.steps_per_epoch()) return std::nullopt;
  if (m.options.prefetch() == 0) return m.assemble(m.next_step++);
  Impl::Slot slot;
  {
    std::unique_lock<std::mutex> lock(m.mutex);
    m.changed.wait(lock, [&] { return m.ready.count(m.next_step) > 0; });
    auto it = m.ready.find(m.next_step);
    slot = std::move(it->second);
    m.ready.erase(it);
    ++m.next_step;
  }
  m.changed.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

}  // namespace lmt::data
