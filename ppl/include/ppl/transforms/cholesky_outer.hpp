#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// From lower-triangular D x D matrices with a positive diagonal onto
/// symmetric positive-definite ones: S = L L^T; inverse: the Cholesky factor.
/// log|J| = D log 2 + sum_i (D - i) log L_ii (i from 0), over the lower
/// triangles of L and S.
class CholeskyOuter : public TransformBase<CholeskyOuter> {
 public:
  std::string_view name() const override { return "CholeskyOuter"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  constraints::Constraint codomain() const override { return constraints::positive_definite; }
  int64_t domain_event_rank() const override { return 2; }
  int64_t codomain_event_rank() const override { return 2; }
};

}  // namespace ppl::transforms
