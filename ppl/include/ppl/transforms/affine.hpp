#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// y = loc + scale * x elementwise (loc and scale broadcast against x);
/// log|J| = log|scale|, summed over the trailing `event_rank` dimensions
/// (0: elementwise, 1: on vectors, ...). `scale` must not be 0.
class Affine : public TransformBase<Affine> {
 public:
  Affine(double loc, double scale, int64_t event_rank = 0);
  Affine(torch::Tensor loc, torch::Tensor scale, int64_t event_rank = 0);
  std::string_view name() const override { return "Affine"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  constraints::Constraint codomain() const override { return constraints::real; }
  int64_t domain_event_rank() const override { return event_rank_; }
  int64_t codomain_event_rank() const override { return event_rank_; }
  nlohmann::json to_json() const override;
  const torch::Tensor& loc() const { return loc_; }
  const torch::Tensor& scale() const { return scale_; }

 private:
  torch::Tensor loc_, scale_;
  int64_t event_rank_ = 0;
};

}  // namespace ppl::transforms
