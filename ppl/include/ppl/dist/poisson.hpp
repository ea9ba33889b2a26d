#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Poisson(rate) on {0, 1, 2, ...}: probability rate^k exp(-rate) / k!;
/// rate nonnegative. Sampled by ATen's poisson; not reparameterised.
class Poisson : public DistributionBase<Poisson> {
 public:
  explicit Poisson(Arg rate);
  std::string_view type_name() const override { return "Poisson"; }
  bool has_rsample() const override { return false; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& rate() const { return param(0); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"rate", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
