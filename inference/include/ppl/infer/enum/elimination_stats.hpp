#pragma once
/// What one tensor-variable elimination did (see docs/inference.md, "Enumeration").
#include <algorithm>
#include <cstdint>

namespace ppl::infer {

/// The work of summing enumerated variables out: one reduction (logsumexp,
/// or max for MAP) per variable, one product (a sum of logs) per plate
/// contracted, and the largest factor formed on the way. A Markov chain of
/// T sites with K values each takes T reductions over factors of K^2
/// elements (times the plates' elements); without `ppl::Markov` the
/// factors grow to K^T.
struct EliminationStats {
  /// Variables summed (or maximised) out: one reduction each.
  int64_t variables = 0;
  /// Plate dimensions reduced by a product (a sum of log-factors).
  int64_t plate_products = 0;
  /// Elements of the largest factor formed before a reduction.
  int64_t largest_factor = 0;

  EliminationStats& operator+=(const EliminationStats& o) {
    variables += o.variables;
    plate_products += o.plate_products;
    largest_factor = std::max(largest_factor, o.largest_factor);
    return *this;
  }
};

}  // namespace ppl::infer
