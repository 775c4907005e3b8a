// lmt::lipschitz: BoundedConv2d, a 2-D convolution on a fixed input size (optionally folded with
// the batch-norm after it); power iteration via the conv and its adjoint (convolution_backward),
// sound bound via FFT and, where affordable, the explicit matrix (conv_exact.cpp).
#include <chrono>
#include <cmath>

#include <lmt/lipschitz/layers.h>

#include "conv_exact.h"
#include "spectral.h"

namespace lmt::lipschitz {

namespace {
std::string conv_name(const BoundedConv2dOptions& o) {
  return "BoundedConv2d(" + std::to_string(o.in_channels()) + "->" +
         std::to_string(o.out_channels()) + ", k=" + std::to_string(o.kernel_size()) +
         ", s=" + std::to_string(o.stride()) + ", p=" + std::to_string(o.padding()) +
         ", g=" + std::to_string(o.groups()) +
         (o.residual_scale() > 0 ? ", residual " + std::to_string(o.residual_scale()) : "") +
         ", input " + std::to_string(o.input_height()) + "x" + std::to_string(o.input_width()) +
         ")";
}

// The circulant bound of the conv with kernel w ([out, in/g, k, k], float64, BN folded) before
// the rounding allowance.
double circulant_norm(const at::Tensor& w, const BoundedConv2dOptions& o) {
  // Sedghi et al. 2019: a zero-padded stride-1 conv is a restriction of the circular conv
  // on the (H+2p) x (W+2p) grid, whose singular values are those of the per-frequency
  // matrices K^(u,v) from a 2-D FFT of the kernel. A stride s is handled exactly by the
  // polyphase form: with x_pad further zero-padded to s*M (M = ceil((H+2p)/s)), the strided
  // conv is a stride-1 conv of the s*s phase images x[c, s m + a, s n + b] (an isometric
  // rearrangement, in*s*s channels on an M grid) with the kernel w'[o, (c, a, b), i, j] =
  // w[o, c, s i + a, s j + b] (zero beyond k); wrapped terms on the M grid only meet zero
  // weights, so this is again a restriction of a circular conv. A real kernel has
  // K^(-u,-v) = conj K^(u,v): the half spectrum of rfft2 suffices.
  const int64_t g = o.groups(), k = o.kernel_size(), s = o.stride();
  const int64_t kp = (k + s - 1) / s;  // phase kernel size
  const int64_t m1 = (o.input_height() + 2 * o.padding() + s - 1) / s;
  const int64_t m2 = (o.input_width() + 2 * o.padding() + s - 1) / s;
  const int64_t out_g = o.out_channels() / g, in_g = o.in_channels() / g * s * s;
  at::Tensor phases =
      at::constant_pad_nd(w, {0, kp * s - k, 0, kp * s - k})
          .view({o.out_channels(), o.in_channels() / g, kp, s, kp, s})
          .permute({0, 1, 3, 5, 2, 4})  // [out, in/g, a, b, i, j]
          .reshape({g, out_g, in_g, kp, kp});
  at::Tensor spectrum = at::fft_rfft2(phases, c10::IntArrayRef{m1, m2}, {-2, -1});
  spectrum = spectrum.permute({0, 3, 4, 1, 2});  // [g, m1, m2/2+1, out/g, in/g * s * s]
  // sigma_max(K) = sqrt(lambda_max(K^H K)), the smaller Gram matrix; a Hermitian
  // eigensolver is several times faster than an SVD and as accurate (float64).
  const bool wide = out_g < in_g;
  double lambda = 0.0;
  for (int64_t row = 0; row < m1; ++row) {  // row by row to bound the memory
    at::Tensor k_hat = spectrum.select(1, row);
    at::Tensor gram = wide ? at::matmul(k_hat, k_hat.conj().transpose(-2, -1))
                           : at::matmul(k_hat.conj().transpose(-2, -1), k_hat);
    lambda = std::max(lambda, at::linalg_eigvalsh(gram).max().item<double>());
  }
  return std::sqrt(std::max(lambda, 0.0));
}
}  // namespace

BoundedConv2dImpl::BoundedConv2dImpl(const BoundedConv2dOptions& options_) : options(options_) {
  const auto& o = options;
  if (o.in_channels() <= 0 || o.out_channels() <= 0 || o.kernel_size() <= 0 || o.stride() <= 0 ||
      o.padding() < 0 || o.groups() <= 0) {
    throw BoundError(conv_name(o) +
                     ": channels, kernel, stride, groups must be positive and "
                     "padding non-negative");
  }
  if (o.in_channels() % o.groups() != 0 || o.out_channels() % o.groups() != 0) {
    throw BoundError(conv_name(o) + ": groups must divide in_channels and out_channels");
  }
  if (o.residual_scale() < 0 || !std::isfinite(o.residual_scale())) {
    throw BoundError(conv_name(o) + ": residual_scale must be finite and >= 0");
  }
  if (o.residual_scale() > 0 &&
      (o.in_channels() != o.out_channels() || o.stride() != 1 || o.groups() != 1 ||
       o.kernel_size() % 2 == 0 || o.padding() != o.kernel_size() / 2)) {
    throw BoundError(conv_name(o) +
                     ": a merged residual operator (residual_scale > 0) needs in == out "
                     "channels, stride 1, groups 1, an odd kernel and padding kernel/2");
  }
  if (o.input_height() + 2 * o.padding() < o.kernel_size() ||
      o.input_width() + 2 * o.padding() < o.kernel_size()) {
    throw BoundError(conv_name(o) + ": the kernel does not fit the padded input");
  }
  reset();
}

void BoundedConv2dImpl::reset() {
  const auto& o = options;
  const int64_t k = o.kernel_size();
  weight = register_parameter("weight",
                              at::empty({o.out_channels(), o.in_channels() / o.groups(), k, k}));
  if (o.bias()) {
    bias = register_parameter("bias", at::empty({o.out_channels()}));
  } else {
    bias = register_parameter("bias", at::Tensor(), /*requires_grad=*/false);
  }
  pi_u =
      register_buffer("pi_u", at::empty({1, o.in_channels(), o.input_height(), o.input_width()}));
  at::NoGradGuard no_grad;
  // torch::nn::Conv2d: kaiming_uniform(a = sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(o.in_channels() / o.groups() * k * k));
  weight.uniform_(-bound, bound);
  if (bias.defined()) bias.uniform_(-bound, bound);
  pi_u.copy_(detail::normalized(at::randn(pi_u.sizes())));
}

int64_t BoundedConv2dImpl::output_height() const {
  return (options.input_height() + 2 * options.padding() - options.kernel_size()) /
             options.stride() +
         1;
}

int64_t BoundedConv2dImpl::output_width() const {
  return (options.input_width() + 2 * options.padding() - options.kernel_size()) /
             options.stride() +
         1;
}

at::Tensor BoundedConv2dImpl::forward(const at::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != options.in_channels() || x.size(2) != options.input_height() ||
      x.size(3) != options.input_width()) {
    throw BoundError(conv_name(options) + ": expected input [N, " +
                     std::to_string(options.in_channels()) + ", " +
                     std::to_string(options.input_height()) + ", " +
                     std::to_string(options.input_width()) + "], got " + c10::str(x.sizes()));
  }
  return at::conv2d(x, operator_weight(x.scalar_type()), bias, options.stride(), options.padding(),
                    1, options.groups());
}

