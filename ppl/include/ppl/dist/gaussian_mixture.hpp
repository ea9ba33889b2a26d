#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// A mixture of K multivariate normals over R^D (torch's
/// MixtureSameFamily(Categorical, MultivariateNormal)):
///
///   p(x) = sum_k w_k N(x; loc_k, L_k L_k^T),
///
/// with mixture weights w given as probs (nonnegative, normalised on use) or
/// logits [..., K], means `loc` [..., K, D] and lower-triangular Cholesky
/// factors `scale_tril` [..., K, D, D] with positive diagonals. The base draw
/// is a D-vector: values have shape batch + [D] and `log_prob` returns the
/// batch shape. Reparameterised (rsample = loc + L eps) only when K = 1; with
/// more components the component choice is discrete, and `rsample` throws.
class GaussianMixture : public DistributionBase<GaussianMixture> {
 public:
  GaussianMixture(Logits mixture, Arg loc, Arg scale_tril);
  GaussianMixture(Probs mixture, Arg loc, Arg scale_tril);
  std::string_view type_name() const override { return "GaussianMixture"; }
  bool has_rsample() const override { return num_components() == 1; }
  Constraint support() const override;
  std::vector<int64_t> base_event_shape() const override { return {param(1).size(-1)}; }
  /// sum_k w_k loc_k, [..., D].
  torch::Tensor mean() const override;
  /// The diagonal of the covariance, sum_k w_k (diag(L_k L_k^T) + loc_k^2) - mean^2.
  torch::Tensor variance() const override;

  /// Normalised log mixture weights [..., K].
  torch::Tensor mixture_logits() const;
  /// Normalised mixture weights [..., K].
  torch::Tensor mixture_probs() const;
  const torch::Tensor& loc() const { return param(1); }
  const torch::Tensor& scale_tril() const { return param(2); }
  int64_t num_components() const { return param(0).size(-1); }
  int64_t dim() const { return param(1).size(-1); }
  bool given_logits() const { return logits_; }

 protected:
  std::vector<ParamSpec> param_specs() const override {
    return {{logits_ ? "logits" : "probs", 1}, {"loc", 2}, {"scale_tril", 3}};
  }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;

 private:
  void init(Arg mixture, Arg loc, Arg scale_tril);
  bool logits_ = false;
};

}  // namespace ppl::dist
