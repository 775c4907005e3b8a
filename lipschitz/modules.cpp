// lmt::lipschitz: the plain BoundedModules (input normalisation, activations, pooling, flatten,
// dropout, drop-path, shift, CenterNorm, channel scales, batch centring, batch norm): their forward
// and the rule from rules.h.
#include <lmt/lipschitz/modules.h>
#include <lmt/lipschitz/rules.h>

namespace lmt::lipschitz {

namespace {
void require_4d(const at::Tensor& x, const char* who) {
  if (x.dim() != 4) {
    throw BoundError(std::string(who) + ": expected an [N, C, H, W] input, got " +
                     c10::str(x.sizes()));
  }
}
}  // namespace

InputNormalizationImpl::InputNormalizationImpl(std::vector<double> mean_, std::vector<double> std_)
    : mean(std::move(mean_)), std(std::move(std_)) {
  if (mean.empty() || mean.size() != std.size()) {
    throw BoundError("InputNormalization: mean and std need the same non-zero length, got " +
                     std::to_string(mean.size()) + " and " + std::to_string(std.size()));
  }
  input_normalization_bound(std);  // validates std > 0
}

at::Tensor InputNormalizationImpl::forward(const at::Tensor& x) {
  const int64_t c = static_cast<int64_t>(mean.size());
  if (x.dim() < 2 || x.size(1) != c) {
    throw BoundError("InputNormalization: expected " + std::to_string(c) +
                     " channels in dim 1, got " + c10::str(x.sizes()));
  }
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = c;
  auto opts = x.options();
  at::Tensor m = at::tensor(mean, opts.dtype(at::kDouble)).to(opts).view(shape);
  at::Tensor s = at::tensor(std, opts.dtype(at::kDouble)).to(opts).view(shape);
  return (x - m) / s;
}

at::Tensor InputNormalizationImpl::lipschitz_bound(BoundMode mode) {
  return constant_bound(input_normalization_bound(std), mode);
}

at::Tensor ReLUImpl::forward(const at::Tensor& x) { return at::relu(x); }
at::Tensor ReLUImpl::lipschitz_bound(BoundMode mode) { return constant_bound(1.0, mode); }

at::Tensor SoftplusImpl::forward(const at::Tensor& x) { return at::softplus(x); }
at::Tensor SoftplusImpl::lipschitz_bound(BoundMode mode) { return constant_bound(1.0, mode); }

at::Tensor MinMaxImpl::forward(const at::Tensor& x) {
  if (x.dim() < 2 || x.size(1) % 2 != 0) {
    throw BoundError("MinMax: needs an even channel count in dim 1, got " + c10::str(x.sizes()));
  }
  at::Tensor pairs = x.unflatten(1, {x.size(1) / 2, 2});
  at::Tensor a = pairs.select(2, 0), b = pairs.select(2, 1);
  return at::stack({at::minimum(a, b), at::maximum(a, b)}, 2).flatten(1, 2);
}
at::Tensor MinMaxImpl::lipschitz_bound(BoundMode mode) { return constant_bound(1.0, mode); }

MaxPool2dImpl::MaxPool2dImpl(int64_t kernel_, int64_t stride_, int64_t padding_)
    : kernel(kernel_), stride(stride_), padding(padding_) {
  max_pool_bound(kernel, kernel, stride, stride);  // validates
}
at::Tensor MaxPool2dImpl::forward(const at::Tensor& x) {
  return at::max_pool2d(x, kernel, stride, padding);
}
at::Tensor MaxPool2dImpl::lipschitz_bound(BoundMode mode) {
  return constant_bound(max_pool_bound(kernel, kernel, stride, stride), mode);
}

AvgPool2dImpl::AvgPool2dImpl(int64_t kernel_, int64_t stride_, int64_t padding_)
    : kernel(kernel_), stride(stride_), padding(padding_) {
  avg_pool_bound(kernel, kernel, stride, stride);  // validates
}
at::Tensor AvgPool2dImpl::forward(const at::Tensor& x) {
  return at::avg_pool2d(x, kernel, stride, padding, /*ceil_mode=*/false,
                        /*count_include_pad=*/true);
}
at::Tensor AvgPool2dImpl::lipschitz_bound(BoundMode mode) {
  return constant_bound(avg_pool_bound(kernel, kernel, stride, stride), mode);
}

GlobalAvgPoolImpl::GlobalAvgPoolImpl(int64_t height_, int64_t width_)
    : height(height_), width(width_) {
  global_avg_pool_bound(height * width);  // validates
}
at::Tensor GlobalAvgPoolImpl::forward(const at::Tensor& x) {
  require_4d(x, "GlobalAvgPool");
  if (x.size(2) != height || x.size(3) != width) {
    throw BoundError("GlobalAvgPool: configured for " + std::to_string(height) + "x" +
                     std::to_string(width) + " inputs, got " + c10::str(x.sizes()));
  }
  return x.mean({2, 3});
}
at::Tensor GlobalAvgPoolImpl::lipschitz_bound(BoundMode mode) {
  return constant_bound(global_avg_pool_bound(height * width), mode);
}

at::Tensor FlattenImpl::forward(const at::Tensor& x) { return x.flatten(1); }
at::Tensor FlattenImpl::lipschitz_bound(BoundMode mode) { return constant_bound(1.0, mode); }

DropoutImpl::DropoutImpl(double p_) : p(p_) {
  if (!(p >= 0.0 && p < 1.0)) {
    throw BoundError("Dropout: p must be in [0, 1), got " + std::to_string(p));
  }
}
at::Tensor DropoutImpl::forward(const at::Tensor& x) { return at::dropout(x, p, is_training()); }
at::Tensor DropoutImpl::lipschitz_bound(BoundMode mode) { return constant_bound(1.0, mode); }

DropPathImpl::DropPathImpl(double p_) : p(p_) {
  if (!(p >= 0.0 && p < 1.0)) {
    throw BoundError("DropPath: p must be in [0, 1), got " + std::to_string(p));
  }
}
at::Tensor DropPathImpl::forward(const at::Tensor& x) {
  if (!is_training() || p == 0) return x;
  const double keep = 1.0 - p;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  return x * at::bernoulli(at::full(shape, keep, x.options())) / keep;
}
at::Tensor DropPathImpl::lipschitz_bound(BoundMode mode) { return constant_bound(1.0, mode); }

ShiftImpl::ShiftImpl(int64_t n_div_) : n_div(n_div_) {
  if (n_div < 4) throw BoundError("Shift: n_div must be >= 4, got " + std::to_string(n_div));
}
at::Tensor ShiftImpl::forward(const at::Tensor& x) {
  require_4d(x, "Shift");
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3), g = c / n_div;
  if (g == 0 || h < 2 || w < 2) return x;
  auto group = [&](int64_t i) { return x.narrow(1, i * g, g); };
  // pad order is (left, right, top, bottom) of the last two dims.
  at::Tensor left = at::constant_pad_nd(group(0).narrow(3, 1, w - 1), {0, 1});
  at::Tensor right = at::constant_pad_nd(group(1).narrow(3, 0, w - 1), {1, 0});
  at::Tensor up = at::constant_pad_nd(group(2).narrow(2, 1, h - 1), {0, 0, 0, 1});
  at::Tensor down = at::constant_pad_nd(group(3).narrow(2, 0, h - 1), {0, 0, 1, 0});
  return at::cat({left, right, up, down, x.narrow(1, 4 * g, c - 4 * g)}, 1);
}
at::Tensor ShiftImpl::lipschitz_bound(BoundMode mode) { return constant_bound(1.0, mode); }

