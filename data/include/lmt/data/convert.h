// lmt::data: converters from the distributed dataset formats to the dataset file schema.
// Each writes out_dir/train.h5 and out_dir/test.h5, both or neither (temporary names, renamed
// only when both are complete); mean/std are computed on train and stored in both files.
#pragma once

#include <functional>
#include <string>

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

}  // namespace lmt::data
