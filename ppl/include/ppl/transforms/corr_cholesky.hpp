#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// From R^(D(D-1)/2) onto Cholesky factors of D x D correlation matrices:
/// z = tanh(x) fills the strict lower triangle row by row (partial
/// correlations, kept one float step inside (-1, 1)), and each row is the
/// stick-breaking L_ij = z_ij sqrt(1 - sum_{k<j} L_ik^2), with the diagonal
/// taking what is left so every row has unit norm.
/// log|J| = sum_ij [log(1 - z_ij^2) + log(1 - sum_{k<j} L_ik^2) / 2].
class CorrCholesky : public TransformBase<CorrCholesky> {
 public:
  std::string_view name() const override { return "CorrCholesky"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  constraints::Constraint codomain() const override { return constraints::corr_cholesky; }
  int64_t domain_event_rank() const override { return 1; }
  int64_t codomain_event_rank() const override { return 2; }
  std::vector<int64_t> forward_shape(c10::IntArrayRef shape) const override;
  std::vector<int64_t> inverse_shape(c10::IntArrayRef shape) const override;
};

}  // namespace ppl::transforms