CenterNormImpl::CenterNormImpl(int64_t channels_, int64_t dim_) : channels(channels_), dim(dim_) {
  if (channels < 2) {
    throw BoundError("CenterNorm: needs at least 2 channels, got " + std::to_string(channels));
  }
  weight = register_parameter("weight", at::ones({channels}));
  bias = register_parameter("bias", at::zeros({channels}));
}
at::Tensor CenterNormImpl::forward(const at::Tensor& x) {
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  if (d < 0 || d >= x.dim() || x.size(d) != channels) {
    throw BoundError("CenterNorm: expected " + std::to_string(channels) + " channels in dim " +
                     std::to_string(dim) + ", got " + c10::str(x.sizes()));
  }
  std::vector<int64_t> shape(x.dim(), 1);
  shape[d] = channels;
  const double factor = static_cast<double>(channels) / static_cast<double>(channels - 1);
  return weight.view(shape) * (x - x.mean(d, /*keepdim=*/true)) * factor + bias.view(shape);
}
at::Tensor CenterNormImpl::lipschitz_bound(BoundMode mode) {
  return center_norm_bound(weight, channels, mode);
}

ChannelScaleImpl::ChannelScaleImpl(at::Tensor initial) {
  if (initial.dim() != 1 || initial.numel() < 1) {
    throw BoundError("ChannelScale: needs a 1-D tensor of per-channel scales, got " +
                     c10::str(initial.sizes()));
  }
  weight = register_parameter("weight", std::move(initial));
}
at::Tensor ChannelScaleImpl::forward(const at::Tensor& x) {
  if (x.dim() < 2 || x.size(1) != weight.size(0)) {
    throw BoundError("ChannelScale: expected " + std::to_string(weight.size(0)) +
                     " channels in dim 1, got " + c10::str(x.sizes()));
  }
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = weight.size(0);
  return weight.view(shape) * x;
}
at::Tensor ChannelScaleImpl::lipschitz_bound(BoundMode mode) { return max_abs_bound(weight, mode); }

