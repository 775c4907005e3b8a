// Set-up shared by the subcommands that run on ranks: threads per rank, joining the MPI world,
// and the evaluation loader every model-reading command uses.
#include <ATen/Parallel.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>

#include <lmt/dist/rank_env.h>
#include <lmt/train/device.h>

#include "commands.h"
#include "model_command.h"

namespace lmt::launch {

int default_threads(const Session& session) {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int per_node = session.runtime ? std::max(1, session.runtime->env().local_size) : 1;
  return std::max(1, cores / per_node);
}

void join_ranks(Session& session, int threads) {
  session.comm = dist::make_mpi_communicator(dist::CommOptions());
  at::set_num_threads(threads > 0 ? threads : default_threads(session));
}

data::LoaderOptions evaluation_loader_options(const Session& session,
                                              const models::ModelConfig& config,
                                              int64_t global_batch) {
  return data::LoaderOptions()
      .batch_size(global_batch)
      .rank(session.comm->rank())
      .world_size(session.comm->size())
      .shuffle(false)
      .drop_last(false)
      .pad_to(config.height, config.width);
}

void check_evaluation_data(const models::ModelConfig& config, const data::DatasetInfo& info,
                           const std::string& file) {
  if (info.size < 1) throw std::runtime_error(file + ": the dataset holds no images");
  auto same = [&](const char* what, int64_t data_value, int64_t model_value) {
    if (data_value != model_value)
      throw std::runtime_error(file + ": " + what + " " + std::to_string(data_value) +
                               " differs from the model's " + std::to_string(model_value) + " (" +
                               config.name + ")");
  };
  same("num_classes", info.num_classes, config.num_classes);
  same("channels", info.channels, config.channels);
}

at::Device model_command_device(const ModelCommandOptions& o) {
  try {
    return train::resolve_device(o.device, dist::RankEnv::from_environment().local_rank);
  } catch (const train::TrainError& e) {
    throw UsageError(e.what());
  }
}

}  // namespace lmt::launch
