// PGD-AT, TRADES and the hypersphere-embedding margin as training objectives; the inner
// maximization is lmt::attack's PGD.
#include <lmt/train/adversarial_objective.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <lmt/attack/attack.h>
#include <lmt/models/heads.h>
#include <lmt/train/augment_batch.h>

namespace lmt::train {
namespace {

// Cross-entropy per point; with label smoothing e the target is (1-e) one-hot + e uniform, as
// torch.nn.functional.cross_entropy(label_smoothing=e) defines it.
at::Tensor ce_per_point(const at::Tensor& logits, const at::Tensor& labels, double smoothing = 0) {
  at::Tensor log_p = logits.log_softmax(1);
  at::Tensor nll = -log_p.gather(1, labels.unsqueeze(1)).squeeze(1);
  return smoothing > 0 ? (1 - smoothing) * nll - smoothing * log_p.mean(1) : nll;
}

// KL(p || q) per point from logits, p = softmax(clean) (a constant when detached by the caller).
at::Tensor kl_per_point(const at::Tensor& clean_logits, const at::Tensor& adv_logits) {
  at::Tensor log_p = clean_logits.log_softmax(1);
  return (log_p.exp() * (log_p - adv_logits.log_softmax(1))).sum(1);
}

class RobustObjective : public Objective {
 public:
  explicit RobustObjective(const TrainOptions& o)
      : o_(o), norm_(o.adv_norm()), gen_(at::detail::getDefaultCPUGenerator()) {}

  ObjectiveOutput compute(models::Model& model, const at::Tensor& images, const at::Tensor& labels,
                          double epoch_progress) override {
    const bool he = models::uses_hypersphere_head(model.config());
    const double s = he ? models::hypersphere_scale(model.config()) : 0.0;
    at::Tensor x = uses_augmentation(o_) ? augment_images(images, o_, gen_) : images;
    MixedBatch mb = mix_batch(x, labels, o_.mixup_alpha(), o_.cutmix_alpha(), gen_);
    // The label term: lambda-weighted CE on the (HE-margin) training logits.
    auto label_loss = [&](const at::Tensor& logits, bool with_margin) {
      auto term = [&](const at::Tensor& y) {
        at::Tensor z =
            with_margin && he ? hypersphere_margin_logits(logits, y, s, o_.he_margin()) : logits;
        // Smoothed in the training term only; the attack ascends the plain cross-entropy.
        return ce_per_point(z, y, with_margin ? o_.label_smoothing() : 0.0);
      };
      at::Tensor l = term(mb.labels_a);
      if (mb.lambda < 1.0) l = mb.lambda * l + (1.0 - mb.lambda) * term(mb.labels_b);
      return l;
    };
    const double eps = eps_at(o_.adv_eps(), o_.eps_warmup_epochs(), epoch_progress);
    const double step =
        o_.attack_step_size() > 0 ? o_.attack_step_size() : 2.5 * eps / double(o_.attack_steps());
    ObjectiveOutput out;

    if (o_.loss() == Loss::kPgdAt) {
      at::Tensor x_adv = mb.images;
      if (eps > 0) {
        attack::EvalMode eval(model);
        at::Tensor start = attack::random_start(mb.images, norm_, eps, gen_);
        x_adv = attack::pgd_maximize(
            [&](const at::Tensor& v) { return label_loss(model.forward(v), false); }, mb.images,
            start, norm_, eps, int(o_.attack_steps()), step);
      }
      out.loss = label_loss(model.forward(x_adv), true).mean();
      out.logits = clean_logits(model, mb.images);
    } else if (o_.loss() == Loss::kTrades) {
      at::Tensor x_adv = mb.images;
      if (eps > 0) {
        attack::EvalMode eval(model);
        at::Tensor p_clean;
        {
          at::NoGradGuard no_grad;
          p_clean = model.forward(mb.images);
        }
        at::Tensor start = mb.images + 0.001 * attack::host_randn(mb.images.sizes(), gen_, images.options());
        x_adv = attack::pgd_maximize(
            [&](const at::Tensor& v) { return kl_per_point(p_clean, model.forward(v)); }, mb.images,
            start, norm_, eps, int(o_.attack_steps()), step);
      }
      out.logits = model.forward(mb.images);
      at::Tensor robust = kl_per_point(out.logits, model.forward(x_adv));
      out.loss = label_loss(out.logits, true).mean() + o_.trades_beta() * robust.mean();
    } else {  // ce with the HE head and/or augmentations
      out.logits = model.forward(mb.images);
      out.loss = label_loss(out.logits, true).mean();
    }
    return out;
  }

 private:
  static at::Tensor clean_logits(models::Model& model, const at::Tensor& x) {
    attack::EvalMode eval(model);
    at::NoGradGuard no_grad;
    return model.forward(x);
  }

  TrainOptions o_;
  attack::Norm norm_;
  at::Generator gen_;
};

}  // namespace

double eps_at(double eps, double warmup_epochs, double epoch_progress) {
  if (warmup_epochs <= 0) return eps;
  return eps * std::min(1.0, std::max(0.0, epoch_progress) / warmup_epochs);
}

at::Tensor hypersphere_margin_logits(const at::Tensor& logits, const at::Tensor& labels,
                                     double scale, double margin) {
  at::Tensor onehot = at::zeros_like(logits).scatter_(1, labels.unsqueeze(1), 1.0);
  return logits - scale * margin * onehot;
}

// The rules between these options (lmt needs no augmentation, pgd-at/trades need eps > 0) are
// checked with the others in check_options (options.cpp).
std::unique_ptr<Objective> make_robust_objective(const TrainOptions& o) {
  const bool he = uses_hypersphere_head(o), augment = uses_augmentation(o);
  const bool adversarial = o.loss() == Loss::kPgdAt || o.loss() == Loss::kTrades;
  if (!adversarial && !(o.loss() == Loss::kCe && (he || augment))) return nullptr;
  return std::make_unique<RobustObjective>(o);
}

}  // namespace lmt::train
