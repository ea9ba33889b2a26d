#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// LKJCholesky(dim D, concentration eta = 1) over Cholesky factors L of D x D
/// correlation matrices (Lewandowski, Kurowicka & Joe 2009): the correlation
/// matrix L L^T has density proportional to det(L L^T)^(eta - 1), which on L
/// (its strict lower triangle) is prod_{i>=1} L_ii^(D - i - 1 + 2 (eta - 1))
/// (i from 0) divided by the normaliser
///   pi^((D-1)/2) Gamma_{D-1}(a - 1/2) / Gamma(a)^(D-1),  a = eta + (D - 1) / 2.
/// eta positive; eta = 1 is uniform over correlation matrices. The event
/// shape is [D, D]. Sampled by the onion method; not reparameterised.
class LKJCholesky : public DistributionBase<LKJCholesky> {
 public:
  explicit LKJCholesky(int64_t dim, Arg concentration = 1.0);
  std::string_view type_name() const override { return "LKJCholesky"; }
  bool has_rsample() const override { return false; }
  Constraint support() const override;
  const torch::Tensor& concentration() const { return param(0); }
  int64_t dim() const { return dim_; }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"concentration", 0}}; }
  std::vector<int64_t> base_event_shape() const override { return {dim_, dim_}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
  void options_to_json(nlohmann::json& j) const override;

 private:
  int64_t dim_ = 2;
};

}  // namespace ppl::dist
