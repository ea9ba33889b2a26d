#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Cauchy(loc, scale) on the reals: density 1 / (pi scale (1 + z^2)),
/// z = (x - loc) / scale. Reparameterised: x = loc + scale c with c a standard
/// Cauchy draw (ATen's). No mean or variance (they throw).
class Cauchy : public DistributionBase<Cauchy> {
 public:
  Cauchy(Arg loc, Arg scale);
  std::string_view type_name() const override { return "Cauchy"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  const torch::Tensor& loc() const { return param(0); }
  const torch::Tensor& scale() const { return param(1); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"loc", 0}, {"scale", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
