// lmt-hooked: the lmt CLI with the test hooks the script tests drive, attached as Trainer
// listeners (the library has no test code in it). Each hook is inert unless its variable is set:
//   LMT_TEST_THROW_AT=RANK:STEP     rank RANK throws after global step STEP (tests/dp/fault.sh)
//   LMT_TEST_RANK_DIR=DIR           every rank saves its final model as DIR/rank-R.pt with its
//                                   last training bound in hex (tests/dp/bound_agreement.sh)
//   LMT_TEST_CHECKPOINT_PAUSE_MS=N  sleeps N ms after each checkpoint file (crash-window tests)
//   LMT_TEST_FIGURES=FILE           rank 0 writes "step STEP READS WLOSS WACC" after each step
//                                   (train::host_reads() so far, the window means in %a or -)
//                                   and "epoch E LOSS ACC" (%a) after each epoch (host_reads.sh)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include <lmt/models/model.h>
#include <lmt/train/device.h>
#include <lmt/train/trainer.h>

#include "commands.h"

int main(int argc, char** argv) {
  lmt::launch::set_trainer_setup([](lmt::train::Trainer& trainer, int rank) {
    int throw_rank = -1;
    long long throw_step = -1;
    if (const char* spec = std::getenv("LMT_TEST_THROW_AT"))
      std::sscanf(spec, "%d:%lld", &throw_rank, &throw_step);
    if (throw_rank == rank)
      trainer.on_step([throw_step](const lmt::train::StepResult& r) {
        if (r.global_step == throw_step)
          throw lmt::train::TrainError("LMT_TEST_THROW_AT: injected failure after step " +
                                       std::to_string(r.global_step));
      });
    if (const char* dir = std::getenv("LMT_TEST_RANK_DIR")) {
      const std::string path = std::string(dir) + "/rank-" + std::to_string(rank) + ".pt";
      trainer.on_finish([path](lmt::models::Model& model, double bound) {
        char hex[64];
        std::snprintf(hex, sizeof hex, "%a", bound);
        lmt::models::save_model_file(path, model, {{"train_lipschitz_bound_hex", hex}});
      });
    }
    if (const char* file = std::getenv("LMT_TEST_FIGURES"); file && rank == 0) {
      auto out = std::make_shared<std::ofstream>(file);
      auto hex = [](std::optional<double> v) {
        char text[64] = "-";
        if (v) std::snprintf(text, sizeof text, "%a", *v);
        return std::string(text);
      };
      trainer.on_step([out, hex](const lmt::train::StepResult& r) {
        *out << "step " << r.global_step << " " << lmt::train::host_reads() << " "
             << hex(r.window_loss) << " " << hex(r.window_accuracy) << std::endl;
      });
      trainer.on_epoch([out, hex](const lmt::train::EpochResult& r) {
        *out << "epoch " << r.epoch + 1 << " " << hex(r.loss) << " " << hex(r.train_accuracy)
             << std::endl;
      });
    }
    if (const char* pause = std::getenv("LMT_TEST_CHECKPOINT_PAUSE_MS")) {
      const long ms = std::atol(pause);
      if (ms > 0)
        trainer.on_checkpoint_file([ms](const std::string&) {
          std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        });
    }
  });
  return lmt::launch::run_main(argc, argv);
}
