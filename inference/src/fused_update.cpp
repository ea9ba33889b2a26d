// The single-pass optimiser loops of fused_update.hpp. The constants are
// rounded to T first and the operations are in the order of the tensor
// formulas they replace (Optimiser::update's fallback), so the two agree to
// T's rounding.
#include "fused_update.hpp"

#include <cmath>

namespace ppl::infer::detail {

template <class T>
double sum_of_squares(const T* x, std::int64_t n) {
  // Eight independent partial sums, so that the loop vectorises without
  // reassociating one long chain of additions.
  double part[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) {
      const double e = static_cast<double>(x[i + k]);
      part[k] += e * e;
    }
  double total = 0;
  for (; i < n; ++i) total += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  for (double p : part) total += p;
  return total;
}

template <class T>
void adam_update(T* __restrict p, T* __restrict m, T* __restrict v, const T* __restrict g, std::int64_t n,
                 const AdamConstants& c) {
  const T beta1 = static_cast<T>(c.beta1), one_minus_beta1 = static_cast<T>(1 - c.beta1);
  const T beta2 = static_cast<T>(c.beta2), one_minus_beta2 = static_cast<T>(1 - c.beta2);
  const T step = static_cast<T>(-c.step_size), sqrt_bc2 = static_cast<T>(c.sqrt_bc2), eps = static_cast<T>(c.eps);
  for (std::int64_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T mi = m[i] * beta1 + one_minus_beta1 * gi;
    const T vi = v[i] * beta2 + one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] + step * mi / (std::sqrt(vi) / sqrt_bc2 + eps);
  }
}

template <class T>
void rmsprop_update(T* __restrict p, T* __restrict v, const T* __restrict g, std::int64_t n, double alpha, double lr,
                    double eps) {
  const T a = static_cast<T>(alpha), one_minus_a = static_cast<T>(1 - alpha);
  const T step = static_cast<T>(-lr), e = static_cast<T>(eps);
  for (std::int64_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T vi = v[i] * a + one_minus_a * gi * gi;
    v[i] = vi;
    p[i] = p[i] + step * gi / (std::sqrt(vi) + e);
  }
}

template double sum_of_squares<float>(const float*, std::int64_t);
template double sum_of_squares<double>(const double*, std::int64_t);
template void adam_update<float>(float*, float*, float*, const float*, std::int64_t, const AdamConstants&);
template void adam_update<double>(double*, double*, double*, const double*, std::int64_t, const AdamConstants&);
template void rmsprop_update<float>(float*, float*, const float*, std::int64_t, double, double, double);
template void rmsprop_update<double>(double*, double*, const double*, std::int64_t, double, double, double);

}  // namespace ppl::infer::detail
