// CPU reference kernels of composite: one batch element per task, pixels
// innermost so the loops vectorise; the forward's tanh is ATen's vectorised
// in-place tanh over the finished pre-activations.
#include <cmath>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "composite_kernels.hpp"

namespace ppl::runtime::detail {

torch::Tensor composite_forward_cpu(const torch::Tensor& strokes, const torch::Tensor& omega1) {
  const auto B = strokes.size(0), T = strokes.size(1), P = strokes.size(2);
  auto canvas = torch::empty_like(strokes);
  AT_DISPATCH_FLOATING_TYPES(strokes.scalar_type(), "composite_forward_cpu", [&] {
    const scalar_t* src = strokes.data_ptr<scalar_t>();
    const scalar_t* om1 = omega1.data_ptr<scalar_t>();
    scalar_t* dst = canvas.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](std::int64_t begin, std::int64_t end) {
      std::vector<scalar_t> acc(P);
      for (std::int64_t b = begin; b < end; ++b) {
        std::fill(acc.begin(), acc.end(), scalar_t(0));
        const scalar_t inv = scalar_t(1) / om1[b];
        for (std::int64_t t = 0; t < T; ++t) {
          const scalar_t* s = src + (b * T + t) * P;
          scalar_t* c = dst + (b * T + t) * P;
          for (std::int64_t p = 0; p < P; ++p) {
            acc[p] += s[p];
            c[p] = acc[p] * inv;
          }
        }
      }
    });
  });
  canvas.tanh_();  // ATen's vectorised tanh, in place
  return canvas;
}

// With gc_t = g_t (1 - c_t^2) / omega1, the stroke gradient is the reverse
// cumulative sum r_t = sum_{t' >= t} gc_t', and
//   d/d omega1 = -sum_t gc_t cumsum_t / omega1 = -sum_t r_t strokes_t / omega1.
CompositeGrads composite_backward_cpu(const torch::Tensor& grad_canvas, const torch::Tensor& strokes,
                                      const torch::Tensor& omega1, const torch::Tensor& canvas) {
  const auto B = strokes.size(0), T = strokes.size(1), P = strokes.size(2);
  auto g_strokes = torch::empty_like(strokes);
  auto g_omega1 = torch::empty_like(omega1);
  AT_DISPATCH_FLOATING_TYPES(strokes.scalar_type(), "composite_backward_cpu", [&] {
    const scalar_t* src = strokes.data_ptr<scalar_t>();
    const scalar_t* om1 = omega1.data_ptr<scalar_t>();
    const scalar_t* cv = canvas.data_ptr<scalar_t>();
    const scalar_t* gc = grad_canvas.data_ptr<scalar_t>();
    scalar_t* gs = g_strokes.data_ptr<scalar_t>();
    scalar_t* go = g_omega1.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](std::int64_t begin, std::int64_t end) {
      std::vector<scalar_t> carry(P);
      for (std::int64_t b = begin; b < end; ++b) {
        std::fill(carry.begin(), carry.end(), scalar_t(0));
        const scalar_t inv = scalar_t(1) / om1[b];
        scalar_t acc_o = 0;
        for (std::int64_t t = T - 1; t >= 0; --t) {
          const auto off = (b * T + t) * P;
          for (std::int64_t p = 0; p < P; ++p) {
            const scalar_t c = cv[off + p];
            carry[p] += gc[off + p] * (scalar_t(1) - c * c) * inv;
            gs[off + p] = carry[p];
            acc_o += carry[p] * src[off + p];
          }
        }
        go[b] = -acc_o * inv;
      }
    });
  });
  return {g_strokes, g_omega1};
}

}  // namespace ppl::runtime::detail
