#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Normal(loc, scale): density exp(-(x - loc)^2 / (2 scale^2)) / (scale sqrt(2 pi)).
/// `scale` is the standard deviation and must be positive; `loc` finite.
/// Reparameterised: x = loc + scale * eps, eps ~ N(0, 1).
class Normal : public DistributionBase<Normal> {
 public:
  Normal(Arg loc, Arg scale);
  std::string_view type_name() const override { return "Normal"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& loc() const { return param(0); }
  const torch::Tensor& scale() const { return param(1); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"loc", 0}, {"scale", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
