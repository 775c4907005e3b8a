// Cross-entropy and LMT objectives (the margin arithmetic itself lives in lipschitz/).
#include <lmt/train/objective.h>

#include <torch/nn/functional/loss.h>

#include <lmt/lipschitz/lmt_loss.h>
#include <lmt/train/adversarial_objective.h>
#include <lmt/train/device.h>

namespace lmt::train {
namespace {

// Logits of an autocast forward pass (bf16/fp16) in fp32 for the loss; fp32 ones as they are.
at::Tensor loss_precision(const at::Tensor& logits) {
  const auto t = logits.scalar_type();
  return t == at::kBFloat16 || t == at::kHalf ? logits.to(at::kFloat) : logits;
}

class CrossEntropy : public Objective {
 public:
  explicit CrossEntropy(double label_smoothing) : label_smoothing_(label_smoothing) {}
  ObjectiveOutput compute(models::Model& model, const at::Tensor& images, const at::Tensor& labels,
                          double) override {
    ObjectiveOutput out;
    out.logits = loss_precision(model.forward(images));
    out.loss = torch::nn::functional::cross_entropy(
        out.logits, labels,
        torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing_));
    return out;
  }

 private:
  double label_smoothing_;
};

class LipschitzMargin : public Objective {
 public:
  explicit LipschitzMargin(const TrainOptions& options) : options_(options) {}
  bool needs_bound() const override { return true; }

  ObjectiveOutput compute(models::Model& model, const at::Tensor& images, const at::Tensor& labels,
                          double epoch_progress) override {
    ObjectiveOutput out;
    out.logits = loss_precision(model.forward(images));
    Fp32Scope fp32;  // the bound and the margin in fp32 under --precision bf16/fp16
    const bool emma = options_.loss() == Loss::kEmma;
    // EMMA's radius ramps like the adversarial eps (--eps-warmup), LMT's c by --lmt-c-warmup.
    const double eps = emma ? lipschitz::lmt_c_at(options_.emma_eps(), options_.eps_warmup_epochs(),
                                                  epoch_progress)
                            : 0.0;
    const double c =
        lipschitz::lmt_c_at(options_.lmt_c(), options_.lmt_c_warmup_epochs(), epoch_progress);
    if (options_.lmt_head() == LmtHead::kPairwise) {
      auto head = model.head_split(lipschitz::BoundMode::kTrain);
      if (!head.defined())
        throw TrainError("--lmt-head pairwise: model '" + model.config().name +
                         "' does not end in a linear layer");
      out.bound = head.body_bound;
      out.loss =
          emma ? lipschitz::emma_loss(
                     out.logits, labels,
                     lipschitz::pairwise_margin_lipschitz(out.logits, labels, head), eps)
               : lipschitz::lmt_pairwise_loss(out.logits, labels, head, c, options_.lmt_clip());
    } else {
      out.bound = model.lipschitz_bound(lipschitz::BoundMode::kTrain);
      out.loss = emma ? lipschitz::emma_loss(
                            out.logits, labels,
                            lipschitz::global_margin_lipschitz(out.logits, labels, out.bound), eps)
                      : lipschitz::lmt_loss(out.logits, labels, out.bound, c, options_.lmt_clip());
    }
    return out;
  }

 private:
  TrainOptions options_;
};

}  // namespace

std::unique_ptr<Objective> make_objective(const TrainOptions& options) {
  if (auto robust = make_robust_objective(options)) return robust;  // pgd-at, trades, HE, augment
  if (options.loss() == Loss::kLmt || options.loss() == Loss::kEmma)
    return std::make_unique<LipschitzMargin>(options);
  return std::make_unique<CrossEntropy>(options.label_smoothing());
}

}  // namespace lmt::train
