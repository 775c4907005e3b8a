// Unit tests of lmt::dist that need no MPI job: bucket planning, RankEnv parsing, the one-time
// error report, and GradSync in a world of one (no communication at all).
#include <gtest/gtest.h>
#include <lmt/dist/error.h>
#include <lmt/dist/grad_sync.h>
#include <lmt/dist/rank_env.h>

#include "mpi_check.h"  // dist/ (private): the MPI return-code check

#include <cstdlib>

namespace dist = lmt::dist;

namespace {

std::vector<at::Tensor> floats(std::initializer_list<int64_t> numels) {
  std::vector<at::Tensor> ps;
  for (int64_t n : numels) ps.push_back(at::zeros({n}));
  return ps;
}

TEST(PlanBuckets, TakesParametersInReverseRegistrationOrder) {
  auto buckets = dist::plan_buckets(floats({10, 20, 30, 40}), 1 << 20, 25 << 20);
  ASSERT_EQ(buckets.size(), 1u);
  EXPECT_EQ(buckets[0].params, (std::vector<size_t>{3, 2, 1, 0}));
  EXPECT_EQ(buckets[0].offsets, (std::vector<int64_t>{0, 40, 70, 90}));
  EXPECT_EQ(buckets[0].numel, 100);
  EXPECT_EQ(buckets[0].bytes, 400u);
}

TEST(PlanBuckets, FirstBucketUsesItsOwnSmallerCap) {
  // 4-byte floats: first cap 100 bytes = 25 floats, later cap 200 bytes = 50 floats.
  auto buckets = dist::plan_buckets(floats({20, 20, 20, 20, 20, 20}), 100, 200);
  ASSERT_EQ(buckets.size(), 4u);
  EXPECT_EQ(buckets[0].params, (std::vector<size_t>{5}));
  EXPECT_EQ(buckets[1].params, (std::vector<size_t>{4, 3}));
  EXPECT_EQ(buckets[2].params, (std::vector<size_t>{2, 1}));
  EXPECT_EQ(buckets[3].params, (std::vector<size_t>{0}));
  EXPECT_EQ(buckets[1].bytes, 160u);
}

TEST(PlanBuckets, GradientLargerThanTheCapGetsABucketOfItsOwn) {
  auto buckets = dist::plan_buckets(floats({5, 1000, 5}), 40, 40);
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[1].params, (std::vector<size_t>{1}));
  EXPECT_EQ(buckets[1].bytes, 4000u);
}

TEST(PlanBuckets, SplitsWhereTheDtypeChanges) {
  std::vector<at::Tensor> ps = {at::zeros({3}), at::zeros({3}, at::kDouble), at::zeros({3})};
  auto buckets = dist::plan_buckets(ps, 1 << 20, 1 << 20);
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[1].dtype, at::kDouble);
  EXPECT_EQ(buckets[1].bytes, 24u);
}

void clear_launcher_env() {
  for (const char* name :
       {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
        "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
        "SLURM_STEP_ID", "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
    unsetenv(name);
  }
}

// Sets exactly these launcher variables for one test, and clears them afterwards.
struct ScopedEnv {
  using Vars = std::vector<std::pair<const char*, const char*>>;
  explicit ScopedEnv(const Vars& vars) {
    clear_launcher_env();
    for (auto& [k, v] : vars) setenv(k, v, 1);
  }
  ~ScopedEnv() { clear_launcher_env(); }
};

TEST(RankEnv, PlainStartIsAWorldOfOne) {
  ScopedEnv env(ScopedEnv::Vars{});
  auto e = dist::RankEnv::from_environment();
  EXPECT_EQ(e.launcher, "plain");
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
}

TEST(RankEnv, ReadsOpenMpiVariables) {
  ScopedEnv env({{"OMPI_COMM_WORLD_RANK", "3"},
                 {"OMPI_COMM_WORLD_SIZE", "8"},
                 {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                 {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                 {"SLURM_PROCID", "0"},
                 {"SLURM_STEP_ID", "0"}});
  auto e = dist::RankEnv::from_environment();
  EXPECT_EQ(e.launcher, "mpirun");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_size, 2);
}

TEST(RankEnv, ReadsSlurmStepVariables) {
  ScopedEnv env({{"SLURM_PROCID", "5"},
                 {"SLURM_NTASKS", "6"},
                 {"SLURM_LOCALID", "2"},
                 {"SLURM_STEP_ID", "0"},
                 {"SLURM_TASKS_PER_NODE", "3(x2)"}});
  auto e = dist::RankEnv::from_environment();
  EXPECT_EQ(e.launcher, "srun");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 6);
  EXPECT_EQ(e.local_rank, 2);
  EXPECT_EQ(e.local_size, 3);
}

TEST(RankEnv, MalformedVariableNamesItself) {
  ScopedEnv env(ScopedEnv::Vars{{"OMPI_COMM_WORLD_SIZE", "two"}});
  try {
    dist::RankEnv::from_environment();
    FAIL() << "accepted OMPI_COMM_WORLD_SIZE=two";
  } catch (const dist::DistError& e) {
    EXPECT_NE(std::string(e.what()).find("OMPI_COMM_WORLD_SIZE='two'"), std::string::npos);
  }
}

TEST(ReportError, PrintsRankPrefixedLineOnlyOnce) {
  dist::RankEnv env;
  env.rank = 3;
  testing::internal::CaptureStderr();
  dist::report_error(env, "first failure");
  dist::report_error(env, "second failure");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "lmt: rank 3: first failure\n");
}

