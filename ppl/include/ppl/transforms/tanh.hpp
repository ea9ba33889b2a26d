#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// y = tanh(x), onto (-1, 1); log|J| = 2 (log 2 - x - softplus(-2x)).
class Tanh : public TransformBase<Tanh> {
 public:
  std::string_view name() const override { return "Tanh"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  constraints::Constraint codomain() const override { return constraints::interval(-1.0, 1.0); }
};

}  // namespace ppl::transforms
