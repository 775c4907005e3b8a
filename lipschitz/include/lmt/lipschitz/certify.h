// lmt::lipschitz: certificates from a Lipschitz bound (docs/methods.md#certificates): per-point
// certified radii (global and pairwise "lmt-fc") and the summary a certification run reports.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include <ATen/ATen.h>

#include <lmt/lipschitz/bounded_module.h>

namespace lmt::lipschitz {

// r = max(0, F_t - max_{i != t} F_i) / (sqrt(2) L), float64 [N]; 0 where the point is
// misclassified (or tied). L must be a sound bound (BoundMode::kSound) for a true certificate.
at::Tensor certified_radius(const at::Tensor& logits, const at::Tensor& labels,
                            const at::Tensor& lipschitz_bound);

// r = max(0, min_{i != t} (F_t - F_i) / (L_h ||w_t - w_i||)), float64 [N], with L_h =
// head.body_bound and W = head.head_weight (computed in float64).
at::Tensor certified_radius_pairwise(const at::Tensor& logits, const at::Tensor& labels,
                                     const HeadSplit& head);

struct CertificationSummary {
  int64_t n = 0;
  double clean_accuracy = 0;
  std::vector<double> eps;                 // the radii asked for
  std::vector<double> certified_accuracy;  // fraction correct AND radius >= eps, per eps
  double median_radius = 0;                // over all points, misclassified count as 0
  double bound = std::numeric_limits<double>::quiet_NaN();  // the L used (caller's)
};

// radii [N], correct [N] (bool or 0/1). The median is the usual one (mean of the two middle
// values for even N).
CertificationSummary summarize(const at::Tensor& radii, const at::Tensor& correct,
                               const std::vector<double>& eps,
                               double bound = std::numeric_limits<double>::quiet_NaN());

}  // namespace lmt::lipschitz
