// TrainOptions' schema, built from LMT_TRAIN_OPTIONS, and the rules between options.
#include <lmt/train/options.h>

#include <cstdio>

#include <lmt/models/heads.h>
#include <lmt/train/device.h>

namespace lmt::train {

const options::Schema<TrainOptions>& train_option_schema() {
  static const options::Schema<TrainOptions> schema = [] {
    using options::Spec;
    using options::kInf;
    options::Schema<TrainOptions> s;
#define LMT_TRAIN_OPTION_ENTRY(type, member, value, spec) \
  s.add<type>(                                            \
      spec, [](auto& o) -> auto& { return o.member(); });
    LMT_TRAIN_OPTIONS(LMT_TRAIN_OPTION_ENTRY)
#undef LMT_TRAIN_OPTION_ENTRY
    return s;
  }();
  return schema;
}

bool uses_augmentation(const TrainOptions& o) {
  return o.mixup_alpha() > 0 || o.cutmix_alpha() > 0 || o.randaugment_ops() > 0 ||
         o.random_erasing() > 0;
}

bool uses_hypersphere_head(const TrainOptions& o) {
  models::ModelConfig config;  // the model room's rule, on the same options
  config.options = o.model_options();
  return models::uses_hypersphere_head(config);
}

void check_options(const TrainOptions& o, int world_size) {
  try {
    train_option_schema().validate(o);
  } catch (const options::OptionError& e) {
    throw TrainError(e.what());
  }
  const at::Device device = resolve_device(o.device(), 0);  // its syntax and availability
  if (o.precision() == Precision::kFp16 && !device.is_cuda())
    throw TrainError("--precision fp16: needs a CUDA device (this run is on " + device.str() +
                     "); on CPUs use --precision bf16");
  reduces_over_nccl(o.grad_backend(), device);  // throws naming --grad-backend
  if (o.overwrite() && !o.resume().empty())
    throw TrainError("options '--resume' and '--overwrite' exclude each other");
  if (world_size > 0 && o.batch_size() % world_size != 0)
    throw TrainError("option '--batch-size' (" + std::to_string(o.batch_size()) +
                     ") must be divisible by the number of ranks (" + std::to_string(world_size) +
                     ")");
  if (world_size > 0 && o.batch_size() % (world_size * o.accum_steps()) != 0)
    throw TrainError("option '--batch-size' (" + std::to_string(o.batch_size()) +
                     ") must be divisible by the ranks times --accum-steps (" +
                     std::to_string(world_size) + " x " + std::to_string(o.accum_steps()) + ")");
  const bool he = uses_hypersphere_head(o), augment = uses_augmentation(o);
  const bool margin_loss = o.loss() == Loss::kLmt || o.loss() == Loss::kEmma;
  if (margin_loss && (he || augment))
    throw TrainError(std::string("--loss ") + options::to_string(o.loss()) + ": " +
                     (he ? "the HE head (head=he) has no Lipschitz bound"
                         : "--mixup/--cutmix/--randaugment/--random-erasing are implemented for "
                           "--loss ce, pgd-at and trades only"));
  if (o.loss() == Loss::kEmma && !(o.emma_eps() > 0))
    throw TrainError("--emma-eps: --loss emma needs eps > 0");
  if (o.label_smoothing() > 0 && margin_loss)
    throw TrainError("--label-smoothing: implemented for --loss ce, pgd-at and trades");
  if (o.ema_warmup() && !(o.ema_decay() > 0))
    throw TrainError("--ema-warmup: needs --ema-decay > 0");
  if (!o.init_from_skip().empty() && o.init_from().empty())
    throw TrainError("--init-from-skip: needs --init-from");
  if (o.keep_best().metric == KeepBest::Metric::kCertified && he)
    throw TrainError("--keep-best " + options::join(options::Codec<KeepBest>::format(
                                          o.keep_best())) +
                     ": the HE head (head=he) has no Lipschitz bound");
  trace_step_range(o);  // throws naming --trace-steps
  if ((o.loss() == Loss::kPgdAt || o.loss() == Loss::kTrades) && !(o.adv_eps() > 0))
    throw TrainError(std::string("--eps: --loss ") + options::to_string(o.loss()) +
                     " needs eps > 0");
}

std::pair<int64_t, int64_t> trace_step_range(const TrainOptions& o) {
  long long first = 0, last = 0;
  char colon = 0, extra = 0;
  if (std::sscanf(o.trace_steps().c_str(), "%lld%c%lld%c", &first, &colon, &last, &extra) != 3 ||
      colon != ':' || first < 1 || last < first)
    throw TrainError("option '--trace-steps' must be A:B with 1 <= A <= B (got '" +
                     o.trace_steps() + "')");
  return {first, last};
}

std::string run_config(const TrainOptions& options) {
  return train_option_schema().to_config(options,
                                         "lmt train: the resolved configuration of this run");
}

std::string first_run_difference(const std::string& saved_config, const TrainOptions& options) {
  return train_option_schema().first_difference(saved_config, options);
}

}  // namespace lmt::train

namespace lmt::options {

Items Codec<train::KeepBest>::format(const train::KeepBest& v) {
  switch (v.metric) {
    case train::KeepBest::Metric::kTestAccuracy:
      return {"test-accuracy"};
    case train::KeepBest::Metric::kCertified:
      return {"certified@" + format_number(v.eps)};
    default:
      return {""};
  }
}

train::KeepBest Codec<train::KeepBest>::parse(const Spec& s, const Items& items) {
  const std::string& text = single(s, items);
  train::KeepBest v;
  const std::string certified = "certified@";
  if (text == "test-accuracy") {
    v.metric = train::KeepBest::Metric::kTestAccuracy;
  } else if (text.rfind(certified, 0) == 0) {
    v.metric = train::KeepBest::Metric::kCertified;
    try {
      v.eps = parse_number(s.name, text.substr(certified.size()));
    } catch (const OptionError&) {
      invalid(s, text, "certified@EPS with a number EPS, e.g. certified@0.5 or certified@36/255");
    }
    if (!(v.eps > 0) || v.eps == kInf) invalid(s, text, "certified@EPS with 0 < EPS < inf");
  } else if (!text.empty()) {
    invalid(s, text, "test-accuracy or certified@EPS");
  }
  return v;
}

}  // namespace lmt::options
