#pragma once
// Floating-point helpers shared by the transforms and the distributions (not installed).
#include <limits>

#include <torch/types.h>

namespace ppl::numerics {

/// Machine epsilon of t's dtype (double or float).
inline double eps_of(const torch::Tensor& t) {
  return t.scalar_type() == torch::kDouble ? std::numeric_limits<double>::epsilon()
                                           : std::numeric_limits<float>::epsilon();
}
/// The smallest normal number of t's dtype (double or float).
inline double tiny_of(const torch::Tensor& t) {
  return t.scalar_type() == torch::kDouble ? std::numeric_limits<double>::min() : std::numeric_limits<float>::min();
}
/// Sums the rightmost `n` dimensions of `t` (none when n <= 0).
inline torch::Tensor sum_rightmost(torch::Tensor t, int64_t n) {
  for (int64_t i = 0; i < n; ++i) t = t.sum(-1);
  return t;
}

}  // namespace ppl::numerics
