#pragma once
#include <ppl/infer/autoguide/auto_continuous.hpp>

namespace ppl::infer {

/// A low-rank-plus-diagonal Normal over every latent site's unconstrained
/// coordinates (Pyro's AutoLowRankMultivariateNormal): covariance
/// W W^T + diag(d), parameters "<prefix>.loc" [D], "<prefix>.cov_factor"
/// [D, rank] and "<prefix>.cov_diag" [D] (positive). Cost O(D rank^2)
/// instead of O(D^3).
class AutoLowRankMultivariateNormalCore : public AutoContinuous {
 public:
  /// Throws ArgumentError for rank < 1.
  explicit AutoLowRankMultivariateNormalCore(int64_t rank, AutoGuideOptions options = {});
  int64_t rank() const { return rank_; }

 protected:
  std::shared_ptr<dist::Distribution> latent_distribution() const override;
  std::pair<torch::Tensor, torch::Tensor> marginals() const override;

 private:
  int64_t rank_;
};

/// `ppl::infer::AutoLowRankMultivariateNormal guide(model, rank);`
template <class Model>
class AutoLowRankMultivariateNormal : public detail::ModelGuide<AutoLowRankMultivariateNormalCore, Model> {
  using detail::ModelGuide<AutoLowRankMultivariateNormalCore, Model>::ModelGuide;
};
template <class Model>
AutoLowRankMultivariateNormal(Model, int64_t) -> AutoLowRankMultivariateNormal<Model>;
template <class Model>
AutoLowRankMultivariateNormal(Model, int64_t, AutoGuideOptions) -> AutoLowRankMultivariateNormal<Model>;

}  // namespace ppl::infer
