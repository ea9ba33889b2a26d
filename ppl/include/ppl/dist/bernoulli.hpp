#pragma once
#include <ppl/dist/binary_success.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Bernoulli over {0, 1}, given probs in [0, 1] (`Bernoulli(p)` or
/// `Bernoulli(probs(p))`) or logits (`Bernoulli(logits(l))`). Not
/// reparameterised: gradients come from score-function estimators.
class Bernoulli : public DistributionBase<Bernoulli> {
 public:
  Bernoulli(Arg probs) : Bernoulli(Probs{std::move(probs)}) {}  // NOLINT(implicit)
  explicit Bernoulli(Probs p);
  explicit Bernoulli(Logits l);
  std::string_view type_name() const override { return "Bernoulli"; }
  bool has_rsample() const override { return false; }
  bool has_enumerate_support() const override { return true; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  /// Success probabilities.
  torch::Tensor probs() const;
  /// Log-odds.
  torch::Tensor logits() const;
  bool given_logits() const { return success_.given_logits(); }

 protected:
  std::vector<ParamSpec> param_specs() const override {
    return {{success_.name(), 0}};
  }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
  torch::Tensor support_values() const override;

 private:
  BinarySuccess success_;
};

}  // namespace ppl::dist
