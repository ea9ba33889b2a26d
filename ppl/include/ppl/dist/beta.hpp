#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Beta(concentration1 = alpha, concentration0 = beta) on [0, 1]: density
/// x^(alpha-1) (1-x)^(beta-1) / B(alpha, beta); both positive.
/// Reparameterised through two standard-gamma draws (ATen's gamma gradient):
/// x = g1 / (g1 + g0).
class Beta : public DistributionBase<Beta> {
 public:
  Beta(Arg concentration1, Arg concentration0);
  std::string_view type_name() const override { return "Beta"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& concentration1() const { return param(0); }
  const torch::Tensor& concentration0() const { return param(1); }

 protected:
  std::vector<ParamSpec> param_specs() const override {
    return {{"concentration1", 0}, {"concentration0", 0}};
  }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
