#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// The matrix of a MultivariateNormal: exactly one of the three, each
/// [..., D, D] (batch dimensions broadcast with loc's).
struct MultivariateNormalScale {
  torch::Tensor scale_tril{};  ///< lower-triangular L with a positive diagonal, covariance L L^T
  torch::Tensor covariance{};  ///< symmetric positive definite
  torch::Tensor precision{};   ///< symmetric positive definite, the inverse covariance
};

/// MultivariateNormal(loc, {.scale_tril = L} | {.covariance = S} |
/// {.precision = P}) over R^D: density
/// exp(-|L^-1 (x - loc)|^2 / 2) / ((2 pi)^(D/2) det L), with loc [..., D]. The
/// event shape is [D]. The matrix given is the parameter (JSON keeps it);
/// the others are derived (Cholesky factors) on use. Reparameterised:
/// x = loc + L eps. Mean loc, variance the diagonal of the covariance.
/// Throws ArgumentError unless exactly one matrix is given; a matrix that is
/// not positive definite is a parameter-check error naming it.
class MultivariateNormal : public DistributionBase<MultivariateNormal> {
 public:
  MultivariateNormal(Arg loc, MultivariateNormalScale scale);
  std::string_view type_name() const override { return "MultivariateNormal"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& loc() const { return param(0); }
  /// Lower Cholesky factor of the covariance [..., D, D].
  torch::Tensor scale_tril() const;
  torch::Tensor covariance() const;
  torch::Tensor precision() const;
  int64_t dim() const { return param(0).size(-1); }
  /// "scale_tril", "covariance" or "precision": the matrix given.
  const char* given() const { return given_; }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"loc", 1}, {given_, 2}}; }
  std::vector<int64_t> base_event_shape() const override { return {dim()}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;

 private:
  const char* given_ = "scale_tril";
};

}  // namespace ppl::dist
