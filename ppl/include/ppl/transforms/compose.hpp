#pragma once
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// The composition of `parts`, applied first to last:
/// `Compose({Sigmoid(), Affine(a, b - a)})` maps R onto [a, b]. log|J| is the
/// sum of the parts' terms, each summed down to the batch of x. With no parts
/// it is the identity. The event ranks follow from the parts' (a part that
/// acts on vectors makes the whole act on vectors).
class Compose : public TransformBase<Compose> {
 public:
  Compose() = default;
  explicit Compose(std::vector<TransformArg> parts);
  std::string_view name() const override { return "Compose"; }
  torch::Tensor forward(const torch::Tensor& x) const override;
  torch::Tensor inverse(const torch::Tensor& y) const override;
  torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const override;
  /// The last part's codomain (the real line for none).
  constraints::Constraint codomain() const override;
  int64_t domain_event_rank() const override { return domain_rank_; }
  int64_t codomain_event_rank() const override { return codomain_rank_; }
  std::vector<int64_t> forward_shape(c10::IntArrayRef shape) const override;
  std::vector<int64_t> inverse_shape(c10::IntArrayRef shape) const override;
  nlohmann::json to_json() const override;
  const std::vector<std::shared_ptr<const Transform>>& parts() const { return parts_; }

 private:
  std::vector<std::shared_ptr<const Transform>> parts_;
  int64_t domain_rank_ = 0, codomain_rank_ = 0;
};

}  // namespace ppl::transforms
