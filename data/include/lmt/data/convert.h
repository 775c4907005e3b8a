// lmt::data: converters from the distributed dataset formats to the dataset file schema.
// Each writes out_dir/train.h5 and out_dir/test.h5, both or neither (temporary names, renamed
// only when both are complete); mean/std are computed on train and stored in both files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <torch/arg.h>

#include <lmt/data/error.h>

namespace lmt::data {

// Receives one human-readable line per file read or written. When empty, lines go to stderr.
using ConvertProgress = std::function<void(const std::string& line)>;

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] from src_dir (gzip or plain).
// Errors (DataError naming the file): missing file, IDX magic not 2051 (images) / 2049 (labels),
// truncated file, label/image count mismatch, label >= 10.
void convert_fashion_mnist(const std::string& src_dir, const std::string& out_dir,
                           const ConvertProgress& progress = {});

// CIFAR binary version: data_batch_1..5.bin + test_batch.bin (+ batches.meta.txt for names),
// in src_dir or src_dir/cifar-10-batches-bin. Records: 1 label byte, 3072 bytes CHW planar.
void convert_cifar10(const std::string& src_dir, const std::string& out_dir,
                     const ConvertProgress& progress = {});

// CIFAR-100 binary version: train.bin + test.bin (+ fine_label_names.txt) in src_dir or
// src_dir/cifar-100-binary. Records: coarse label byte (ignored), fine label byte, 3072 bytes.
void convert_cifar100(const std::string& src_dir, const std::string& out_dir,
                      const ConvertProgress& progress = {});

// Options of the JPEG-tree converters (Tiny-ImageNet, ImageNet).
struct ImageConvertOptions {
  // uint8 storage: short side resized to size, centre crop size x size
  TORCH_ARG(int64_t, size) = 0;
  // ImageNet: keep the original JPEG bytes (size: default input, 224)
  TORCH_ARG(bool, jpeg) = false;
  TORCH_ARG(int64_t, shard_bytes) = int64_t{1} << 30;  // ImageNet: payload bound per shard file
  TORCH_ARG(int, threads) = 1;                          // decoding/resizing threads
  TORCH_ARG(bool, skip_bad_images) = false;  // false: the first bad image fails the conversion
};

// Standard Tiny-ImageNet layout: wnids.txt, words.txt (optional; class names), train/<wnid>/
// images/*.JPEG, val/images/*.JPEG with val/val_annotations.txt (file, wnid per line). Writes
// single-file train.h5 and test.h5 (val) of uint8 images (options.size, default 64). Classes are
// the wnids sorted. Grayscale/CMYK images become RGB; corrupt ones fail (naming the path) or are
// skipped and counted in attribute 'skipped_images'. A wnid without train/<wnid> fails.
void convert_tiny_imagenet(const std::string& src_dir, const std::string& out_dir,
                           const ImageConvertOptions& options,
                           const ConvertProgress& progress = {});

// ImageNet layout: train/<wnid>/*.JPEG (classes = sorted wnids), val/ either in class folders
// val/<wnid>/*.JPEG or flat val/*.JPEG with a labels file (val/val_annotations.txt or
// val/labels.txt: "file wnid" per line, or LOC_val_solution.csv in src_dir). Class names from
// LOC_synset_mapping.txt or words.txt in src_dir when present (else the wnid). Writes the sharded
// layout (sharded.h): train.h5 / test.h5 index files and train-00000.h5 ... shards, storing
// either uint8 images (options.size) or the original JPEG bytes (options.jpeg; each is decoded
// once to check it and for mean/std).
void convert_imagenet(const std::string& src_dir, const std::string& out_dir,
                      const ImageConvertOptions& options, const ConvertProgress& progress = {});

}  // namespace lmt::data
