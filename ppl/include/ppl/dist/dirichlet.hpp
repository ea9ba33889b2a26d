#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Dirichlet(concentration alpha [..., K]) on the simplex in R^K: density
/// Gamma(sum alpha) / prod Gamma(alpha_k) prod x_k^(alpha_k - 1) (on the
/// first K - 1 coordinates); alpha positive. The event shape is [K].
/// Reparameterised through K standard-gamma draws (ATen's gamma gradient):
/// x = g / sum g. Mean alpha / alpha_0, variance
/// alpha (alpha_0 - alpha) / (alpha_0^2 (alpha_0 + 1)), alpha_0 = sum alpha.
class Dirichlet : public DistributionBase<Dirichlet> {
 public:
  explicit Dirichlet(Arg concentration);
  std::string_view type_name() const override { return "Dirichlet"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& concentration() const { return param(0); }
  int64_t num_categories() const { return param(0).size(-1); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"concentration", 1}}; }
  std::vector<int64_t> base_event_shape() const override { return {num_categories()}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
