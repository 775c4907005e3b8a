// NCCL communicator tests: run only where a CUDA device and a CUDA LibTorch exist; otherwise
// every test reports SKIPPED (never passed).
#include <gtest/gtest.h>
#include <lmt/dist/communicator.h>
#include <lmt/dist/runtime.h>

#include <ATen/Context.h>

namespace dist = lmt::dist;

namespace {

void skip_without_gpu() {
  if (!dist::nccl_available()) GTEST_SKIP() << "no CUDA device visible";
  if (!at::hasCUDA()) GTEST_SKIP() << "LibTorch was built without CUDA";
}

dist::Runtime& runtime() {
  static int argc = 1;
  static char name[] = "dist_nccl_test";
  static char* args[] = {name, nullptr};
  static char** argv = args;
  static dist::Runtime rt(argc, argv);
  return rt;
}

TEST(NcclCommunicator, AllReduceSumsCudaTensors) {
  skip_without_gpu();
  if (IsSkipped()) return;
  auto control = dist::make_mpi_communicator();
  auto nccl = dist::make_nccl_communicator(control, runtime().env().local_rank);
  const int n = nccl->size();
  at::Tensor t = at::full({1000}, float(nccl->rank() + 1), at::device(at::kCUDA));
  nccl->all_reduce(t, dist::ReduceOp::kSum);
  EXPECT_TRUE(at::equal(t.cpu(), at::full({1000}, float(n * (n + 1) / 2))));
}

TEST(NcclCommunicator, BroadcastAndAllGatherCudaTensors) {
  skip_without_gpu();
  if (IsSkipped()) return;
  auto control = dist::make_mpi_communicator();
  auto nccl = dist::make_nccl_communicator(control, runtime().env().local_rank);
  at::Tensor b = at::full({8}, double(nccl->rank()), at::device(at::kCUDA).dtype(at::kDouble));
  nccl->broadcast(b, 0);
  EXPECT_TRUE(at::equal(b.cpu(), at::zeros({8}, at::kDouble)));
  at::Tensor g = nccl->all_gather(
      at::full({2}, int64_t(nccl->rank()), at::device(at::kCUDA).dtype(at::kLong)));
  for (int r = 0; r < nccl->size(); ++r) EXPECT_EQ(g[r][0].item<int64_t>(), r);
}

}  // namespace
