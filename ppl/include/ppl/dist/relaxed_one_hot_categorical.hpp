#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// RelaxedOneHotCategorical(temperature T, probs | logits, straight_through =
/// false) on the simplex in R^K: the Concrete / Gumbel-softmax relaxation of
/// OneHotCategorical (Maddison et al. 2017; Jang et al. 2017),
/// y = softmax((logits + g) / T), g standard Gumbel draws, with density (on
/// the first K - 1 coordinates)
///   (K-1)! T^(K-1) prod_k (p_k y_k^(-T-1)) / (sum_k p_k y_k^(-T))^K.
/// With `straight_through`, `rsample` returns the one-hot vector of y's
/// largest entry in the forward pass and y's gradient in the backward pass;
/// `log_prob` of that returned tensor is the density of the soft y behind it
/// (as RelaxedBernoulli).
class RelaxedOneHotCategorical : public DistributionBase<RelaxedOneHotCategorical> {
 public:
  RelaxedOneHotCategorical(Arg temperature, Probs p, bool straight_through = false);
  RelaxedOneHotCategorical(Arg temperature, Logits l, bool straight_through = false);
  RelaxedOneHotCategorical(Arg temperature, Arg probs, bool straight_through = false)
      : RelaxedOneHotCategorical(std::move(temperature), Probs{std::move(probs)}, straight_through) {}
  std::string_view type_name() const override { return "RelaxedOneHotCategorical"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  const torch::Tensor& temperature() const { return param(0); }
  /// Normalised probabilities [..., K].
  torch::Tensor probs() const;
  /// Normalised log-probabilities [..., K].
  torch::Tensor logits() const;
  int64_t num_categories() const { return param(1).size(-1); }
  bool straight_through() const { return straight_through_; }
  bool given_logits() const { return logits_; }

 protected:
  std::vector<ParamSpec> param_specs() const override {
    return {{"temperature", 0}, {logits_ ? "logits" : "probs", 1}};
  }
  std::vector<int64_t> base_event_shape() const override { return {num_categories()}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  torch::Tensor log_density_of(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
  void options_to_json(nlohmann::json& j) const override;

 private:
  bool logits_ = false;
  bool straight_through_ = false;
  // The last straight-through draw and the soft value behind it.
  mutable torch::Tensor last_hard_, last_soft_;
};

}  // namespace ppl::dist
