// Tests of BoundedLinear and BoundedConv2d: converged power iteration equals the largest singular
// value of the explicit matrix, the sound bound sits above it, kTrain sigma is differentiable.
#include <gtest/gtest.h>

#include <lmt/lipschitz/layers.h>

#include "jacobian.h"

namespace lip = lmt::lipschitz;
using lip::BoundMode;
using lip::testing::linear_map_matrix;
using lip::testing::spectral_norm;
using lip::testing::value;

namespace {

struct ConvCase {
  int64_t in, out, k, h, w, stride, padding, groups;
};

std::string case_name(const ConvCase& c) {
  return std::to_string(c.in) + "to" + std::to_string(c.out) + "_k" + std::to_string(c.k) + "_" +
         std::to_string(c.h) + "x" + std::to_string(c.w) + "_s" + std::to_string(c.stride) + "_p" +
         std::to_string(c.padding) + "_g" + std::to_string(c.groups);
}

void PrintTo(const ConvCase& c, std::ostream* os) { *os << case_name(c); }

lip::BoundedConv2d make_conv(const ConvCase& c) {
  return lip::BoundedConv2d(lip::BoundedConv2dOptions(c.in, c.out, c.k, c.h, c.w)
                                .stride(c.stride)
                                .padding(c.padding)
                                .groups(c.groups));
}

// The conv (without bias) as an explicit float64 matrix, from its forward on basis images.
at::Tensor conv_matrix(lip::BoundedConv2d& conv, const ConvCase& c,
                       torch::nn::BatchNorm2d bn = nullptr) {
  conv->to(at::kDouble);
  if (!bn.is_empty()) {
    bn->to(at::kDouble);
    bn->eval();
  }
  auto fn = [&](const at::Tensor& x) {
    at::Tensor y = conv->forward(x);
    return bn.is_empty() ? y : bn->forward(y);
  };
  at::Tensor m = linear_map_matrix(fn, {1, c.in, c.h, c.w});
  conv->to(at::kFloat);
  if (!bn.is_empty()) bn->to(at::kFloat);
  return m;
}

class ConvSpectralNorm : public ::testing::TestWithParam<ConvCase> {};

}  // namespace

TEST(BoundedLinear, ShapesNamesAndInit) {
  at::manual_seed(1);
  lip::BoundedLinear fc(lip::BoundedLinearOptions(5, 3));
  auto params = fc->named_parameters();
  ASSERT_TRUE(params.contains("weight"));
  ASSERT_TRUE(params.contains("bias"));
  EXPECT_EQ(params["weight"].sizes(), at::IntArrayRef({3, 5}));
  EXPECT_TRUE(fc->named_buffers().contains("pi_u"));
  EXPECT_NEAR(value(fc->pi_u.norm()), 1.0, 1e-6);
  EXPECT_LE(value(fc->weight.abs().max()), 1.0 / std::sqrt(5.0));
  at::Tensor x = at::randn({4, 5});
  EXPECT_TRUE(at::allclose(fc->forward(x), at::matmul(x, fc->weight.t()) + fc->bias));
  lip::BoundedLinear no_bias(lip::BoundedLinearOptions(5, 3).bias(false));
  EXPECT_FALSE(no_bias->named_parameters().contains("bias"));
}

TEST(BoundedLinear, ConvergedPowerIterationMatchesSvdAndSoundIsAbove) {
  at::manual_seed(2);
  for (auto [in, out] : std::vector<std::pair<int64_t, int64_t>>{{7, 3}, {3, 9}, {32, 32}}) {
    lip::BoundedLinear fc(in, out);
    fc->to(at::kDouble);
    const double exact = spectral_norm(
        linear_map_matrix([&](const at::Tensor& x) { return fc->forward(x); }, {1, in}));
    fc->to(at::kFloat);
    EXPECT_NEAR(value(fc->spectral_norm(BoundMode::kEstimate)), exact, 1e-3 * exact);
    const double sound = value(fc->spectral_norm(BoundMode::kSound));
    EXPECT_GE(sound, exact);
    EXPECT_LE(sound, exact * (1 + 1e-6));
    fc->power_iteration_step(500);
    EXPECT_NEAR(value(fc->spectral_norm(BoundMode::kTrain)), exact, 1e-3 * exact);
  }
}