at::Tensor BoundedConv2dImpl::operator_weight(at::ScalarType dtype) const {
  at::Tensor w = weight.to(dtype);
  const double alpha = options.residual_scale();
  if (alpha == 0) return w;
  const int64_t c = options.in_channels(), p = options.kernel_size() / 2;
  at::Tensor identity =
      at::constant_pad_nd(at::eye(c, w.options()).view({c, c, 1, 1}), {p, p, p, p});
  return alpha * w + identity;
}

void BoundedConv2dImpl::attach_batch_norm(torch::nn::BatchNorm2d bn) {
  if (bn.is_empty()) throw BoundError(conv_name(options) + ": attach_batch_norm got an empty bn");
  if (options.residual_scale() > 0)
    throw BoundError(conv_name(options) + ": a merged residual operator takes no batch norm");
  if (bn->options.num_features() != options.out_channels()) {
    throw BoundError(conv_name(options) + ": attached BatchNorm2d has " +
                     std::to_string(bn->options.num_features()) + " features, expected " +
                     std::to_string(options.out_channels()));
  }
  if (!bn->options.track_running_stats()) {
    throw BoundError(conv_name(options) +
                     ": attached BatchNorm2d must track running statistics (the bound uses them)");
  }
  batch_norm_ = std::move(bn);
}

at::Tensor BoundedConv2dImpl::batch_norm_scale(at::ScalarType dtype) const {
  if (!has_batch_norm()) return at::Tensor();
  const auto& bn = *batch_norm_;
  at::Tensor inv_std = (bn.running_var.detach().to(dtype) + bn.options.eps()).rsqrt();
  return bn.options.affine() ? bn.weight.to(dtype) * inv_std : inv_std;
}

at::Tensor BoundedConv2dImpl::apply_operator(const at::Tensor& u) const {
  at::Tensor y = at::conv2d(u, operator_weight(u.scalar_type()), {}, options.stride(),
                            options.padding(), 1, options.groups());
  if (has_batch_norm()) y = y * batch_norm_scale(u.scalar_type()).view({1, -1, 1, 1});
  return y;
}

at::Tensor BoundedConv2dImpl::apply_adjoint(const at::Tensor& v) const {
  at::Tensor x = v;
  if (has_batch_norm()) x = x * batch_norm_scale(v.scalar_type()).view({1, -1, 1, 1});
  // A^T v is the input gradient of the conv at output gradient v: convolution_backward computes
  // exactly that map (input shape from `shape`, never read) through the optimised conv
  // backward kernels; conv_transpose2d takes a slow generic path on CPU (docs/lmt-results.md).
  const at::Tensor shape =
      at::empty({x.size(0), options.in_channels(), options.input_height(), options.input_width()},
                x.options());
  const int64_t s = options.stride(), p = options.padding();
  return std::get<0>(at::convolution_backward(
      x, shape, operator_weight(v.scalar_type()), c10::nullopt, {s, s}, {p, p}, {1, 1},
      /*transposed=*/false, {0, 0}, options.groups(), {true, false, false}));
}

