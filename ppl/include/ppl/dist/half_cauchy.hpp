#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// HalfCauchy(scale) on [0, inf): |y| for y ~ Cauchy(0, scale), density
/// 2 / (pi scale (1 + (x / scale)^2)). Reparameterised by the inverse CDF,
/// x = scale tan(pi u / 2). No finite mean or variance (they throw).
class HalfCauchy : public DistributionBase<HalfCauchy> {
 public:
  explicit HalfCauchy(Arg scale);
  std::string_view type_name() const override { return "HalfCauchy"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  const torch::Tensor& scale() const { return param(0); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"scale", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
