#pragma once
#include <ppl/dist/binary_success.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Geometric(probs p | logits) on {0, 1, 2, ...}: the number of failures
/// before the first success, probability (1 - p)^k p; p in (0, 1]. Sampled
/// by inversion, floor(log u / log(1 - p)); not reparameterised. Mean
/// (1 - p) / p, variance (1 - p) / p^2.
class Geometric : public DistributionBase<Geometric> {
 public:
  Geometric(Arg probs) : Geometric(Probs{std::move(probs)}) {}  // NOLINT(implicit)
  explicit Geometric(Probs p);
  explicit Geometric(Logits l);
  std::string_view type_name() const override { return "Geometric"; }
  bool has_rsample() const override { return false; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  torch::Tensor probs() const;
  torch::Tensor logits() const;
  bool given_logits() const { return success_.given_logits(); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{success_.name(), 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;

 private:
  BinarySuccess success_;
};

}  // namespace ppl::dist
