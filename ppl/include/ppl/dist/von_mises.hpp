#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// VonMises(loc, concentration kappa) on the circle, as angles in [-pi, pi]:
/// density exp(kappa cos(x - loc)) / (2 pi I0(kappa)); kappa nonnegative
/// (0 is uniform). Sampled by the rejection sampler of Best & Fisher (1979);
/// not reparameterised. mean() is loc (the circular mean) and variance()
/// the circular variance 1 - I1(kappa) / I0(kappa).
class VonMises : public DistributionBase<VonMises> {
 public:
  VonMises(Arg loc, Arg concentration);
  std::string_view type_name() const override { return "VonMises"; }
  bool has_rsample() const override { return false; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& loc() const { return param(0); }
  const torch::Tensor& concentration() const { return param(1); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"loc", 0}, {"concentration", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
