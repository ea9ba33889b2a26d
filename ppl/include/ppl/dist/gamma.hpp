#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Gamma(concentration, rate) on (0, inf): density
/// rate^a x^(a-1) exp(-rate x) / Gamma(a); both positive (mean a / rate).
/// Reparameterised: x = g / rate with g ~ Gamma(a, 1) (ATen's gamma gradient).
class Gamma : public DistributionBase<Gamma> {
 public:
  Gamma(Arg concentration, Arg rate);
  std::string_view type_name() const override { return "Gamma"; }
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
