#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// OneHotCategorical over the one-hot vectors of length K, K the size of the
/// last dimension of its parameter: probs (nonnegative, normalised on use) or
/// logits (normalised on use), as Categorical. Values are floating one-hot
/// vectors [..., K]; the event shape is [K]. Not reparameterised (see
/// RelaxedOneHotCategorical). Mean probs, variance probs (1 - probs).
class OneHotCategorical : public DistributionBase<OneHotCategorical> {
 public:
  OneHotCategorical(Arg probs) : OneHotCategorical(Probs{std::move(probs)}) {}  // NOLINT(implicit)
  explicit OneHotCategorical(Probs p);
  explicit OneHotCategorical(Logits l);
  std::string_view type_name() const override { return "OneHotCategorical"; }
  bool has_rsample() const override { return false; }
  bool has_enumerate_support() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  /// Normalised probabilities [..., K].
  torch::Tensor probs() const;
  /// Normalised log-probabilities [..., K].
  torch::Tensor logits() const;
  int64_t num_categories() const { return param(0).size(-1); }
  bool given_logits() const { return logits_; }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{logits_ ? "logits" : "probs", 1}}; }
  std::vector<int64_t> base_event_shape() const override { return {num_categories()}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
  torch::Tensor support_values() const override;

 private:
  bool logits_ = false;
};

}  // namespace ppl::dist
