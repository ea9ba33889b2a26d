#pragma once
#include <ppl/dist/categorical.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// MixtureSameFamily(mixture, component): p(x) = sum_k w_k p_k(x), with the
/// weights from the Categorical `mixture` (batch B, K categories) and the K
/// components as the last batch dimension of `component` (any family, batch
/// B' + [K], event E; B and B' broadcast). The batch shape is the broadcast
/// of B and B', the event shape E. Not reparameterised (the component choice
/// is discrete). Mean sum_k w_k mean_k, variance
/// sum_k w_k (var_k + mean_k^2) - mean^2, where the components have them.
class MixtureSameFamily : public DistributionBase<MixtureSameFamily> {
 public:
  /// Throws ShapeError when the component's last batch dimension is not the
  /// mixture's number of categories, or the batch shapes do not broadcast.
  MixtureSameFamily(const Categorical& mixture, const Distribution& component);
  std::string_view type_name() const override { return "MixtureSameFamily"; }
  bool has_rsample() const override { return false; }
  Constraint support() const override { return component_->support(); }
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const Categorical& mixture() const { return *mixture_; }
  const Distribution& component() const { return *component_; }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {}; }
  void expand_base(const std::vector<int64_t>& base_shape) override;
  std::vector<int64_t> base_event_shape() const override { return component_->event_shape(); }
  std::vector<std::pair<std::string, std::shared_ptr<const Distribution>>> parts() const override;
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;

 private:
  std::shared_ptr<Categorical> mixture_;
  std::shared_ptr<Distribution> component_;
};

}  // namespace ppl::dist
