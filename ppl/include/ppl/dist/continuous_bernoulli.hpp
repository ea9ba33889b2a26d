#pragma once
#include <ppl/dist/binary_success.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// ContinuousBernoulli(lambda) on [0, 1] (Loaiza-Ganem & Cunningham 2019):
/// density C(lambda) lambda^x (1-lambda)^(1-x), with the normaliser
/// C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2 lambda) (2 at lambda = 1/2,
/// evaluated by its Taylor series near 1/2). Given probs or logits like
/// Bernoulli. Reparameterised by the inverse CDF.
class ContinuousBernoulli : public DistributionBase<ContinuousBernoulli> {
 public:
  ContinuousBernoulli(Arg probs) : ContinuousBernoulli(Probs{std::move(probs)}) {}  // NOLINT
  explicit ContinuousBernoulli(Probs p);
  explicit ContinuousBernoulli(Logits l);
  std::string_view type_name() const override { return "ContinuousBernoulli"; }
  bool has_rsample() const override { return true; }
  Constraint support() const override;
  torch::Tensor probs() const;
  torch::Tensor logits() const;
  /// E[x].
  torch::Tensor mean() const override;
  /// log C(lambda).
  torch::Tensor log_normalizer() const;
  bool given_logits() const { return success_.given_logits(); }

 protected:
  std::vector<ParamSpec> param_specs() const override {
    return {{success_.name(), 0}};
  }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;

 private:
  BinarySuccess success_;
};

}  // namespace ppl::dist
