#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Weibull(scale lambda, concentration k) on (0, inf): density
/// (k / lambda) (x / lambda)^(k-1) exp(-(x / lambda)^k). Reparameterised:
/// x = lambda e^(1/k), e a standard exponential draw. Mean
/// lambda Gamma(1 + 1/k), variance lambda^2 (Gamma(1 + 2/k) - Gamma(1 + 1/k)^2).
class Weibull : public DistributionBase<Weibull> {
 public:
  Weibull(Arg scale, Arg concentration);
  std::string_view type_name() const override { return "Weibull"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& scale() const { return param(0); }
  const torch::Tensor& concentration() const { return param(1); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"scale", 0}, {"concentration", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
