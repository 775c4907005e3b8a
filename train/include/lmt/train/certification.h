// lmt::train: certification of a model over a dataset split, data-parallel: per-point certified
// l2 radii from a SOUND Lipschitz bound, gathered into one summary on every rank.
#pragma once

#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <lmt/data/loader.h>
#include <lmt/dist/communicator.h>
#include <lmt/lipschitz/certify.h>
#include <lmt/models/model.h>
#include <lmt/train/evaluate.h>

namespace lmt::train {

struct CertifyOptions {
  TORCH_ARG(std::vector<double>, eps) = {0.1, 0.3, 1.0, 1.58};
  // "global": margin / (sqrt2 L); "pairwise": min_i margin_i / (L_h |w_t - w_i|) (needs a linear
  // head); "best": the larger of the two per point (both are sound, so is their max).
  TORCH_ARG(std::string, head) = "best";
  // Named in the one-line error when the sound bound cannot be computed (the model file).
  TORCH_ARG(std::string, model_source) = "model";
  // The tight conv bounds tried besides the circulant one (circulant_only(): the old bound).
  TORCH_ARG(lipschitz::SoundBoundLimits, bound_limits);
};

struct CertifyResult {
  lipschitz::CertificationSummary summary;
  double sound_bound = 0;      // the bound the radii use (kSound, float64)
  double estimate_bound = 0;   // converged power iteration (kEstimate): a lower estimate
  std::string head;            // the radius rule used
  at::Tensor radii;            // [N] float64, indexed like the dataset (0 where misclassified)
  at::Tensor correct;          // [N] bool
  // Every spectral operator's sound bound with its exact norm or estimate, in registration
  // order (lmt certify's per-layer table), and the time the bounds took.
  std::vector<std::pair<std::string, lipschitz::SoundBound>> layers;
  double bound_seconds = 0;
};

// Throws TrainError when the model has no finite bound (ViT, HE head), the head rule does not
// apply, or the sound bound fails or is not finite ("SOURCE: ..." on one line). `loader` must be an evaluation loader (no shuffle, no drop_last).
// `visit` sees each batch of this rank's shard and its logits (progress displays).
CertifyResult certify(models::Model& model, data::Loader& loader, dist::Communicator* comm,
                      const CertifyOptions& options, const BatchVisitor& visit = nullptr);

}  // namespace lmt::train
