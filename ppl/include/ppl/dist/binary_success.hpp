#pragma once
/// The success parameter shared by the binary families (Bernoulli,
/// ContinuousBernoulli, RelaxedBernoulli): given either as probs in [0, 1] or
/// as logits (log-odds), with the other form derived on demand.
#include <string_view>

#include <torch/types.h>

#include <ppl/core/check.hpp>

namespace ppl::dist {

class BinarySuccess {
 public:
  explicit BinarySuccess(bool given_logits = false) : logits_(given_logits) {}
  bool given_logits() const { return logits_; }
  /// The parameter's name in specs and messages: "logits" or "probs".
  const char* name() const { return logits_ ? "logits" : "probs"; }
  /// Success probabilities from the given tensor.
  torch::Tensor probs(const torch::Tensor& given) const;
  /// Log-odds from the given tensor (probs clamped away from 0 and 1 first).
  torch::Tensor logits(const torch::Tensor& given) const;
  /// Logits must not be NaN; probs must lie in [0, 1].
  void check(const CheckContext& ctx, const torch::Tensor& given) const;

 private:
  bool logits_;
};

}  // namespace ppl::dist
