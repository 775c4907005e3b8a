// Test helpers for lmt::lipschitz: explicit Jacobians (autograd, float64) and their spectral norm,
// the independent references every bound is checked against.
#pragma once

#include <functional>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

namespace lmt::lipschitz::testing {

using Fn = std::function<at::Tensor(const at::Tensor&)>;

// d fn / d x at x (float64), as a [numel(fn(x)), numel(x)] matrix, one backward pass per output.
inline at::Tensor jacobian(const Fn& fn, const at::Tensor& x0) {
  at::Tensor x = x0.detach().to(at::kDouble).clone().set_requires_grad(true);
  at::Tensor y = fn(x).reshape({-1});
  at::Tensor jac = at::zeros({y.numel(), x.numel()}, at::kDouble);
  for (int64_t i = 0; i < y.numel(); ++i) {
    auto g = torch::autograd::grad({y[i]}, {x}, {}, /*retain_graph=*/true, false,
                                   /*allow_unused=*/true);
    if (g[0].defined()) jac[i].copy_(g[0].reshape({-1}));
  }
  return jac;
}

// The explicit matrix of a linear map: columns fn(e_i) - fn(0) for the basis of x's shape.
inline at::Tensor linear_map_matrix(const Fn& fn, at::IntArrayRef input_shape) {
  at::NoGradGuard no_grad;
  int64_t n = 1;
  for (auto s : input_shape) n *= s;
  std::vector<int64_t> batch_shape{n};
  for (size_t i = 1; i < input_shape.size(); ++i) batch_shape.push_back(input_shape[i]);
  // input_shape[0] must be 1: the basis becomes a batch of n inputs.
  at::Tensor basis = at::eye(n, at::kDouble).reshape(batch_shape);
  at::Tensor zero = at::zeros(input_shape, at::kDouble);
  at::Tensor cols = (fn(basis) - fn(zero)).reshape({n, -1});
  return cols.t();
}

inline double spectral_norm(const at::Tensor& matrix) {
  return at::linalg_svdvals(matrix.to(at::kDouble)).max().item<double>();
}

inline double value(const at::Tensor& scalar) { return scalar.to(at::kDouble).item<double>(); }

}  // namespace lmt::lipschitz::testing
