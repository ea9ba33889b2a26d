#pragma once
#include <ppl/dist/binary_success.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// RelaxedBernoulli(temperature, probs | logits) on (0, 1), the binary
/// Concrete / Gumbel-softmax relaxation (Maddison et al. 2017):
/// y = sigmoid((logits + log u - log(1 - u)) / temperature), u ~ U(0, 1).
/// With `straight_through`, `rsample` returns the hard value 1[y > 1/2] in the
/// forward pass and y's gradient in the backward pass; `log_prob` of that
/// returned tensor is the density of the soft y it came from.
class RelaxedBernoulli : public DistributionBase<RelaxedBernoulli> {
 public:
  RelaxedBernoulli(Arg temperature, Probs p, bool straight_through = false);
  RelaxedBernoulli(Arg temperature, Logits l, bool straight_through = false);
  RelaxedBernoulli(Arg temperature, Arg probs, bool straight_through = false)
      : RelaxedBernoulli(std::move(temperature), Probs{std::move(probs)}, straight_through) {}
  std::string_view type_name() const override { return "RelaxedBernoulli"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  const torch::Tensor& temperature() const { return param(0); }
  torch::Tensor probs() const;
  torch::Tensor logits() const;
  bool straight_through() const { return straight_through_; }
  bool given_logits() const { return success_.given_logits(); }

 protected:
  std::vector<ParamSpec> param_specs() const override {
    return {{"temperature", 0}, {success_.name(), 0}};
  }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  torch::Tensor log_density_of(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
  void options_to_json(nlohmann::json& j) const override;

 private:
  BinarySuccess success_;
  bool straight_through_ = false;
  // The last straight-through draw and the soft value behind it.
  mutable torch::Tensor last_hard_, last_soft_;
};

}  // namespace ppl::dist