void BoundedConv2dImpl::power_iteration_step(int iterations) {
  at::NoGradGuard no_grad;
  pi_u.copy_(detail::power_step(
      pi_u.to(weight.scalar_type()), [&](const at::Tensor& u) { return apply_operator(u); },
      [&](const at::Tensor& v) { return apply_adjoint(v); }, iterations));
}

at::Tensor BoundedConv2dImpl::spectral_norm(BoundMode mode) {
  switch (mode) {
    case BoundMode::kTrain:
      return apply_operator(pi_u.detach().to(weight.scalar_type())).norm();
    case BoundMode::kEstimate: {
      auto* memo = detail::active_memo();
      if (memo && memo->estimate.count(this)) return memo->estimate.at(this);
      at::Tensor sigma = detail::converged_norm(
          pi_u.to(at::kFloat), [&](const at::Tensor& u) { return apply_operator(u); },
          [&](const at::Tensor& v) { return apply_adjoint(v); });
      if (memo) memo->estimate[this] = sigma;
      return sigma;
    }
    case BoundMode::kSound: {
      // Memoised per operator under a BoundMemo (lmt certify).
      auto* memo = detail::active_memo();
      if (memo && memo->sound.count(this))
        return at::scalar_tensor(memo->sound.at(this).bound, at::kDouble);
      SoundBound b = sound_bound(memo ? memo->limits : SoundBoundLimits());
      if (memo) memo->sound[this] = b;
      return at::scalar_tensor(b.bound, at::kDouble);
    }
  }
  throw BoundError(conv_name(options) + ": unknown BoundMode");
}


at::Tensor BoundedConv2dImpl::sound_kernel() const {
  at::Tensor w = operator_weight(at::kDouble).detach();
  if (has_batch_norm()) w = w * batch_norm_scale(at::kDouble).detach().abs().view({-1, 1, 1, 1});
  return w;
}

SoundBound BoundedConv2dImpl::sound_bound() {
  auto* memo = detail::active_memo();
  SoundBound b = memo && memo->sound.count(this)
                     ? memo->sound.at(this)
                     : sound_bound(memo ? memo->limits : SoundBoundLimits());
  // The circulant path has no reference of its own: the converged estimate (from below).
  if (std::isnan(b.reference)) b.reference = spectral_norm(BoundMode::kEstimate).item<double>();
  if (memo) memo->sound[this] = b;
  return b;
}

SoundBound BoundedConv2dImpl::sound_bound(const SoundBoundLimits& limits) {
  at::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  const auto& o = options;
  // BN's row scaling |gamma_c| / sqrt(var_c + eps) is folded into the kernel: sign flips of
  // output channels are an isometry, so |.| loses nothing.
  const at::Tensor w = sound_kernel();
  const double scale = w.abs().sum().item<double>();
  SoundBound b;
  b.bound = detail::with_rounding_allowance(
                at::scalar_tensor(circulant_norm(w, o), at::kDouble), scale)
                .item<double>();
  b.method = "circulant";
  // The explicit matrix of the zero-padded operator itself, group by group (the operator is
  // block diagonal in the groups). Its entries are the kernel's, so the float64 kernel's own
  // rounding (alpha W + I, the BN product: <= u |w| per entry, so <= u sum|w| in norm) is the
  // part the allowance's 1e-12 sum|w| covers, as for the circulant bound.
  if (at::isfinite(w).all().item<bool>()) {
    const int64_t g = o.groups();
    std::vector<at::Tensor> groups;
    for (const auto& part : w.chunk(g, 0)) groups.push_back(part.contiguous());
    const detail::ConvShape shape{o.in_channels() / g, o.out_channels() / g, o.kernel_size(),
                                  o.input_height(), o.input_width(), o.stride(), o.padding()};
    const auto tight = detail::tight_conv_bound(
        groups, shape, b.bound * b.bound, {limits.exact_size(), limits.banded_flops()}, [&] {
          // float64 Lanczos from the persistent vector (near the top singular vector once
          // trained).
          return detail::lanczos_norm(
                     pi_u.detach().to(at::kDouble),
                     [&](const at::Tensor& u) { return apply_operator(u); },
                     [&](const at::Tensor& v) { return apply_adjoint(v); })
              .item<double>();
        });
    b.reference = tight.reference;
    b.exact = tight.exact;
    if (tight.bound_sq >= 0) {
      const double bound = detail::with_rounding_allowance(
                               at::scalar_tensor(std::sqrt(tight.bound_sq), at::kDouble), scale)
                               .item<double>();
      if (bound < b.bound) {
        b.bound = bound;
        b.method = tight.method;
      }
    }
  }
  b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return b;
}

}  // namespace lmt::lipschitz
