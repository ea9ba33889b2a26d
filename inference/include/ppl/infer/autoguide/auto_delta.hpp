#pragma once
#include <ppl/infer/autoguide/autoguide.hpp>

namespace ppl::infer {

/// A point estimate (Pyro's AutoDelta): each latent site is a Delta at a
/// parameter "<prefix>.<site>" constrained to the site's support, so SVI
/// maximises log p(x, z) over z: MAP estimation (in the constrained space,
/// without a Jacobian).
class AutoDeltaCore : public AutoGuide {
 public:
  explicit AutoDeltaCore(AutoGuideOptions options = {});
  /// The point estimates.
  std::map<std::string, torch::Tensor> median() const override;
  /// Every quantile is the point estimate.
  std::map<std::string, torch::Tensor> quantiles(const std::vector<double>& qs) const override;
  void sample_sites() const override;
};

/// `ppl::infer::AutoDelta guide(model);`
template <class Model>
class AutoDelta : public detail::ModelGuide<AutoDeltaCore, Model> {
  using detail::ModelGuide<AutoDeltaCore, Model>::ModelGuide;
};
template <class Model>
AutoDelta(Model) -> AutoDelta<Model>;
template <class Model>
AutoDelta(Model, AutoGuideOptions) -> AutoDelta<Model>;

}  // namespace ppl::infer
