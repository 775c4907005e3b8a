// lmt::train: batch augmentations applied by the objectives to float images in [0,1]: MixUp,
// CutMix (label-mixing), a reduced RandAugment and random erasing. All off by default (TrainOptions).
#pragma once

#include <ATen/ATen.h>

#include <lmt/train/options.h>

namespace lmt::train {

// A batch whose targets are lambda * onehot(labels_a) + (1 - lambda) * onehot(labels_b).
struct MixedBatch {
  at::Tensor images, labels_a, labels_b;
  double lambda = 1.0;
};

// MixUp (Zhang et al. 2018): lambda ~ Beta(a, a), x = lambda x + (1 - lambda) x[perm].
// CutMix (Yun et al. 2019): a box of area fraction (1 - lambda) is pasted from x[perm]; lambda
// is corrected to the pasted area. When both alphas are > 0 one of the two is drawn per batch
// with probability 1/2. Both 0: the batch unchanged with lambda 1.
MixedBatch mix_batch(const at::Tensor& images, const at::Tensor& labels, double mixup_alpha,
                     double cutmix_alpha, at::Generator& gen);

// RandAugment (Cubuk et al. 2020), reduced op set: identity, autocontrast, brightness, contrast,
// solarize, posterize, rotate, shear-x, shear-y, translate-x, translate-y. Each image gets `ops`
// ops drawn uniformly, at magnitude `magnitude` of 30 (random sign for the signed ops).
at::Tensor rand_augment(const at::Tensor& images, int64_t ops, int64_t magnitude,
                        at::Generator& gen);

// Random erasing (Zhong et al. 2020): with probability p per image, a box of 2-33% of the area
// and aspect ratio in [0.3, 3.3] is filled with uniform noise.
at::Tensor random_erasing(const at::Tensor& images, double p, at::Generator& gen);

// The label-preserving augmentations (RandAugment, then random erasing) configured in `options`.
at::Tensor augment_images(const at::Tensor& images, const TrainOptions& options,
                          at::Generator& gen);

}  // namespace lmt::train