TEST_P(ConvSpectralNorm, ConvergedPowerIterationMatchesSvdAndSoundIsAbove) {
  const ConvCase c = GetParam();
  at::manual_seed(3);
  auto conv = make_conv(c);
  const double exact = spectral_norm(conv_matrix(conv, c));
  EXPECT_NEAR(value(conv->spectral_norm(BoundMode::kEstimate)), exact, 1e-3 * exact);
  const double sound = value(conv->spectral_norm(BoundMode::kSound));
  EXPECT_GE(sound, exact);
  EXPECT_LE(sound, 1.5 * exact);
  RecordProperty("sound_over_exact", std::to_string(sound / exact));
  std::printf("  %s: exact %.6f sound %.6f ratio %.4f\n", case_name(c).c_str(), exact, sound,
              sound / exact);
  // The persistent vector, stepped many times, gives the same value in kTrain.
  conv->power_iteration_step(1000);
  EXPECT_NEAR(value(conv->spectral_norm(BoundMode::kTrain)), exact, 1e-3 * exact);
  EXPECT_NEAR(value(conv->pi_u.norm()), 1.0, 1e-5);
}

TEST_P(ConvSpectralNorm, FoldedWithBatchNormMatchesSvdOfConvThenBn) {
  const ConvCase c = GetParam();
  at::manual_seed(4);
  auto conv = make_conv(c);
  torch::nn::BatchNorm2d bn(c.out);
  {
    at::NoGradGuard no_grad;
    bn->weight.copy_(at::randn({c.out}) * 2);  // includes negative gamma
    bn->running_var.copy_(at::rand({c.out}) * 3 + 0.05);
    bn->running_mean.copy_(at::randn({c.out}));
  }
  conv->attach_batch_norm(bn);
  const double exact = spectral_norm(conv_matrix(conv, c, bn));
  EXPECT_NEAR(value(conv->spectral_norm(BoundMode::kEstimate)), exact, 1e-3 * exact);
  const double sound = value(conv->spectral_norm(BoundMode::kSound));
  EXPECT_GE(sound, exact);
  EXPECT_LE(sound, 1.5 * exact);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvSpectralNorm,
    ::testing::Values(ConvCase{3, 4, 3, 6, 6, 1, 1, 1}, ConvCase{2, 3, 3, 7, 7, 2, 1, 1},
                      ConvCase{4, 4, 3, 6, 5, 1, 0, 2}, ConvCase{3, 5, 1, 5, 5, 2, 0, 1},
                      ConvCase{2, 2, 4, 6, 6, 2, 2, 1}, ConvCase{4, 6, 3, 8, 8, 2, 1, 2},
                      ConvCase{1, 3, 4, 7, 7, 1, 2, 1}, ConvCase{2, 4, 3, 5, 5, 1, 2, 1},
                      ConvCase{6, 4, 1, 4, 4, 1, 0, 2}, ConvCase{4, 6, 4, 9, 9, 3, 2, 2},
                      ConvCase{3, 2, 3, 10, 7, 2, 0, 1}),
    [](const ::testing::TestParamInfo<ConvCase>& info) { return case_name(info.param); });

TEST(BoundedConv2d, AdjointIsTheTransposeOfTheOperator) {
  at::manual_seed(5);
  for (const ConvCase& c : {ConvCase{2, 3, 3, 7, 6, 2, 1, 1}, ConvCase{4, 6, 4, 9, 9, 3, 2, 2}}) {
    auto conv = make_conv(c);
    conv->to(at::kDouble);
    at::Tensor u = at::randn({1, c.in, c.h, c.w}, at::kDouble);
    at::Tensor v = at::randn({1, c.out, conv->output_height(), conv->output_width()}, at::kDouble);
    const double lhs = value((conv->apply_operator(u) * v).sum());
    const double rhs = value((u * conv->apply_adjoint(v)).sum());
    EXPECT_NEAR(lhs, rhs, 1e-10 * std::abs(lhs) + 1e-12) << case_name(c);
  }
}

TEST(BoundedConv2d, RejectsAnInputOfAnotherSize) {
  auto conv = make_conv({1, 2, 3, 8, 8, 1, 1, 1});
  EXPECT_THROW(conv->forward(at::zeros({1, 1, 9, 8})), lip::BoundError);
  EXPECT_NO_THROW(conv->forward(at::zeros({2, 1, 8, 8})));
}

TEST(BoundedConv2d, TrainSigmaIsDifferentiableInWeightAndGamma) {
  at::manual_seed(6);
  ConvCase c{2, 3, 3, 5, 5, 2, 1, 1};
  auto conv = make_conv(c);
  torch::nn::BatchNorm2d bn(c.out);
  {
    at::NoGradGuard no_grad;
    bn->weight.copy_(at::randn({c.out}));
    bn->running_var.copy_(at::rand({c.out}) + 0.5);
  }
  conv->attach_batch_norm(bn);
  conv->to(at::kDouble);
  bn->to(at::kDouble);
  conv->power_iteration_step(3);
  at::Tensor sigma = conv->spectral_norm(BoundMode::kTrain);
  auto grads = torch::autograd::grad({sigma}, {conv->weight, bn->weight});
  const double h = 1e-6;
  auto finite_difference = [&](at::Tensor param, std::vector<int64_t> index) {
    at::NoGradGuard no_grad;
    at::Tensor entry =
        param.index(std::vector<at::indexing::TensorIndex>(index.begin(), index.end()));
    const double saved = value(entry);
    entry.fill_(saved + h);
    const double up = value(conv->spectral_norm(BoundMode::kTrain));
    entry.fill_(saved - h);
    const double down = value(conv->spectral_norm(BoundMode::kTrain));
    entry.fill_(saved);
    return (up - down) / (2 * h);
  };
  EXPECT_NEAR(value(grads[0][1][0][2][1]), finite_difference(conv->weight, {1, 0, 2, 1}), 1e-6);
  EXPECT_NEAR(value(grads[0][0][1][0][0]), finite_difference(conv->weight, {0, 1, 0, 0}), 1e-6);
  EXPECT_NEAR(value(grads[1][2]), finite_difference(bn->weight, {2}), 1e-6);
}

