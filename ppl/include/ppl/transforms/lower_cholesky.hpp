#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// From R^(D(D+1)/2) onto lower-triangular D x D matrices with a positive
/// diagonal: the vector fills the lower triangle row by row, and the
/// diagonal entries are exponentiated. log|J| = the sum of the x's that land
/// on the diagonal.
class LowerCholesky : public TransformBase<LowerCholesky> {
 public:
  std::string_view name() const override { return "LowerCholesky"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  constraints::Constraint codomain() const override { return constraints::lower_cholesky; }
  int64_t domain_event_rank() const override { return 1; }
  int64_t codomain_event_rank() const override { return 2; }
  std::vector<int64_t> forward_shape(c10::IntArrayRef shape) const override;
  std::vector<int64_t> inverse_shape(c10::IntArrayRef shape) const override;
};

}  // namespace ppl::transforms
