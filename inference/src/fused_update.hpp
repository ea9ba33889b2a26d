#pragma once
// The optimiser's per-element work as single loops over contiguous CPU
// memory: the gradient's squared norm and the Adam and RMSprop updates, each
// one pass over its arrays, where the same formulas as tensor operations
// make eight to ten passes and allocate temporaries the size of every
// parameter. Compiled without errno on sqrt, so that the loops vectorise;
// the file includes no libtorch header.
#include <cstdint>

namespace ppl::infer::detail {

/// The constants of one Adam step: m <- beta1 m + (1 - beta1) g,
/// v <- beta2 v + (1 - beta2) g g,
/// p <- p - step_size m / (sqrt(v) / sqrt_bc2 + eps).
struct AdamConstants {
  double beta1, beta2, step_size, sqrt_bc2, eps;
};

/// The sum of x[i]^2, accumulated in double.
template <class T>
double sum_of_squares(const T* x, std::int64_t n);

/// One Adam step in place over n elements.
template <class T>
void adam_update(T* p, T* m, T* v, const T* g, std::int64_t n, const AdamConstants& c);

/// One RMSprop step in place: v <- alpha v + (1 - alpha) g g,
/// p <- p - lr g / (sqrt(v) + eps).
template <class T>
void rmsprop_update(T* p, T* v, const T* g, std::int64_t n, double alpha, double lr, double eps);

}  // namespace ppl::infer::detail
