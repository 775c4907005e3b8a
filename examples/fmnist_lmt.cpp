// Data-parallel Lipschitz-margin training (LMT) of a small CNN on Fashion-MNIST with lmt as a
// library, then certification of the test set from a sound Lipschitz bound. Its own model and loop.
//   lmt convert fashion-mnist --src /usr/share/datasets/fashion-mnist --out fm
//   mpirun -np 2 ./fmnist_lmt fm --steps 200 [--device cpu|cuda|cuda:K|auto]
// On GPUs (a CUDA LibTorch): the model and batches on the rank's GPU, gradients and
// power-iteration vectors over NCCL when this lmt has it (else MPI through host memory).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/adam.h>

#include <lmt/data/loader.h>
#include <lmt/dist/communicator.h>
#include <lmt/dist/grad_sync.h>
#include <lmt/dist/module_sync.h>
#include <lmt/dist/runtime.h>
#include <lmt/dist/vector_sync.h>
#include <lmt/lipschitz/certify.h>
#include <lmt/lipschitz/compose.h>
#include <lmt/lipschitz/layers.h>
#include <lmt/lipschitz/lmt_loss.h>
#include <lmt/lipschitz/modules.h>
#include <lmt/train/device.h>

namespace lip = lmt::lipschitz;

// The model, declared as a sequence of bounded layers: lmt derives its Lipschitz bound from them.
lip::Sequential make_model(const lmt::data::DatasetInfo& info) {
  using lip::BoundedConv2dOptions;
  const std::vector<double> mean(info.mean.begin(), info.mean.end());
  const std::vector<double> std(info.std.begin(), info.std.end());
  return lip::Sequential(
      lip::InputNormalization(mean, std),  // part of the model, so part of its bound
      lip::BoundedConv2d(BoundedConv2dOptions(1, 16, 3, 28, 28).padding(1)), lip::ReLU(),
      lip::AvgPool2d(2, 2),  // -> 14 x 14
      lip::BoundedConv2d(BoundedConv2dOptions(16, 32, 3, 14, 14).padding(1)), lip::ReLU(),
      lip::AvgPool2d(2, 2),  // -> 7 x 7
      lip::Flatten(), lip::BoundedLinear(32 * 7 * 7, 100), lip::ReLU(),
      lip::BoundedLinear(100, info.num_classes));
}

