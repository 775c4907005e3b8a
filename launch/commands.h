// The lmt subcommands. Each parses its own options (argv[0] is the subcommand name) and returns
// the process exit code; errors are thrown (UsageError -> exit 2, anything else -> exit 1).
#pragma once

#include <functional>
#include <memory>


#include <lmt/data/loader.h>
#include <lmt/dist/communicator.h>
#include <lmt/dist/runtime.h>
#include <lmt/models/model.h>
#include <lmt/train/trainer.h>

namespace lmt::launch {

// What main() sets up for commands that run on MPI ranks.
struct Session {
  dist::Runtime* runtime = nullptr;  // null for commands that need no MPI (convert)
  std::shared_ptr<dist::Communicator> comm;
  int rank() const { return comm ? comm->rank() : 0; }
};

// The whole CLI: `lmt COMMAND [options]` (argv[1] is the command); returns the exit code.
int run_main(int argc, char** argv);

// For programs that embed the CLI: called on every rank with each Trainer `lmt train` makes
// (and the rank), before it runs, to attach listeners (tests/train/lmt_hooked.cpp).
void set_trainer_setup(std::function<void(train::Trainer&, int rank)> setup);

int run_convert(int argc, char** argv, Session& session);
int run_train(int argc, char** argv, Session& session);
int run_eval(int argc, char** argv, Session& session);
int run_attack(int argc, char** argv, Session& session);
int run_export(int argc, char** argv, Session& session);
int run_certify(int argc, char** argv, Session& session);
int run_plot(int argc, char** argv, Session& session);

// Intra-op threads when --threads is not given: the machine's cores shared by the ranks of
// this node.
int default_threads(const Session& session);

// For the commands that read a saved model (eval, certify, attack): joins the MPI world with the
// default collective timeout and sets `threads` intra-op threads (0: default_threads).
void join_ranks(Session& session, int threads);

// Loader options for one pass over this rank's shard of a dataset file: no shuffle, no dropped
// tail (every image exactly once across ranks), images padded to the model's input size.
data::LoaderOptions evaluation_loader_options(const Session& session,
                                              const models::ModelConfig& config,
                                              int64_t global_batch);

// Throws std::runtime_error naming `file` when the dataset cannot be evaluated by the model: no
// images (evaluation, certify and attack report fractions of its size), or another number of
// classes or channels than the model was built for.
void check_evaluation_data(const models::ModelConfig& config, const data::DatasetInfo& info,
                           const std::string& file);

}  // namespace lmt::launch
