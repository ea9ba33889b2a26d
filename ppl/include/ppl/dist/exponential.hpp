#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Exponential(rate) on [0, inf): density rate exp(-rate x); rate positive.
/// Reparameterised: x = e / rate with e a standard exponential draw (ATen's).
class Exponential : public DistributionBase<Exponential> {
 public:
  explicit Exponential(Arg rate);
  std::string_view type_name() const override { return "Exponential"; }
  bool has_rsample() const override { return true; }
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