int main(int argc, char** argv) {
  lmt::dist::Runtime runtime(argc, argv);  // MPI lives as long as this object
  try {
    if (argc < 2)
      throw std::runtime_error(
          "usage: fmnist_lmt DATA_DIR [--steps N] [--batch-size B] [--c C] [--device D]");
    const std::string data_dir = argv[1];
    auto flag = [&](const std::string& name, double fallback) {  // --name VALUE
      for (int i = 2; i + 1 < argc; ++i)
        if (argv[i] == name) return std::atof(argv[i + 1]);
      return fallback;
    };
    const int64_t batch_size = int64_t(flag("--batch-size", 64));  // the GLOBAL batch
    int64_t steps = int64_t(flag("--steps", -1));                  // -1: one epoch
    const double c = flag("--c", 1.0);  // LMT target radius, warmed up over the first epoch
    std::string device_spec = "auto";   // CUDA when this LibTorch has it and a GPU is visible
    for (int i = 2; i + 1 < argc; ++i)
      if (std::string(argv[i]) == "--device") device_spec = argv[i + 1];
    const at::Device device = lmt::train::resolve_device(device_spec, runtime.env().local_rank);
    // Ranks on one node share its cores.
    at::set_num_threads(int(
        std::max(1u, std::thread::hardware_concurrency() / unsigned(runtime.env().local_size))));

    // 1. Communicators (MPI for control; for device tensors NCCL, or MPI itself on CPUs), this
    // rank's shard of every global batch, and the model.
    auto comm = lmt::dist::make_mpi_communicator();
    auto device_comm = lmt::dist::make_device_communicator(
        comm, device, device.is_cuda() && lmt::dist::nccl_built());
    const bool root = comm->rank() == 0;
    lmt::data::Loader train(data_dir + "/train.h5", lmt::data::LoaderOptions()
                                                        .batch_size(batch_size)
                                                        .rank(comm->rank())
                                                        .world_size(comm->size())
                                                        .pin_memory(device.is_cuda()));
    lip::Sequential net = make_model(train.info());
    lmt::dist::verify_and_broadcast(*comm, *net);  // same architecture, rank 0's weights
    net->to(device);
    torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-3));
    // Averages gradients in backward.
    lmt::dist::GradSync grad_sync(device_comm, net->parameters());

    // 2. The training loop.
    if (train.steps_per_epoch() < 1) throw std::runtime_error("--batch-size exceeds the dataset");
    if (steps < 0) steps = train.steps_per_epoch();
    double loss_value = 0, train_bound = 0;
    for (int64_t step = 0, epoch = 0; step < steps; ++epoch) {
      train.start_epoch(epoch);
      while (auto batch = train.next()) {
        if (step == steps) break;
        // One power-iteration step per layer, then every rank agrees on the vectors.
        lip::power_iteration_step(*net);
        auto vectors = lip::power_iteration_vectors(*net);
        lmt::dist::average_unit_vectors(*device_comm, vectors);

        const double progress = double(step) / double(train.steps_per_epoch());
        const at::Tensor images = lmt::train::to_device(batch->images, device);
        const at::Tensor labels = lmt::train::to_device(batch->labels, device);
        at::Tensor logits = net->forward(images);
        at::Tensor bound = net->lipschitz_bound(lip::BoundMode::kTrain);  // differentiable
        at::Tensor loss = lip::lmt_loss(logits, labels, bound, lip::lmt_c_at(c, 1.0, progress));
        optimizer.zero_grad();
        loss.backward();
        grad_sync.finish();
        optimizer.step();

        loss_value = lmt::dist::all_reduce_doubles(*comm, {loss.item<double>()},
                                                   lmt::dist::ReduceOp::kAvg)[0];
        train_bound = bound.item<double>();
        if (++step % 50 == 0 && root)
          std::printf("step %lld  loss %.4f  bound %.3f\n", (long long)step, loss_value,
                      train_bound);
      }
    }

    // 3. Certification: a SOUND bound (float64, provable), then each rank certifies its shard.
    net->eval();
    at::NoGradGuard no_grad;
    const double sound_bound = net->lipschitz_bound(lip::BoundMode::kSound).item<double>();
    lmt::data::Loader test(data_dir + "/test.h5", lmt::data::LoaderOptions()
                                                      .batch_size(500)
                                                      .rank(comm->rank())
                                                      .world_size(comm->size())
                                                      .shuffle(false)
                                                      .drop_last(false));
    const std::vector<double> eps{0.3, 1.0, 1.58};
    std::vector<double> counts(2 + eps.size(), 0.0);  // samples, correct, certified at each eps
    test.start_epoch(0);
    while (auto batch = test.next()) {
      if (batch->labels.size(0) == 0) continue;
      const at::Tensor labels = lmt::train::to_device(batch->labels, device);
      at::Tensor logits = net->forward(lmt::train::to_device(batch->images, device));
      at::Tensor radius =
          lip::certified_radius(logits, labels, at::scalar_tensor(sound_bound, at::kDouble));
      at::Tensor correct = logits.argmax(1).eq(labels);
      counts[0] += double(batch->labels.size(0));
      counts[1] += correct.sum().item<double>();
      for (size_t i = 0; i < eps.size(); ++i)
        counts[2 + i] += (correct & radius.ge(eps[i])).sum().item<double>();
    }
    counts = lmt::dist::all_reduce_doubles(*comm, counts);  // sums over ranks

    if (root) {
      std::printf(
          "{\"world_size\": %d, \"steps\": %lld, \"loss\": %.6g, \"train_bound\": %.6g, "
          "\"sound_bound\": %.6g, \"test_samples\": %.0f, \"clean_accuracy\": %.4f, "
          "\"certified_accuracy\": {",
          comm->size(), (long long)steps, loss_value, train_bound, sound_bound, counts[0],
          counts[1] / counts[0]);
      for (size_t i = 0; i < eps.size(); ++i)
        std::printf("%s\"%g\": %.4f", i ? ", " : "", eps[i], counts[2 + i] / counts[0]);
      std::printf("}}\n");
    }
    return 0;
  } catch (const std::exception& e) {
    return runtime.exit_after_error(e.what());  // one line, and the other ranks end too
  }
}
