#pragma once
/// Differentiable Bezier stroke renderer (seed 000, Appendix B.1, Eq. 10-13).
#include <cstdint>

#include <torch/types.h>

namespace ppl::runtime {

/// Raster size and curve sampling of `render_strokes`.
struct RenderOptions {
  std::int64_t height = 50;   ///< H, rows of the output image.
  std::int64_t width = 50;    ///< W, columns of the output image.
  std::int64_t samples = 100; ///< S, curve samples evenly spaced in [0, 1].
  /// Gradients hold each stroke's max_hw(raw) fixed, as the DooD authors'
  /// renderer does (it detaches the max); the values are the same.
  bool detach_max = false;
};

/// Renders one greyscale image per stroke from Bezier control points.
///
/// Coordinates: a point (x, y) is in [0, 1] image coordinates, x across the
/// columns and y down the rows; pixel (h, w) sits at (x, y) = (w / W, h / H),
/// the grid of the DooD authors' renderer. sigma is in the same normalised
/// units (the authors constrain it to [0.01, 0.04]).
///
/// For stroke t of batch element b with control points p_0..p_D:
///   b_n = sum_d C(D, d) (1 - u_n)^(D - d) u_n^d p_d,  u_n = n / (S - 1)   (Eq. 10)
///   raw_hw = sum_n exp(-((w/W - b_n.x)^2 + (h/H - b_n.y)^2) / (2 sigma^2)) (Eq. 11)
///   out_hw = tanh(raw_hw / max_hw(raw) / omega0)                        (Eq. 12-13)
/// Eq. 11 as extracted from the paper lost its exponent; the Gaussian kernel
/// with 2 sigma^2 follows the authors' implementation.
///
/// points: [B, T, D+1, 2] (D >= 0); sigma, omega0: [B, T], positive.
/// Returns [B, T, H, W] in [0, 1], with points' dtype and device.
/// Differentiable in points, sigma and omega0. On CPU a fused kernel whose
/// backward recomputes the splats, so memory stays O(B T H W) rather than
/// O(B T S H W); on CUDA the same algorithm as a CUDA kernel.
/// Throws std::invalid_argument on a wrong rank or shape, mismatched B or T,
/// mixed dtypes or devices, a non-floating dtype, non-positive sigma or
/// omega0, or non-positive options.
torch::Tensor render_strokes(const torch::Tensor& points, const torch::Tensor& sigma,
                             const torch::Tensor& omega0, const RenderOptions& options = {});

}  // namespace ppl::runtime
