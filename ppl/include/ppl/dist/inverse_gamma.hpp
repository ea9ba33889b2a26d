#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// InverseGamma(concentration a, rate b) on (0, inf): 1 / y for
/// y ~ Gamma(a, b), density b^a x^(-a-1) exp(-b / x) / Gamma(a).
/// Reparameterised: x = b / g, g ~ Gamma(a, 1) (ATen's gamma gradient).
/// Mean b / (a - 1) for a > 1, variance b^2 / ((a-1)^2 (a-2)) for a > 2
/// (inf or NaN outside).
class InverseGamma : public DistributionBase<InverseGamma> {
 public:
  InverseGamma(Arg concentration, Arg rate);
  std::string_view type_name() const override { return "InverseGamma"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& concentration() const { return param(0); }
  const torch::Tensor& rate() const { return param(1); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"concentration", 0}, {"rate", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
