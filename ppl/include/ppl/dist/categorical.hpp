#pragma once
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Categorical over {0, ..., K-1}, K the size of the last dimension of its
/// parameter: probs (nonnegative, normalised on use) or logits (unnormalised
/// log-probabilities, normalised on use). Values are int64 indices. Not
/// reparameterised.
class Categorical : public DistributionBase<Categorical> {
 public:
  Categorical(Arg probs) : Categorical(Probs{std::move(probs)}) {}  // NOLINT(implicit)
  explicit Categorical(Probs p);
  explicit Categorical(Logits l);
  std::string_view type_name() const override { return "Categorical"; }
  bool has_rsample() const override { return false; }
  bool has_enumerate_support() const override { return true; }
  Constraint support() const override;
  /// Normalised probabilities [..., K].
  torch::Tensor probs() const;
  /// Normalised log-probabilities [..., K].
  torch::Tensor logits() const;
  int64_t num_categories() const { return param(0).size(-1); }
  bool given_logits() const { return logits_; }

 protected:
  std::vector<ParamSpec> param_specs() const override {
    return {{logits_ ? "logits" : "probs", 1}};
  }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;
  torch::Tensor support_values() const override;

 private:
  bool logits_ = false;
};

}  // namespace ppl::dist
