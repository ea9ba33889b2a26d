#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// DiscreteUniform(low, high) on the integers {low, ..., high} (both
/// included): probability 1 / (high - low + 1); low <= high, both integers.
/// Not reparameterised.
class DiscreteUniform : public DistributionBase<DiscreteUniform> {
 public:
  DiscreteUniform(Arg low, Arg high);
  std::string_view type_name() const override { return "DiscreteUniform"; }
  bool has_rsample() const override { return false; }
  bool has_enumerate_support() const override { return true; }
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
  torch::Tensor support_values() const override;
};

}  // namespace ppl::dist
