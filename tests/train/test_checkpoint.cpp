// Checkpoint library behaviour without MPI: round trip, damage detection naming the file,
// discovery of the newest complete checkpoint, pruning, metrics continuation, config comparison.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/optim/adam.h>

#include <lmt/train/checkpoint.h>
#include <lmt/train/options.h>
#include <lmt/train/run_directory.h>

namespace fs = std::filesystem;
using namespace lmt;

namespace {

struct Fixture : ::testing::Test {
  std::string run = (fs::temp_directory_path() /
                     ("lmt-ckpt-" + std::to_string(::getpid()) + "-" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                        .string();
  std::shared_ptr<models::Model> model;
  std::unique_ptr<torch::optim::Adam> adam;

  void SetUp() override {
    fs::remove_all(run);
    models::ModelConfig c;
    c.name = "lmt-mnist";
    model = models::make_model(c);
    adam = std::make_unique<torch::optim::Adam>(model->parameters());
    model->forward(at::rand({2, 1, 28, 28})).sum().backward();
    adam->step();
  }
  void TearDown() override { fs::remove_all(run); }

  train::CheckpointState state(int64_t step) {
    train::CheckpointState s;
    s.position.global_step = step;
    s.position.epoch = 1;
    s.position.step_in_epoch = 7;
    s.world_size = 2;
    s.steps_per_epoch = 20;
    s.train_samples = 1000;
    s.rng_states = at::randint(0, 255, {2, 16}, at::kByte);
    s.epoch_sums = at::rand({2, 3}, at::kDouble);
    s.config = "lr = 0.001\nseed = 3\n";
    s.run_id = "run-a";
    return s;
  }
  std::vector<std::string> checkpoint_names() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(run + "/checkpoints"))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string error_of(const std::string& dir) {
    try {
      train::verify_checkpoint(dir);
    } catch (const train::TrainError& e) {
      return e.what();
    }
    return "";
  }
};

// A GPU run's per-rank generator states (16 bytes each for CUDA: seed and offset) come back as
// written; a checkpoint without them reads back undefined (RoundTripRestoresState...).
TEST_F(Fixture, DeviceGeneratorStatesRoundTrip) {
  auto saved = state(6);
  saved.device_rng_states = at::randint(0, 255, {2, 16}, at::kByte);
  const auto dir = train::write_checkpoint(run, *model, *adam, saved, 0);
  auto back = train::read_checkpoint_state(dir);
  ASSERT_TRUE(back.device_rng_states.defined());
  EXPECT_TRUE(back.device_rng_states.equal(saved.device_rng_states));
  EXPECT_TRUE(back.rng_states.equal(saved.rng_states));
}

TEST_F(Fixture, RoundTripRestoresStateModelAndOptimizerExactly) {
  auto saved = state(5);
  const auto dir = train::write_checkpoint(run, *model, *adam, saved, 0);
  EXPECT_EQ(dir, run + "/checkpoints/step-000005");
  EXPECT_EQ(error_of(dir), "");
  auto back = train::read_checkpoint_state(dir);
  EXPECT_EQ(back.position.global_step, 5);
  EXPECT_EQ(back.position.step_in_epoch, 7);
  EXPECT_EQ(back.config, saved.config);
  EXPECT_TRUE(back.rng_states.equal(saved.rng_states));
  EXPECT_TRUE(back.epoch_sums.equal(saved.epoch_sums));
  EXPECT_FALSE(back.device_rng_states.defined());  // a CPU run writes none

  models::ModelConfig c;
  c.name = "lmt-mnist";
  auto other = models::make_model(c);
  train::load_checkpoint_model(dir, *other);
  for (const auto& item : model->named_buffers())
    EXPECT_TRUE(item.value().equal(other->named_buffers()[item.key()])) << item.key();
  for (const auto& item : model->named_parameters())
    EXPECT_TRUE(item.value().equal(other->named_parameters()[item.key()])) << item.key();
  torch::optim::Adam other_adam(other->parameters());
  train::load_checkpoint_optimizer(dir, other_adam);
  // The same gradient gives the same update only if the moments and step counts came back.
  for (auto* m : {model.get(), other.get()}) m->zero_grad();
  at::Tensor x = at::rand({2, 1, 28, 28});
  model->forward(x).sum().backward();
  other->forward(x).sum().backward();
  adam->step();
  other_adam.step();
  for (const auto& item : model->named_parameters())
    EXPECT_TRUE(item.value().equal(other->named_parameters()[item.key()])) << item.key();
}

TEST_F(Fixture, OptimizerStateOfAnotherShapeIsRefusedAtLoadNotAtTheFirstStep) {
  const auto dir = train::write_checkpoint(run, *model, *adam, state(5), 0);
  models::ModelConfig c;
  c.name = "lmt-mnist";
  c.options["hidden"] = "50";  // fc1 [50, 1568] instead of [100, 1568]: the same 8 tensors
  auto other = models::make_model(c);
  torch::optim::Adam other_adam(other->parameters());
  try {
    train::load_checkpoint_optimizer(dir, other_adam);
    FAIL() << "optimizer state of another model was accepted";
  } catch (const train::TrainError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(dir + "/optimizer.pt: optimizer state exp_avg of parameter 4 has shape "
                              "[100, 1568], the parameter has [50, 1568]"),
              std::string::npos)
        << what;
  }
}

// A stop request right after a periodic checkpoint writes the same step again: the new one takes
// the old one's place whole (atomic exchange), nothing else is left in checkpoints/.
TEST_F(Fixture, RewritingTheSameStepReplacesItWhole) {
  auto first = state(5);
  const auto dir = train::write_checkpoint(run, *model, *adam, first, 3);
  auto second = state(5);
  second.epoch_sums.fill_(42.0);
  EXPECT_EQ(train::write_checkpoint(run, *model, *adam, second, 3), dir);
  EXPECT_EQ(error_of(dir), "");
  EXPECT_TRUE(train::read_checkpoint_state(dir).epoch_sums.equal(second.epoch_sums));
  EXPECT_EQ(checkpoint_names(), std::vector<std::string>{"step-000005"});
}

TEST_F(Fixture, DamageIsNamedByFile) {
  const auto dir = train::write_checkpoint(run, *model, *adam, state(1), 0);
  fs::resize_file(dir + "/optimizer.pt", fs::file_size(dir + "/optimizer.pt") - 1);
  EXPECT_NE(error_of(dir).find(dir + "/optimizer.pt: "), std::string::npos) << error_of(dir);
  EXPECT_NE(error_of(dir).find("truncated"), std::string::npos);

  const auto dir2 = train::write_checkpoint(run, *model, *adam, state(2), 0);
  {
    std::fstream f(dir2 + "/state.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    char c = 0;
    f.read(&c, 1);
    c = char(c ^ 0x10);
    f.seekp(100);
    f.write(&c, 1);
  }
  EXPECT_NE(error_of(dir2).find(dir2 + "/state.pt: checksum"), std::string::npos);
  EXPECT_NE(error_of(dir2).find("corrupted"), std::string::npos);

  const auto dir3 = train::write_checkpoint(run, *model, *adam, state(3), 0);
  fs::remove(dir3 + "/MANIFEST");
  EXPECT_NE(error_of(dir3).find(dir3 + "/MANIFEST: missing"), std::string::npos);
}

TEST_F(Fixture, NewestCompleteCheckpointWinsAndDamagedOnesAreReported) {
  train::write_checkpoint(run, *model, *adam, state(4), 0);
  const auto good = train::write_checkpoint(run, *model, *adam, state(8), 0);
  const auto bad = train::write_checkpoint(run, *model, *adam, state(12), 0);
  fs::create_directories(run + "/checkpoints/.tmp-step-000016-1");  // a crashed write
  fs::resize_file(bad + "/model.pt", 10);
  std::vector<std::string> warnings;
  EXPECT_EQ(train::find_latest_checkpoint(run, &warnings), good);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(bad + "/model.pt"), std::string::npos) << warnings[0];
  EXPECT_EQ(train::find_latest_checkpoint(run + "/nothing-here", nullptr), "");
}

TEST_F(Fixture, KeepLastPrunesOldestAndStaleTemporaries) {
  fs::create_directories(run + "/checkpoints/.tmp-step-000002-99");
  for (int64_t step : {2, 4, 6, 8}) train::write_checkpoint(run, *model, *adam, state(step), 2);
  EXPECT_EQ(checkpoint_names(), (std::vector<std::string>{"step-000006", "step-000008"}));
}

// The issue-14 case: run A (seed 1) checkpoints 5..20, run B (seed 2) stops at 7 in the same
// directory. B's checkpoints are never pruned for A's higher step numbers, and A's are not B's
// to prune; the newest written (B's step 7) is what --resume auto finds.
TEST_F(Fixture, PruningKeepsThisRunsNewestAndNeverTouchesAnotherRun) {
  for (int64_t step : {5, 10, 15, 20}) train::write_checkpoint(run, *model, *adam, state(step), 3);
  EXPECT_EQ(checkpoint_names(),
            (std::vector<std::string>{"step-000010", "step-000015", "step-000020"}));
  for (int64_t step : {5, 7}) {
    auto b = state(step);
    b.run_id = "run-b";
    train::write_checkpoint(run, *model, *adam, b, 3);
  }
  EXPECT_EQ(checkpoint_names(),
            (std::vector<std::string>{"step-000005", "step-000007", "step-000010", "step-000015",
                                      "step-000020"}));
  EXPECT_EQ(train::find_latest_checkpoint(run, nullptr), run + "/checkpoints/step-000007");
  EXPECT_EQ(train::read_checkpoint_state(run + "/checkpoints/step-000007").run_id, "run-b");
}

// Resumed from an older checkpoint, the run's newest checkpoints are the ones written last, not
// the highest step numbers; the one just written is always kept (keep_last 1 included).
TEST_F(Fixture, PruningIsByWriteOrderAndKeepsTheOneJustWritten) {
  for (int64_t step : {2, 4, 6}) train::write_checkpoint(run, *model, *adam, state(step), 2);
  train::write_checkpoint(run, *model, *adam, state(5), 2);  // resumed from step 4
  EXPECT_EQ(checkpoint_names(), (std::vector<std::string>{"step-000005", "step-000006"}));
  EXPECT_EQ(train::find_latest_checkpoint(run, nullptr), run + "/checkpoints/step-000005");
  EXPECT_GT(train::read_checkpoint_state(run + "/checkpoints/step-000005").sequence,
            train::read_checkpoint_state(run + "/checkpoints/step-000006").sequence);
  train::write_checkpoint(run, *model, *adam, state(3), 1);
  EXPECT_EQ(checkpoint_names(), (std::vector<std::string>{"step-000003"}));
}

// A file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes write() fail with EFBIG as a full disk
// fails with ENOSPC: one TrainError naming the checkpoint and the cause, no temporary directory,
// the older checkpoint intact.
TEST_F(Fixture, AFullDiskEndsInOneNamedErrorAndKeepsTheOlderCheckpoint) {
  const auto good = train::write_checkpoint(run, *model, *adam, state(1), 0);
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;  // model.pt of lmt-mnist is 665 KB
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    train::write_checkpoint(run, *model, *adam, state(2), 0);
  } catch (const train::TrainError& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(error.rfind(run + "/checkpoints/step-000002: cannot write checkpoint: ", 0), 0u)
      << error;
  EXPECT_NE(error.find("File too large"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_EQ(checkpoint_names(), (std::vector<std::string>{"step-000001"}));
  EXPECT_EQ(error_of(good), "");
}

TEST_F(Fixture, ARunDirectoryWithAModelMetricsOrCheckpointHoldsARun) {
  fs::create_directories(run);
  EXPECT_EQ(train::existing_run_file(run), "");
  std::ofstream(run + "/config.ini") << "lr = 1\n";  // a run that failed before starting
  EXPECT_EQ(train::existing_run_file(run), "");
  train::write_checkpoint(run, *model, *adam, state(3), 0);
  EXPECT_EQ(train::existing_run_file(run), run + "/checkpoints/step-000003");
  std::ofstream(run + "/metrics.jsonl") << "{}\n";
  EXPECT_EQ(train::existing_run_file(run), run + "/metrics.jsonl");
  train::remove_previous_run(run);
  EXPECT_EQ(train::existing_run_file(run), "");
  EXPECT_FALSE(fs::exists(run + "/config.ini"));
}

TEST(Metrics, ResumeDropsLinesWrittenAfterTheCheckpoint) {
  const std::string path =
      fs::temp_directory_path() / ("lmt-metrics-" + std::to_string(::getpid()));
  std::ofstream(path) << "{\"type\":\"epoch\",\"epoch\":1,\"step\":20}\n"
                      << "{\"type\":\"step\",\"step\":30}\n"
                      << "{\"type\":\"epoch\",\"epoch\":2,\"step\":30}\n"
                      << "{\"type\":\"step\",\"step\":31}\n";
  train::trim_metrics_after(path, 30);
  std::stringstream kept;
  kept << std::ifstream(path).rdbuf();
  EXPECT_EQ(kept.str(),
            "{\"type\":\"epoch\",\"epoch\":1,\"step\":20}\n{\"type\":\"step\",\"step\":30}\n");
  fs::remove(path);
}

// The compatibility check is generated from the option schema (train/options.h): every option
// marked run-defining is compared, whatever it is; operational ones may change.
TEST(Config, TheFirstRunDefiningDifferenceIsNamed) {
  train::TrainOptions o;
  o.data_dir("/data").out_dir("/a").model_options({{"a", "1"}}).threads(2);
  const std::string saved = train::run_config(o);
  train::TrainOptions same = o;
  same.out_dir("/b").threads(8).resume("auto").log_every(7).checkpoint_every(5);
  EXPECT_EQ(train::first_run_difference(saved, same), "");
  EXPECT_EQ(train::first_run_difference(saved, train::TrainOptions(o).lr(0.01)),
            "--lr: checkpoint has 0.001, this run has 0.01");
  EXPECT_EQ(train::first_run_difference(
                saved, train::TrainOptions(o).model_options({{"a", "1"}, {"b", "2"}})),
            "--model-option: checkpoint has a=1, this run has a=1,b=2");
  // What the hand-written list of the first version missed: eps, attack steps, mixup.
  EXPECT_EQ(train::first_run_difference(saved, train::TrainOptions(o).adv_eps(0.1)),
            "--eps: checkpoint has 0, this run has 0.1");
  EXPECT_EQ(train::first_run_difference(saved, train::TrainOptions(o).attack_steps(7)),
            "--attack-steps: checkpoint has 10, this run has 7");
  EXPECT_EQ(train::first_run_difference(saved, train::TrainOptions(o).mixup_alpha(0.2)),
            "--mixup: checkpoint has 0, this run has 0.2");
  EXPECT_EQ(train::first_run_difference(saved, train::TrainOptions(o).loss(train::Loss::kLmt)),
            "--loss: checkpoint has ce, this run has lmt");
  // A config written by the CLI before the schema (the bools as 1/0 by the library's old
  // describer, defaults omitted) still reads back as the same run.
  EXPECT_EQ(
      train::first_run_difference("lr = 0.001\nhflip = 0\nnormalize = 1\nmodel-option = a=1\n", o),
      "");
}

// Every option of the schema is written into config.ini, reads back to the same options, and
// is refused naming its flag when out of range (a library user gets the CLI's checks).
TEST(Config, EveryOptionRoundTripsAndIsChecked) {
  const auto& schema = train::train_option_schema();
  train::TrainOptions o;
  o.data_dir("/d").out_dir("/o").lr_steps({3, 6}).model_options({{"k", "v"}}).adv_eps(8.0 / 255);
  const std::string config = train::run_config(o);
  for (const auto& entry : schema.entries())
    EXPECT_NE(config.find("\n" + entry.spec.name + " = "), std::string::npos) << entry.spec.name;
  train::TrainOptions back;
  for (const auto& [key, items] : options::parse_config_lines(config)) schema.set(back, key, items);
  EXPECT_EQ(train::run_config(back), config);
  EXPECT_EQ(back.adv_eps(), 8.0 / 255);
  auto refusal = [](const train::TrainOptions& bad) {
    try {
      train::check_options(bad, 1);
    } catch (const train::TrainError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(refusal(o), "");
  EXPECT_EQ(refusal(train::TrainOptions(o).lr(-1)), "option '--lr' must be in (0, inf) (got -1)");
  EXPECT_EQ(refusal(train::TrainOptions(o).data_dir("")), "option '--data' is required");
  EXPECT_EQ(refusal(train::TrainOptions(o).resume("auto").overwrite(true)),
            "options '--resume' and '--overwrite' exclude each other");
  EXPECT_EQ(refusal(train::TrainOptions(o).loss(train::Loss::kTrades).adv_eps(0)),
            "--eps: --loss trades needs eps > 0");
}

}  // namespace
