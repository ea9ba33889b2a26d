#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// Stick-breaking from R^(K-1) onto the simplex in R^K: with
/// z_k = sigmoid(x_k - log(K - 1 - k)), y_k = z_k prod_{j<k} (1 - z_j) and the
/// last y the remaining stick (x = 0 maps to the uniform vector).
/// log|J| = sum_k log z_k + log(1 - z_k) + log(prod_{j<k} (1 - z_j)) over the
/// first K - 1 coordinates of y.
class StickBreaking : public TransformBase<StickBreaking> {
 public:
  std::string_view name() const override { return "StickBreaking"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  constraints::Constraint codomain() const override { return constraints::simplex; }
  int64_t domain_event_rank() const override { return 1; }
  int64_t codomain_event_rank() const override { return 1; }
  std::vector<int64_t> forward_shape(c10::IntArrayRef shape) const override;
  std::vector<int64_t> inverse_shape(c10::IntArrayRef shape) const override;
};

}  // namespace ppl::transforms
