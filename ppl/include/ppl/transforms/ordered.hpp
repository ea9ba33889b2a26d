#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// From R^K onto strictly increasing vectors: y_0 = x_0,
/// y_k = y_{k-1} + exp(x_k); log|J| = sum_{k>0} x_k.
class Ordered : public TransformBase<Ordered> {
 public:
  std::string_view name() const override { return "Ordered"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  constraints::Constraint codomain() const override { return constraints::ordered_vector; }
  int64_t domain_event_rank() const override { return 1; }
  int64_t codomain_event_rank() const override { return 1; }
};

}  // namespace ppl::transforms
