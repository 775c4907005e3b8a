// lmt::lipschitz: the parameter-free (or per-channel) network parts as BoundedModules: input
// normalisation, activations, pooling, flatten, dropout and drop-path, LipShiFT's shift,
// CenterNorm, per-channel scales, batch centring and a stand-alone batch norm.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/pimpl.h>

#include <lmt/lipschitz/bounded_module.h>

namespace lmt::lipschitz {

// (x - mean_c) / std_c over the channel dim of [N, C, H, W]; bound 1 / min std. mean and std are
// constants (not in the state dict).
class InputNormalizationImpl : public BoundedModule {
 public:
  InputNormalizationImpl(std::vector<double> mean, std::vector<double> std);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  std::vector<double> mean, std;
};
TORCH_MODULE(InputNormalization);

// max(x, 0); bound 1.
class ReLUImpl : public BoundedModule {
 public:
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
};
TORCH_MODULE(ReLU);

// log(1 + exp(x)); bound 1 (its slope is the logistic function, in (0, 1)).
class SoftplusImpl : public BoundedModule {
 public:
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
};
TORCH_MODULE(Softplus);

// GroupSort-2 over adjacent channel pairs (2i, 2i+1) of dim 1 -> (min, max); bound 1.
class MinMaxImpl : public BoundedModule {
 public:
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
};
TORCH_MODULE(MinMax);

// Square max pooling; bound max_pool_bound(k, k, s, s).
class MaxPool2dImpl : public BoundedModule {
 public:
  MaxPool2dImpl(int64_t kernel, int64_t stride, int64_t padding = 0);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  int64_t kernel, stride, padding;
};
TORCH_MODULE(MaxPool2d);

// Square average pooling (zero padding counted in the average); bound avg_pool_bound(k, k, s, s).
class AvgPool2dImpl : public BoundedModule {
 public:
  AvgPool2dImpl(int64_t kernel, int64_t stride, int64_t padding = 0);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  int64_t kernel, stride, padding;
};
TORCH_MODULE(AvgPool2d);

// Mean over the H x W positions of [N, C, H, W] -> [N, C]; bound 1/sqrt(H W). The input size is
// fixed (BoundError on another size).
class GlobalAvgPoolImpl : public BoundedModule {
 public:
  GlobalAvgPoolImpl(int64_t height, int64_t width);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  int64_t height, width;
};
TORCH_MODULE(GlobalAvgPool);

// [N, ...] -> [N, prod(...)]; bound 1.
class FlattenImpl : public BoundedModule {
 public:
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
};
TORCH_MODULE(Flatten);

// Inverted dropout while training, identity at eval; bound 1 (never scaled by a keep probability;
// the certificate is for the eval-mode network).
class DropoutImpl : public BoundedModule {
 public:
  explicit DropoutImpl(double p = 0.5);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  double p;
};
TORCH_MODULE(Dropout);

// Drop-path (stochastic depth) of a residual branch: while training, each sample of [N, ...] is
// zeroed with probability p and the others scaled by 1/(1 - p); identity at eval. Bound 1 (never
// scaled by a keep probability, like Dropout).
class DropPathImpl : public BoundedModule {
 public:
  explicit DropPathImpl(double p);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  double p;
};
TORCH_MODULE(DropPath);

// ShiftViT / LipShiFT shift of [N, C, H, W]: with g = C / n_div, channel groups 0..3 move one
// pixel left, right, up, down (zero fill), the rest stays; bound 1.
class ShiftImpl : public BoundedModule {
 public:
  explicit ShiftImpl(int64_t n_div = 12);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  int64_t n_div;
};
TORCH_MODULE(Shift);

// CenterNorm (LipsFormer, LipShiFT): y = gamma * (x - mean_C(x)) * C/(C-1) + beta, the mean taken
// over the C channels of dimension `dim` (1 for [N, C, H, W], -1 for tokens [N, T, C]).
// Parameters `weight` (gamma, ones) and `bias` (beta, zeros) of size C; bound C/(C-1) max|gamma|.
class CenterNormImpl : public BoundedModule {
 public:
  explicit CenterNormImpl(int64_t channels, int64_t dim = 1);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  int64_t channels, dim;
  at::Tensor weight, bias;
};
TORCH_MODULE(CenterNorm);

// y_c = v_c x_c over the C channels of dim 1 (LipShiFT's learned per-channel scales). Parameter
// `weight` (v, the given initial values); bound max_c |v_c| (max_abs_bound).
class ChannelScaleImpl : public BoundedModule {
 public:
  explicit ChannelScaleImpl(at::Tensor initial);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  at::Tensor weight;
};
TORCH_MODULE(ChannelScale);

// A BatchNorm2d that does not directly follow a conv (after a residual sum, as in a pre-activation
// block), bounded by the rule max_c |gamma_c| / sqrt(running_var_c + eps) (batch_norm_bound, eval
// statistics). After a conv, ConvBatchNorm2d (compose.h) folds it into the conv instead. bn must
// track running statistics. Registered as "bn".
class BoundedBatchNorm2dImpl : public BoundedModule {
 public:
  explicit BoundedBatchNorm2dImpl(torch::nn::BatchNorm2d bn);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  torch::nn::BatchNorm2d bn;
};
TORCH_MODULE(BoundedBatchNorm2d);

// Batch centring ("mean-only batch norm", Salimans & Kingma 2016; the BatchCentering of
// Trockman & Kolter 2021 and later Lipschitz networks): y = x - mean + beta per channel of an
// [N, C, H, W] input, the mean over (N, H, W) of the batch while training (tracked in
// `running_mean` with `momentum`, as BatchNorm2d does) and `running_mean` in eval. A shift only:
// bound exactly 1 in either mode, so a network using it keeps its scale under the LMT loss
// (a BatchNorm2d divides by a data-dependent std, which the loss cannot shrink). Parameter
// `bias` (beta, zeros); buffer `running_mean` (zeros).
class BatchCentering2dImpl : public BoundedModule {
 public:
  explicit BatchCentering2dImpl(int64_t channels, double momentum = 0.1);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor lipschitz_bound(BoundMode mode) override;
  int64_t channels;
  double momentum;
  at::Tensor bias, running_mean;
};
TORCH_MODULE(BatchCentering2d);

}  // namespace lmt::lipschitz
