#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// y = 1 / (1 + exp(-x)), onto (0, 1) (kept inside by one float step at the
/// ends); log|J| = -softplus(-x) - softplus(x).
class Sigmoid : public TransformBase<Sigmoid> {
 public:
  std::string_view name() const override { return "Sigmoid"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  constraints::Constraint codomain() const override { return constraints::unit_interval; }
};

}  // namespace ppl::transforms
