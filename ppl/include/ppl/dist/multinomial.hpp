#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Multinomial(total_count n, probs | logits) over count vectors [..., K]
/// summing to n: probability n! / prod_k x_k! prod_k p_k^x_k, with the
/// category weights as Categorical's (normalised on use). Sampled by a chain
/// of binomials (ATen's); not reparameterised. Mean n p, variance
/// n p (1 - p).
class Multinomial : public DistributionBase<Multinomial> {
 public:
  Multinomial(int64_t total_count, Arg probs) : Multinomial(total_count, Probs{std::move(probs)}) {}
  Multinomial(int64_t total_count, Probs p);
  Multinomial(int64_t total_count, Logits l);
  std::string_view type_name() const override { return "Multinomial"; }
  bool has_rsample() const override { return false; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  int64_t total_count() const { return total_count_; }
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
  void options_to_json(nlohmann::json& j) const override;

 private:
  int64_t total_count_ = 1;
  bool logits_ = false;
};

}  // namespace ppl::dist
