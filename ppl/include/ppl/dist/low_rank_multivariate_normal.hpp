#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// LowRankMultivariateNormal(loc, cov_factor, cov_diag) over R^D: the normal
/// with covariance W W^T + diag(d), W = cov_factor [..., D, R] and
/// d = cov_diag [..., D] positive, loc [..., D]. The density is evaluated
/// through the R x R capacitance matrix I + W^T diag(d)^-1 W (Woodbury and the
/// matrix determinant lemma), so D may be large. Reparameterised:
/// x = loc + W e1 + sqrt(d) e2. Mean loc, variance sum_r W_ir^2 + d_i.
class LowRankMultivariateNormal : public DistributionBase<LowRankMultivariateNormal> {
 public:
  LowRankMultivariateNormal(Arg loc, Arg cov_factor, Arg cov_diag);
  std::string_view type_name() const override { return "LowRankMultivariateNormal"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& loc() const { return param(0); }
  const torch::Tensor& cov_factor() const { return param(1); }
  const torch::Tensor& cov_diag() const { return param(2); }
  /// W W^T + diag(d) [..., D, D].
  torch::Tensor covariance() const;
  int64_t dim() const { return param(0).size(-1); }
  int64_t rank() const { return param(1).size(-1); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"loc", 1}, {"cov_factor", 2}, {"cov_diag", 1}}; }
  std::vector<int64_t> base_event_shape() const override { return {dim()}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
};

}  // namespace ppl::dist
