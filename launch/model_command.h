// The options of the commands that read a saved model and a dataset (eval, certify, attack),
// declared once: a base struct for their options structs and the specs that fill it.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include <c10/core/Device.h>

#include <lmt/options/schema.h>

#include "cli.h"

namespace lmt::launch {

struct ModelCommandOptions {
  std::string model_file;
  std::string data;
  int64_t batch_size = 500;     // global, split over the ranks (attack: per rank, 250)
  int threads = 0;              // 0: default_threads (the cores / the ranks on this node)
  std::string metrics_out;      // empty: no file
  std::string device = "auto";  // train::resolve_device's spec
};

// --device: where the command computes (rank r: GPU local_rank % GPUs for cuda/auto); a bad
// value, or CUDA from a LibTorch without it, is a usage error (exit 2). In session.cpp.
at::Device model_command_device(const ModelCommandOptions& o);

// Adds --model-file, --data, --batch-size, --threads and --metrics-out to the schema of a T
// derived from ModelCommandOptions. `batch_help` says what a batch is (attack's is per rank).
template <class T>
void add_model_command_options(
    options::Schema<T>& s,
    const char* batch_help = "global evaluation batch (split over the ranks)") {
  static_assert(std::is_base_of_v<ModelCommandOptions, T>, "T must derive ModelCommandOptions");
  using options::Spec;
  // `s.template add`: s's type depends on T.
  s.template add<std::string>(
      Spec("model-file", "model file written by lmt train (model.pt)").required().value("PATH"),
      [](auto& o) -> auto& { return o.model_file; });
  s.template add<std::string>(
      Spec("data", "dataset file (test.h5)").required().value("FILE"),
      [](auto& o) -> auto& { return o.data; });
  s.template add<int64_t>(
      Spec("batch-size", batch_help).in(1, 1e9), [](auto& o) -> auto& { return o.batch_size; });
  // at::set_num_threads(100000) hangs in OpenMP.
  s.template add<int>(
      Spec("threads", "intra-op threads (0: the cores / the ranks on this node)")
          .operational()
          .in(0, 1024),
      [](auto& o) -> auto& { return o.threads; });
  s.template add<std::string>(
      Spec("device", "where each rank computes: cpu, cuda (GPU local_rank % GPUs), cuda:K, auto")
          .operational()
          .value("cpu|cuda|cuda:K|auto"),
      [](auto& o) -> auto& { return o.device; });
  s.template add<std::string>(
      Spec("metrics-out", "also append the JSON result line to FILE").operational().value("FILE"),
      [](auto& o) -> auto& { return o.metrics_out; });
}

}  // namespace lmt::launch
