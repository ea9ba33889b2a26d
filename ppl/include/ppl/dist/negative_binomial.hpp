#pragma once
#include <ppl/dist/binary_success.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// NegativeBinomial(total_count r, probs p | logits) on {0, 1, 2, ...}: the
/// number of successes (probability p each) before the r-th failure,
/// probability Gamma(k + r) / (k! Gamma(r)) p^k (1 - p)^r; r positive (need
/// not be an integer), p in [0, 1). Sampled as Poisson(g p / (1 - p)),
/// g ~ Gamma(r, 1) (ATen's gamma and poisson); not reparameterised. Mean
/// r p / (1 - p), variance r p / (1 - p)^2.
class NegativeBinomial : public DistributionBase<NegativeBinomial> {
 public:
  NegativeBinomial(Arg total_count, Arg probs) : NegativeBinomial(std::move(total_count), Probs{std::move(probs)}) {}
  NegativeBinomial(Arg total_count, Probs p);
  NegativeBinomial(Arg total_count, Logits l);
  std::string_view type_name() const override { return "NegativeBinomial"; }
  bool has_rsample() const override { return false; }
  Constraint support() const override;
  torch::Tensor mean() const override;
  torch::Tensor variance() const override;
  const torch::Tensor& total_count() const { return param(0); }
  torch::Tensor probs() const;
  torch::Tensor logits() const;
  bool given_logits() const { return success_.given_logits(); }

 protected:
  std::vector<ParamSpec> param_specs() const override { return {{"total_count", 0}, {success_.name(), 0}}; }
  torch::Tensor draw(c10::IntArrayRef sizes) const override;
  torch::Tensor log_density(const torch::Tensor& value) const override;
  void check_params(const CheckContext& ctx) const override;

 private:
  BinarySuccess success_;
};

}  // namespace ppl::dist