BoundedBatchNorm2dImpl::BoundedBatchNorm2dImpl(torch::nn::BatchNorm2d bn_)
    : bn(register_module("bn", std::move(bn_))) {
  if (!bn->options.track_running_stats()) {
    throw BoundError("BoundedBatchNorm2d: the BatchNorm2d must track running statistics");
  }
}
at::Tensor BoundedBatchNorm2dImpl::forward(const at::Tensor& x) { return bn->forward(x); }
at::Tensor BoundedBatchNorm2dImpl::lipschitz_bound(BoundMode mode) {
  return batch_norm_bound(bn, mode);
}

BatchCentering2dImpl::BatchCentering2dImpl(int64_t channels_, double momentum_)
    : channels(channels_), momentum(momentum_) {
  if (channels < 1) {
    throw BoundError("BatchCentering2d: needs at least 1 channel, got " + std::to_string(channels));
  }
  if (!(momentum > 0 && momentum <= 1)) {
    throw BoundError("BatchCentering2d: momentum must be in (0, 1], got " +
                     std::to_string(momentum));
  }
  bias = register_parameter("bias", at::zeros({channels}));
  running_mean = register_buffer("running_mean", at::zeros({channels}));
}

at::Tensor BatchCentering2dImpl::forward(const at::Tensor& x) {
  require_4d(x, "BatchCentering2d");
  if (x.size(1) != channels) {
    throw BoundError("BatchCentering2d: expected " + std::to_string(channels) + " channels, got " +
                     c10::str(x.sizes()));
  }
  at::Tensor mean;
  if (is_training()) {
    mean = x.mean({0, 2, 3});
    at::NoGradGuard no_grad;
    running_mean.mul_(1.0 - momentum).add_(mean.detach(), momentum);
  } else {
    mean = running_mean;
  }
  return x - (mean - bias).view({1, -1, 1, 1});
}

at::Tensor BatchCentering2dImpl::lipschitz_bound(BoundMode mode) {
  return constant_bound(1.0, mode);
}

}  // namespace lmt::lipschitz
