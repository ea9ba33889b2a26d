#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// StudentT(df, loc, scale) on the reals: density
/// Gamma((df+1)/2) / (Gamma(df/2) sqrt(df pi) scale) (1 + z^2 / df)^(-(df+1)/2),
/// z = (x - loc) / scale; df and scale positive. Reparameterised:
/// x = loc + scale eps sqrt(df / (2 g)), g ~ Gamma(df / 2, 1) (ATen's gamma
/// gradient, so df gets a gradient too). Mean loc for df > 1 (NaN otherwise);
/// variance scale^2 df / (df - 2) for df > 2 (inf for 1 < df <= 2, NaN below).
class StudentT : public DistributionBase<StudentT> {
 public:
  StudentT(Arg df, Arg loc = 0.0, Arg scale = 1.0);
  std::string_view type_name() const override { return "StudentT"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& df() const { return param(0); }
  const torch::Tensor& loc() const { return param(1); }
  const torch::Tensor& scale() const { return param(2); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"df", 0}, {"loc", 0}, {"scale", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
