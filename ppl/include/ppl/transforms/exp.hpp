#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// y = exp(x), onto the positive reals; log|J| = x.
class Exp : public TransformBase<Exp> {
 public:
  std::string_view name() const override { return "Exp"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  constraints::Constraint codomain() const override { return constraints::positive; }
};

}  // namespace ppl::transforms
