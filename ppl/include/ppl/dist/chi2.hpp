#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Chi2(df) on (0, inf): Gamma(df / 2, rate 1/2), density
/// x^(df/2-1) exp(-x/2) / (2^(df/2) Gamma(df/2)). Reparameterised: x = 2 g,
/// g ~ Gamma(df / 2, 1) (ATen's gamma gradient).
class Chi2 : public DistributionBase<Chi2> {
 public:
  explicit Chi2(Arg df);
  std::string_view type_name() const override { return "Chi2"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& df() const { return param(0); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"df", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
