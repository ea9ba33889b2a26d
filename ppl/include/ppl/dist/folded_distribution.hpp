#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// FoldedDistribution(base): the law of |x|, x ~ base, for a base with
/// scalar events: p(y) = p_base(y) + p_base(-y) on [0, inf).
/// Reparameterised when the base is.
class FoldedDistribution : public DistributionBase<FoldedDistribution> {
 public:
  /// Throws ShapeError for a base whose events are not scalars.
  explicit FoldedDistribution(const Distribution& base);
  std::string_view type_name() const override { return "FoldedDistribution"; }
  bool has_rsample() const override { return base_->has_rsample(); }
  Constraint support() const override { return constraints::nonnegative; }
  const Distribution& base() const { return *base_; }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {}; }
  void expand_base(const std::vector<int64_t>& base_shape) override;
  std::vector<std::pair<std::string, std::shared_ptr<const Distribution>>> parts() const override;
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;

 private:
  std::shared_ptr<Distribution> base_;
};

}  // namespace ppl::dist
