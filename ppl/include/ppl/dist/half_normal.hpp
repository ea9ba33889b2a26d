#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// HalfNormal(scale) on [0, inf): |y| for y ~ Normal(0, scale), density
/// 2 N(x; 0, scale). Reparameterised: x = scale |eps|.
class HalfNormal : public DistributionBase<HalfNormal> {
 public:
  explicit HalfNormal(Arg scale);
  std::string_view type_name() const override { return "HalfNormal"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& scale() const { return param(0); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"scale", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
