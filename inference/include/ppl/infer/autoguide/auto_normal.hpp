#pragma once
#include <ppl/infer/autoguide/autoguide.hpp>

namespace ppl::infer {

/// The mean-field Normal guide in unconstrained space (Pyro's AutoNormal):
/// for each latent site, u ~ Normal(loc, scale) elementwise over the
/// unconstrained coordinates and value = biject_to(support)(u), so that
/// log q(value) carries the transform's log-determinant. Parameters
/// "<prefix>.locs.<site>" (at the prior median, or the init value) and
/// "<prefix>.scales.<site>" (positive, at init_scale), per element of the
/// site's plates.
class AutoNormalCore : public AutoGuide {
 public:
  explicit AutoNormalCore(AutoGuideOptions options = {});
  std::map<std::string, torch::Tensor> median() const override;
  std::map<std::string, torch::Tensor> quantiles(const std::vector<double>& qs) const override;
  void sample_sites() const override;
  /// The unconstrained location and scale of `site` (after the guide ran).
  std::pair<torch::Tensor, torch::Tensor> loc_scale(const std::string& site) const;
};

/// `ppl::infer::AutoNormal guide(model);` then `guide(args...)` with the
/// model's arguments (the first call traces the model).
template <class Model>
class AutoNormal : public detail::ModelGuide<AutoNormalCore, Model> {
  using detail::ModelGuide<AutoNormalCore, Model>::ModelGuide;
};
template <class Model>
AutoNormal(Model) -> AutoNormal<Model>;
template <class Model>
AutoNormal(Model, AutoGuideOptions) -> AutoNormal<Model>;

}  // namespace ppl::infer
