#pragma once
#include <ppl/infer/autoguide/auto_continuous.hpp>

namespace ppl::infer {

/// A full-covariance Normal over every latent site's unconstrained
/// coordinates (Pyro's AutoMultivariateNormal): u ~ MultivariateNormal(loc,
/// scale_tril), parameters "<prefix>.loc" [D] and "<prefix>.scale_tril"
/// [D, D] (lower Cholesky, at init_scale times the identity).
class AutoMultivariateNormalCore : public AutoContinuous {
 public:
  explicit AutoMultivariateNormalCore(AutoGuideOptions options = {});

 protected:
  std::shared_ptr<dist::Distribution> latent_distribution() const override;
  std::pair<torch::Tensor, torch::Tensor> marginals() const override;
};

/// `ppl::infer::AutoMultivariateNormal guide(model);`
template <class Model>
class AutoMultivariateNormal : public detail::ModelGuide<AutoMultivariateNormalCore, Model> {
  using detail::ModelGuide<AutoMultivariateNormalCore, Model>::ModelGuide;
};
template <class Model>
AutoMultivariateNormal(Model) -> AutoMultivariateNormal<Model>;
template <class Model>
AutoMultivariateNormal(Model, AutoGuideOptions) -> AutoMultivariateNormal<Model>;

}  // namespace ppl::infer
