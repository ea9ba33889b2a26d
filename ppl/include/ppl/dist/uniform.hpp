#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Uniform(low, high) on [low, high]: density 1 / (high - low); needs low < high.
/// Reparameterised: x = low + (high - low) u, u ~ U(0, 1).
class Uniform : public DistributionBase<Uniform> {
 public:
  Uniform(Arg low, Arg high);
  std::string_view type_name() const override { return "Uniform"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& low() const { return param(0); }
  const torch::Tensor& high() const { return param(1); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"low", 0}, {"high", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
