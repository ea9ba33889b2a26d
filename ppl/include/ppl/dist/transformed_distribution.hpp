#pragma once
#include <ppl/dist/distribution.hpp>
#include <ppl/transforms/transform.hpp>

namespace ppl::dist {

/// TransformedDistribution(base, {t1, t2, ...}): the law of y = tn(...t1(x)),
/// x ~ base, with density
///   log p(y) = log p_base(x) - log|det dy/dx|,  x = t1^-1(...tn^-1(y)).
/// Transforms that act on vectors or matrices take the base's rightmost
/// batch dimensions into the event as needed (as Pyro's). Reparameterised
/// when the base is. The support is the last transform's codomain.
class TransformedDistribution : public DistributionBase<TransformedDistribution> {
 public:
  /// Throws ShapeError when the base has too few dimensions for a transform.
  TransformedDistribution(const Distribution& base, std::vector<transforms::TransformArg> transforms);
  std::string_view type_name() const override { return "TransformedDistribution"; }
  bool has_rsample() const override { return base_->has_rsample(); }
  Constraint support() const override;
  const Distribution& base() const { return *base_; }
  /// The transforms in the order they are applied.
  const std::vector<std::shared_ptr<const transforms::Transform>>& transforms() const;

 protected:
  std::vector<ParamSpec> param_specs() const override { return {}; }
  void expand_base(const std::vector<int64_t>& base_shape) override;
  std::vector<int64_t> base_event_shape() const override { return event_; }
  std::vector<std::pair<std::string, std::shared_ptr<const Distribution>>> parts() const override;
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
  void options_to_json(nlohmann::json& j) const override;

 private:
  std::shared_ptr<Distribution> base_;
  std::shared_ptr<const transforms::Transform> transform_;  ///< a Compose of the transforms
  std::vector<int64_t> event_;                               ///< the event shape of y
};

}  // namespace ppl::dist
