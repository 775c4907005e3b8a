// lmt::data: the per-rank loader: this rank's shard of each global batch, augmented and
// assembled into tensors by background threads while the training thread computes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <ATen/ATen.h>
#include <torch/arg.h>

#include <lmt/data/dataset_file.h>
#include <lmt/data/sampler.h>

namespace lmt::data {

struct LoaderOptions {
  TORCH_ARG(int64_t, batch_size) = 64;  // the GLOBAL batch (all ranks together)
  TORCH_ARG(int64_t, rank) = 0;
  TORCH_ARG(int64_t, world_size) = 1;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(bool, shuffle) = true;
  TORCH_ARG(bool, drop_last) = true;  // true for training, false for evaluation
  TORCH_ARG(int64_t, random_crop_padding) = 0;
  TORCH_ARG(bool, horizontal_flip) = false;
  // Batch assembly (and JPEG decode) threads: each assembles whole batches, claimed in step
  // order; at most `prefetch` batches are assembled ahead of the consumer (the bounded queue),
  // so threads beyond `prefetch` idle. Batches are handed over in step order.
  TORCH_ARG(int64_t, threads) = 1;
  TORCH_ARG(int64_t, prefetch) = 2;  // batches assembled ahead; 0 = assemble inside next()
  // Datasets whose images take at most this many bytes are read into memory once; larger ones
  // are read image by image from the file.
  TORCH_ARG(int64_t, in_memory_limit_bytes) = int64_t{2} << 30;
  // JPEG storage (sharded.h): the square model input size; 0 = pad_to's height if set, else
  // the dataset's default (its height attribute). Training (drop_last) takes torchvision's
  // random-resized-crop (scale 0.08..1, ratio 3/4..4/3) and, with horizontal_flip, a flip;
  // evaluation resizes the short side to size/0.875 and centre-crops (the 256 -> 224 rule).
  TORCH_ARG(int64_t, image_size) = 0;
  // JPEG storage: decode each sample's crop box only, at libjpeg-turbo's DCT scale 1/2, 1/4 or
  // 1/8 when the box still covers the output size at that scale (PIL's draft rule), rows and
  // iMCU columns of the box only (decode_crop_resize_chw in image_resize.h). false: decode the
  // whole image at full size, then crop and resize (the reference; same boxes, same order).
  TORCH_ARG(bool, jpeg_scaled_decode) = true;
  // Batch tensors in page-locked (pinned) host memory, for asynchronous copies to a GPU. Only a
  // CUDA build of LibTorch can pin: on a CPU-only LibTorch (no CUDA) this is a no-op and the
  // batches are ordinary memory.
  TORCH_ARG(bool, pin_memory) = false;
  // Only the first `limit` samples of the file (indices 0..limit-1; all if it holds fewer) are
  // planned, shuffled and loaded; -1 = all. plan().num_samples is the count, info() the file's.
  TORCH_ARG(int64_t, limit) = -1;

 public:
  // Centred zero padding of every image to the model's input size (0, 0 = stored size).
  LoaderOptions& pad_to(int64_t height, int64_t width) {
    pad_height_ = height;
    pad_width_ = width;
    return *this;
  }
  int64_t pad_height() const { return pad_height_; }
  int64_t pad_width() const { return pad_width_; }

 private:
  int64_t pad_height_ = 0, pad_width_ = 0;
};

struct Batch {
  at::Tensor images;   // float32 [b, C, H, W] in [0, 1]
  at::Tensor labels;   // int64 [b]
  at::Tensor indices;  // int64 [b], dataset indices
  int64_t epoch = 0, step = 0;
  int64_t global_batch_size = 0;  // samples in this step over all ranks (B, or the kept tail)
};

class Loader {
 public:
  // Throws DataError naming the file or the flag at fault.
  Loader(std::string path, LoaderOptions options);
  ~Loader();  // stops and joins the assembly threads, also mid-epoch
  Loader(Loader&&) noexcept;
  Loader& operator=(Loader&&) noexcept;
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  const DatasetInfo& info() const;
  const ShardPlan& plan() const;
  int64_t steps_per_epoch() const;

  // Begins epoch `epoch` at global step first_step (a resumed run continues mid-epoch exactly).
  void start_epoch(int64_t epoch, int64_t first_step = 0);
  // The next batch of this rank, or nullopt when the epoch is done. Every rank gets the same
  // number of batches; with drop_last=false a rank's last batch may hold 0 samples.
  std::optional<Batch> next();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lmt::data
