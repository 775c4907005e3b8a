// Certification run: sound bound once, radii per batch, radii placed by dataset index and summed
// across ranks (every index belongs to exactly one rank), then the summary.
#include <lmt/train/certification.h>

#include <ATen/core/grad_mode.h>

#include <chrono>
#include <cmath>

#include <lmt/train/evaluate.h>
#include <lmt/train/options.h>

namespace lmt::train {

CertifyResult certify(models::Model& model, data::Loader& loader, dist::Communicator* comm,
                      const CertifyOptions& options, const BatchVisitor& visit) {
  if (!model.has_bound())
    throw TrainError("model '" + model.config().name +
                     "' has no finite global Lipschitz bound; certification refused (attack it "
                     "with lmt attack instead)");
  if (options.head() != "global" && options.head() != "pairwise" && options.head() != "best")
    throw TrainError("--head: expected global, pairwise or best, got '" + options.head() + "'");
  model.eval();
  at::NoGradGuard no_grad;
  CertifyResult result;
  // Iterate the estimate on copies so the model's persistent vectors are left as trained.
  // A failure in here (an SVD that does not converge: LibTorch's multi-line trace) becomes one
  // line naming the model.
  at::Tensor sound;
  lipschitz::HeadSplit head;
  try {
    // Each operator's bounds once: the model's bound, the head split and the per-layer report
    // share them.
    lipschitz::BoundMemo memo(options.bound_limits());
    const auto start = std::chrono::steady_clock::now();
    sound = model.lipschitz_bound(lipschitz::BoundMode::kSound).to(at::kDouble);
    result.sound_bound = sound.item<double>();
    result.estimate_bound = model.lipschitz_bound(lipschitz::BoundMode::kEstimate).item<double>();
    head = model.head_split(lipschitz::BoundMode::kSound);
    for (auto& named : lipschitz::spectral_operators(model))
      result.layers.emplace_back(named.name, named.op->sound_bound());
    result.bound_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw TrainError(options.model_source() + ": cannot compute the sound Lipschitz bound: " +
                     what.substr(0, what.find('\n')));
  }
  if (!std::isfinite(result.sound_bound))
    throw TrainError(options.model_source() + ": the sound Lipschitz bound is " +
                     std::to_string(result.sound_bound) + "; nothing can be certified");
  result.head = options.head();
  if (options.head() == "best") result.head = head.defined() ? "best" : "global";
  if (options.head() == "pairwise" && !head.defined())
    throw TrainError("--head pairwise: model '" + model.config().name +
                     "' does not end in a linear layer");

  // The radii on the host, where evaluate() hands its visitors the logits (--device cuda: the
  // bound was computed on the device, in float64 all the same).
  sound = sound.to(at::kCPU);
  if (head.defined()) head = {head.body_bound.to(at::kCPU), head.head_weight.to(at::kCPU)};
  const int64_t n = loader.info().size;
  at::Tensor radii = at::zeros({n}, at::kDouble), correct = at::zeros({n}, at::kDouble);
  evaluate(model, loader, nullptr, [&](const data::Batch& batch, const at::Tensor& logits) {
    at::Tensor r;
    if (result.head == "global") {
      r = lipschitz::certified_radius(logits, batch.labels, sound);
    } else if (result.head == "pairwise") {
      r = lipschitz::certified_radius_pairwise(logits, batch.labels, head);
    } else {
      r = at::maximum(lipschitz::certified_radius(logits, batch.labels, sound),
                      lipschitz::certified_radius_pairwise(logits, batch.labels, head));
    }
    radii.index_put_({batch.indices}, r.to(at::kDouble));
    correct.index_put_({batch.indices}, logits.argmax(1).eq(batch.labels).to(at::kDouble));
    if (visit) visit(batch, logits);
  });
  if (comm && comm->size() > 1) {
    comm->all_reduce(radii, dist::ReduceOp::kSum);
    comm->all_reduce(correct, dist::ReduceOp::kSum);
  }
  result.radii = radii;
  result.correct = correct.gt(0.5);
  result.summary =
      lipschitz::summarize(result.radii, result.correct, options.eps(), result.sound_bound);
  return result;
}

}  // namespace lmt::train
