// Batch augmentations on float images in [0,1] (MixUp, CutMix, reduced RandAugment, random
// erasing). Drawn from the generator passed in, so a seeded run repeats them.
#include <lmt/train/augment_batch.h>

#include <lmt/attack/attack.h>

#include <cmath>

#include <ATen/core/grad_mode.h>

namespace lmt::train {
namespace {

double uniform(at::Generator& gen, double lo = 0.0, double hi = 1.0) {
  return lo + (hi - lo) * at::rand({1}, gen, at::kDouble).item<double>();
}
int64_t uniform_int(at::Generator& gen, int64_t n) {  // [0, n)
  return at::randint(0, n, {1}, gen, at::kLong).item<int64_t>();
}
double beta_sample(double alpha, at::Generator& gen) {
  at::Tensor g = at::_standard_gamma(at::full({2}, alpha, at::kDouble), gen);
  return (g[0] / (g[0] + g[1])).item<double>();
}

// Affine warp of one image [C,H,W] with the 2x3 matrix theta (normalized coordinates), zero fill.
at::Tensor warp(const at::Tensor& img, const std::vector<double>& theta) {
  at::Tensor t = at::tensor(theta, img.options()).reshape({1, 2, 3});
  at::Tensor x = img.unsqueeze(0);
  at::Tensor grid = at::affine_grid_generator(t, x.sizes(), /*align_corners=*/false);
  return at::grid_sampler(x, grid, /*bilinear*/ 0, /*zeros*/ 0, false).squeeze(0);
}

at::Tensor apply_op(const at::Tensor& img, int64_t op, double level, at::Generator& gen) {
  const double sign = uniform(gen) < 0.5 ? -1.0 : 1.0;
  const double w = double(img.size(2)), h = double(img.size(1));
  switch (op) {
    case 0:
      return img;
    case 1: {  // autocontrast, per channel
      at::Tensor lo = img.flatten(1).amin(1).view({-1, 1, 1});
      at::Tensor hi = img.flatten(1).amax(1).view({-1, 1, 1});
      return ((img - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1);
    }
    case 2:
      return (img * (1 + sign * 0.9 * level)).clamp(0, 1);  // brightness
    case 3: {                                               // contrast
      at::Tensor mean = img.mean();
      return ((img - mean) * (1 + sign * 0.9 * level) + mean).clamp(0, 1);
    }
    case 4: {  // solarize above the threshold 1 - level
      const double threshold = 1.0 - level;
      return at::where(img >= threshold, 1.0 - img, img);
    }
    case 5: {  // posterize to 8 - 4 level bits
      const int64_t bits = 8 - int64_t(std::lround(4 * level));
      const double q = std::pow(2.0, 8 - bits);
      return (at::floor(img * 255.0 / q) * q / 255.0).clamp(0, 1);
    }
    case 6: {  // rotate by up to 30 degrees
      const double a = sign * level * 30.0 * M_PI / 180.0;
      return warp(img, {std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a), 0});
    }
    case 7:
      return warp(img, {1, sign * 0.3 * level, 0, 0, 1, 0});  // shear x
    case 8:
      return warp(img, {1, 0, 0, sign * 0.3 * level, 1, 0});  // shear y
    case 9:
      return warp(img, {1, 0, sign * 2 * 0.45 * level, 0, 1, 0});  // translate x (45%)
    default:
      return warp(img, {1, 0, 0, 0, 1, sign * 2 * 0.45 * level * h / w});  // translate y
  }
}

}  // namespace

MixedBatch mix_batch(const at::Tensor& images, const at::Tensor& labels, double mixup_alpha,
                     double cutmix_alpha, at::Generator& gen) {
  MixedBatch out{images, labels, labels, 1.0};
  const bool mixup = mixup_alpha > 0, cutmix = cutmix_alpha > 0;
  if ((!mixup && !cutmix) || images.size(0) < 2) return out;
  const bool use_cutmix = cutmix && (!mixup || uniform(gen) < 0.5);
  at::NoGradGuard no_grad;
  at::Tensor perm = at::randperm(images.size(0), gen, at::kLong);  // CPU generator: on the host
  out.labels_b = labels.index_select(0, perm.to(labels.device()));
  at::Tensor other = images.index_select(0, perm.to(images.device()));
  if (!use_cutmix) {
    out.lambda = beta_sample(mixup_alpha, gen);
    out.images = out.lambda * images + (1 - out.lambda) * other;
    return out;
  }
  const double lam = beta_sample(cutmix_alpha, gen);
  const int64_t H = images.size(2), W = images.size(3);
  const double cut = std::sqrt(1.0 - lam);
  const int64_t ch = int64_t(H * cut), cw = int64_t(W * cut);
  const int64_t cy = uniform_int(gen, H), cx = uniform_int(gen, W);
  const int64_t y0 = std::clamp<int64_t>(cy - ch / 2, 0, H),
                y1 = std::clamp<int64_t>(cy + ch / 2, 0, H);
  const int64_t x0 = std::clamp<int64_t>(cx - cw / 2, 0, W),
                x1 = std::clamp<int64_t>(cx + cw / 2, 0, W);
  using at::indexing::Slice;
  out.images = images.clone();
  out.images.index_put_({Slice(), Slice(), Slice(y0, y1), Slice(x0, x1)},
                        other.index({Slice(), Slice(), Slice(y0, y1), Slice(x0, x1)}));
  out.lambda = 1.0 - double((y1 - y0) * (x1 - x0)) / double(H * W);
  return out;
}

at::Tensor rand_augment(const at::Tensor& images, int64_t ops, int64_t magnitude,
                        at::Generator& gen) {
  if (ops <= 0) return images;
  at::NoGradGuard no_grad;
  const double level = std::clamp<double>(double(magnitude) / 30.0, 0.0, 1.0);
  std::vector<at::Tensor> out;
  for (int64_t i = 0; i < images.size(0); ++i) {
    at::Tensor img = images[i];
    for (int64_t k = 0; k < ops; ++k) img = apply_op(img, uniform_int(gen, 11), level, gen);
    out.push_back(img);
  }
  return at::stack(out).contiguous();
}

at::Tensor random_erasing(const at::Tensor& images, double p, at::Generator& gen) {
  if (p <= 0) return images;
  at::NoGradGuard no_grad;
  at::Tensor out = images.clone();
  const int64_t H = images.size(2), W = images.size(3);
  using at::indexing::Slice;
  for (int64_t i = 0; i < images.size(0); ++i) {
    if (uniform(gen) >= p) continue;
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double area = uniform(gen, 0.02, 0.33) * double(H * W);
      const double ratio = std::exp(uniform(gen, std::log(0.3), std::log(3.3)));
      const int64_t h = int64_t(std::lround(std::sqrt(area * ratio)));
      const int64_t w = int64_t(std::lround(std::sqrt(area / ratio)));
      if (h < 1 || w < 1 || h >= H || w >= W) continue;
      const int64_t y = uniform_int(gen, H - h + 1), x = uniform_int(gen, W - w + 1);
      out.index_put_({i, Slice(), Slice(y, y + h), Slice(x, x + w)},
                     attack::host_rand({images.size(1), h, w}, gen, images.options()));
      break;
    }
  }
  return out;
}

at::Tensor augment_images(const at::Tensor& images, const TrainOptions& o, at::Generator& gen) {
  at::Tensor x = rand_augment(images, o.randaugment_ops(), o.randaugment_magnitude(), gen);
  return random_erasing(x, o.random_erasing(), gen);
}

}  // namespace lmt::train