// A world of one that records every call: GradSync must not communicate.
class CountingWorldOfOne : public dist::Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce(at::Tensor&, dist::ReduceOp) override { ++calls; }
  std::shared_ptr<dist::Work> all_reduce_async(at::Tensor&, dist::ReduceOp) override {
    ++calls;
    return nullptr;
  }
  void broadcast(at::Tensor&, int) override { ++calls; }
  at::Tensor all_gather(const at::Tensor& t) override {
    ++calls;
    return t.unsqueeze(0);
  }
  void barrier() override { ++calls; }
  std::string backend() const override { return "counting"; }
  int calls = 0;
};

TEST(GradSync, WorldOfOneKeepsGradientsAndZeroFillsUnusedWithoutCommunicating) {
  auto comm = std::make_shared<CountingWorldOfOne>();
  at::Tensor used = at::ones({4}).requires_grad_();
  at::Tensor unused = at::ones({3}).requires_grad_();
  dist::GradSync sync(comm, {used, unused});
  (used * 3).sum().backward();
  sync.finish();
  EXPECT_TRUE(at::equal(used.grad(), at::full({4}, 3.0f)));
  ASSERT_TRUE(unused.grad().defined());
  EXPECT_TRUE(at::equal(unused.grad(), at::zeros({3})));
  EXPECT_EQ(comm->calls, 0);
}

// Two ranks whose peer always holds the same gradients (so the average is the input): it
// records each all-reduce it is asked to start.
class MirroredPair : public CountingWorldOfOne {
 public:
  int size() const override { return 2; }
  std::shared_ptr<dist::Work> all_reduce_async(at::Tensor& t, dist::ReduceOp) override {
    started.push_back(t.numel());
    struct Done : dist::Work {
      void wait() override {}
    };
    return std::make_shared<Done>();
  }
  std::vector<int64_t> started;
};

TEST(GradSync, WithOverlapEveryBucketStartsDuringBackwardInBucketOrder) {
  auto comm = std::make_shared<MirroredPair>();
  std::vector<at::Tensor> ps = {at::ones({300}).requires_grad_(), at::ones({200}).requires_grad_(),
                                at::ones({100}).requires_grad_()};
  // 4-byte floats, caps of 800 bytes: buckets {2} (400 B; adding 800 B would exceed), {1}, {0}.
  dist::GradSync sync(comm, ps,
                      dist::GradSyncOptions().first_bucket_bytes(800).bucket_cap_bytes(800));
  ASSERT_EQ(sync.buckets().size(), 3u);
  ((ps[0] * 2).sum() + (ps[1] * 3).sum() + (ps[2] * 4).sum()).backward();
  EXPECT_EQ(comm->started, (std::vector<int64_t>{100, 200, 300}));  // before finish()
  sync.finish();
  EXPECT_TRUE(at::equal(ps[0].grad(), at::full({300}, 2.0f)));
  EXPECT_TRUE(at::equal(ps[2].grad(), at::full({100}, 4.0f)));
}

TEST(GradSync, WithoutOverlapNothingStartsUntilFinish) {
  auto comm = std::make_shared<MirroredPair>();
  std::vector<at::Tensor> ps = {at::ones({30}).requires_grad_(), at::ones({20}).requires_grad_()};
  dist::GradSync sync(comm, ps, dist::GradSyncOptions().overlap(false));
  (ps[0].sum() + ps[1].sum()).backward();
  EXPECT_TRUE(comm->started.empty());
  sync.finish();
  EXPECT_EQ(comm->started, (std::vector<int64_t>{50}));
}

TEST(GradSync, UnusedParameterHoldsBackItsBucketUntilFinishThenIsZero) {
  auto comm = std::make_shared<MirroredPair>();
  std::vector<at::Tensor> ps = {at::ones({10}).requires_grad_(), at::ones({10}).requires_grad_()};
  dist::GradSync sync(comm, ps,
                      dist::GradSyncOptions().first_bucket_bytes(40).bucket_cap_bytes(40));
  (ps[0] * 5).sum().backward();        // ps[1] (bucket 0) gets no gradient
  EXPECT_TRUE(comm->started.empty());  // bucket 1 may not overtake bucket 0
  sync.finish();
  EXPECT_EQ(comm->started.size(), 2u);
  EXPECT_TRUE(at::equal(ps[1].grad(), at::zeros({10})));
  EXPECT_TRUE(at::equal(ps[0].grad(), at::full({10}, 5.0f)));
}

TEST(GradSync, SecondBackwardBeforeFinishIsAnError) {
  auto comm = std::make_shared<MirroredPair>();
  at::Tensor p = at::ones({4}).requires_grad_();
  dist::GradSync sync(comm, {p});
  p.sum().backward();
  p.sum().backward();
  EXPECT_THROW(sync.finish(), dist::DistError);
}

}  // namespace

// MPI return codes (MPI_ERRORS_RETURN everywhere in lmt::dist): a failed call throws DistError
// naming the call, the rank and MPI's own text (MPI_Error_string needs MPI: a singleton here).
TEST(MpiCheck, FailedCallThrowsNamingTheCallAndTheRank) {
  ASSERT_EQ(MPI_Init(nullptr, nullptr), MPI_SUCCESS);
  EXPECT_NO_THROW(lmt::dist::mpi_check(MPI_SUCCESS, "MPI_Barrier", 0));
  try {
    lmt::dist::mpi_check(MPI_ERR_TRUNCATE, "MPI_Allreduce", 3);
    FAIL() << "no exception";
  } catch (const lmt::dist::DistError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("MPI_Allreduce failed on rank 3: ", 0), 0u) << what;
    EXPECT_NE(what.find("truncated"), std::string::npos) << what;  // MPI's text for the code
  }
  MPI_Finalize();
}
