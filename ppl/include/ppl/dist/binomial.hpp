#pragma once
#include <ppl/dist/binary_success.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

/// Binomial(total_count n, probs p | logits) on {0, ..., n}: probability
/// C(n, k) p^k (1 - p)^(n - k); n a nonnegative integer (a tensor may give one
/// per batch element), p in [0, 1]. Sampled by ATen's binomial; not
/// reparameterised. Mean n p, variance n p (1 - p).
class Binomial : public DistributionBase<Binomial> {
 public:
  Binomial(Arg total_count, Arg probs) : Binomial(std::move(total_count), Probs{std::move(probs)}) {}
  Binomial(Arg total_count, Probs p);
  Binomial(Arg total_count, Logits l);
  std::string_view type_name() const override { return "Binomial"; }
  bool has_rsample() const override { return false; }
  bool has_enumerate_support() const override { return true; }
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
  torch::Tensor support_values() const override;

 private:
  BinarySuccess success_;
};

}  // namespace ppl::dist