TEST(BoundedLinear, TrainSigmaIsDifferentiableInWeight) {
  at::manual_seed(7);
  lip::BoundedLinear fc(6, 4);
  fc->to(at::kDouble);
  fc->power_iteration_step(2);
  at::Tensor grad = torch::autograd::grad({fc->spectral_norm(BoundMode::kTrain)}, {fc->weight})[0];
  const double h = 1e-6;
  at::NoGradGuard no_grad;
  at::Tensor entry = fc->weight[2][3];
  const double saved = value(entry);
  entry.fill_(saved + h);
  const double up = value(fc->spectral_norm(BoundMode::kTrain));
  entry.fill_(saved - h);
  const double down = value(fc->spectral_norm(BoundMode::kTrain));
  EXPECT_NEAR(value(grad[2][3]), (up - down) / (2 * h), 1e-7);
}

TEST(SpectralOperators, WalkFindsEveryLayerInRegistrationOrder) {
  struct Net : torch::nn::Module {
    Net() {
      register_module("conv1", lip::BoundedConv2d(lip::BoundedConv2dOptions(1, 2, 3, 6, 6)));
      auto inner = std::make_shared<torch::nn::Module>();
      inner->register_module("conv2", lip::BoundedConv2d(lip::BoundedConv2dOptions(2, 2, 3, 4, 4)));
      register_module("block", inner);
      register_module("fc", lip::BoundedLinear(8, 3));
    }
  } net;
  auto ops = lip::spectral_operators(net);
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops[0].name, "conv1");
  EXPECT_EQ(ops[1].name, "block.conv2");
  EXPECT_EQ(ops[2].name, "fc");
  auto vectors = lip::power_iteration_vectors(net);
  ASSERT_EQ(vectors.size(), 3u);
  // Shared storage: writing the returned vector writes the module's buffer.
  vectors[2].fill_(0.5);
  EXPECT_TRUE(at::allclose(net.named_buffers()["fc.pi_u"], at::full({8}, 0.5)));
  at::Tensor before = vectors[0].clone();
  lip::power_iteration_step(net, 2);
  EXPECT_FALSE(at::equal(before, vectors[0]));
}

// A zero operator (a zero-initialised residual branch) must not collapse the persistent vector to
// zero: once the weights move, kTrain has to follow them instead of staying pinned at 0.
TEST(SpectralOperators, ZeroOperatorKeepsAUnitVectorAndRecovers) {
  at::manual_seed(21);
  lip::BoundedConv2d conv(lip::BoundedConv2dOptions(3, 4, 3, 6, 6).padding(1).bias(false));
  lip::BoundedLinear linear(5, 4);
  {
    at::NoGradGuard no_grad;
    conv->weight.zero_();
    linear->weight.zero_();
  }
  conv->power_iteration_step(3);
  linear->power_iteration_step(3);
  EXPECT_NEAR(value(conv->pi_u.norm()), 1.0, 1e-6);
  EXPECT_NEAR(value(linear->pi_u.norm()), 1.0, 1e-6);
  EXPECT_EQ(value(conv->spectral_norm(BoundMode::kTrain)), 0.0);
  EXPECT_EQ(value(linear->spectral_norm(BoundMode::kSound)), 0.0);
  {
    at::NoGradGuard no_grad;
    conv->weight.normal_(0, 0.3);
    linear->weight.normal_(0, 0.3);
  }
  conv->power_iteration_step(300);
  linear->power_iteration_step(300);
  ConvCase c{3, 4, 3, 6, 6, 1, 1, 1};
  const double conv_exact = spectral_norm(conv_matrix(conv, c));
  conv->to(at::kFloat);
  EXPECT_NEAR(value(conv->spectral_norm(BoundMode::kTrain)), conv_exact, 1e-3 * conv_exact);
  const double linear_exact = spectral_norm(linear->weight.detach().to(at::kDouble));
  EXPECT_NEAR(value(linear->spectral_norm(BoundMode::kTrain)), linear_exact, 1e-3 * linear_exact);
}
