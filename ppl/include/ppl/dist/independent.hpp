#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Independent(base, n): the base with its rightmost n batch dimensions
/// treated as event dimensions, so `log_prob` sums over them. The same law
/// as `base.to_event(n)`, for a distribution held by reference or pointer
/// whose concrete type is not at hand. Reparameterised when the base is.
class Independent : public DistributionBase<Independent> {
 public:
  /// Throws ShapeError when the base has fewer than n batch dimensions.
  Independent(const Distribution& base, int64_t reinterpreted_batch_dims);
  std::string_view type_name() const override { return "Independent"; }
  bool has_rsample() const override { return base_->has_rsample(); }
  Constraint support() const override { return base_->support(); }
  torch::Tensor mean() const override { return base_->mean(); }
  torch::Tensor variance() const override { return base_->variance(); }
  /// The base with the dimensions already moved (`base.to_event(n)`).
  const Distribution& base() const { return *base_; }
  int64_t reinterpreted_batch_dims() const { return dims_; }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {}; }
  void expand_base(const std::vector<int64_t>& base_shape) override;
  std::vector<int64_t> base_event_shape() const override { return base_->event_shape(); }
  std::vector<std::pair<std::string, std::shared_ptr<const Distribution>>> parts() const override;
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
  void options_to_json(nlohmann::json& j) const override;

 private:
  std::shared_ptr<Distribution> base_;
  int64_t dims_ = 0;
};

}  // namespace ppl::dist
