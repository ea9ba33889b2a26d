#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Delta(v, log_density): a point mass at `v`. log_prob is `log_density` at v
/// and -inf elsewhere. `rsample` returns v itself, so gradients flow to v.
class Delta : public DistributionBase<Delta> {
 public:
  explicit Delta(Arg v, Arg log_density = 0.0);
  std::string_view type_name() const override { return "Delta"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& v() const { return param(0); }
  const torch::Tensor& log_density_value() const { return param(1); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"v", 0}, {"log_density", 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
