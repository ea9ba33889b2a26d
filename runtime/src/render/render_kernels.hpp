#pragma once
// Kernels behind ppl::runtime::render_strokes. All tensors are contiguous and
// already checked: points [N, K, 2], sigma and omega0 [N] (N = B * T strokes,
// K = D + 1 control points), out and grad_out [N, H, W].
#include <cstdint>
#include <tuple>

#include <torch/types.h>

#include <ppl/config.hpp>

namespace ppl::runtime::detail {

struct RenderGrads {
  torch::Tensor points, sigma, omega0;
};

torch::Tensor render_forward_cpu(const torch::Tensor& points, const torch::Tensor& sigma,
                                 const torch::Tensor& omega0, std::int64_t height,
                                 std::int64_t width, std::int64_t samples);
RenderGrads render_backward_cpu(const torch::Tensor& grad_out, const torch::Tensor& points,
                                const torch::Tensor& sigma, const torch::Tensor& omega0,
                                std::int64_t height, std::int64_t width, std::int64_t samples,
                                bool detach_max);

#if PPL_WITH_CUDA
torch::Tensor render_forward_cuda(const torch::Tensor& points, const torch::Tensor& sigma,
                                  const torch::Tensor& omega0, std::int64_t height,
                                  std::int64_t width, std::int64_t samples);
RenderGrads render_backward_cuda(const torch::Tensor& grad_out, const torch::Tensor& points,
                                 const torch::Tensor& sigma, const torch::Tensor& omega0,
                                 std::int64_t height, std::int64_t width, std::int64_t samples,
                                 bool detach_max);
#endif

/// Whether a stroke whose largest splat value is `m` can be normalised by
/// Eq. 12-13: 1 / (m omega0) must be finite. A stroke whose splats all
/// underflowed (m = 0), or nearly so (m omega0 below the smallest normal
/// number, where 1 / (m omega0) overflows and 0 * inf gives NaN), renders as
/// an empty stroke with zero gradients, on CPU and CUDA alike.
template <typename T>
#ifdef __CUDACC__
__host__ __device__
#endif
inline bool normalisable(T m, T omega0) {
  return m * omega0 > (sizeof(T) == 4 ? T(1.17549435e-38f) : T(2.2250738585072014e-308));
}

/// Bernstein weights C(K-1, k) (1 - u_n)^(K-1-k) u_n^k for u_n = n / (S - 1), as [S, K] doubles.
std::vector<double> bernstein_weights(std::int64_t samples, std::int64_t control_points);

}  // namespace ppl::runtime::detail
