#pragma once
/// Spatial transformer: glimpse crop and its inverse placement (as in AIR).
///
/// Convention for z_where. Both the image and the window use normalised
/// coordinates in [-1, 1]: x across the columns, y down the rows, -1 and +1
/// at the outer edges of the border pixels (pixel centres at
/// (2 i + 1) / n - 1, i.e. align_corners = false). A window point (u, v) in
/// [-1, 1]^2 sits at the image point
///   [B, 3] z_where = (s, x, y):          (s u + x, s v + y)
///   [B, 4] z_where = (sx, sy, x, y):     (sx u + x, sy v + y)
///   [B, 6] z_where = (a, b, tx, c, d, ty): (a u + b v + tx, c u + d v + ty)
/// so with z_where = (s, x, y) the window covers the image square
/// s * [-1, 1] + (x, y): s is the window's side as a fraction of the image's,
/// and (x, y) its centre. (1, 0, 0) is the identity; a shift of 2 k / W in x
/// moves the window k pixels to the right.
///
/// Placing an axis-aligned window ([B, 3], [B, 4]) on a larger canvas is
/// computed separably, as two batched matrix products with per-axis bilinear
/// weights (4 to 10 times faster forward + backward on CPU than the grid
/// sampler, `ppl_bench_runtime`); crops and [B, 6] windows go through ATen's
/// affine grid and grid sampler. Both give the same bilinear values (zeros
/// outside) and the same gradients away from pixel-aligned sample points.
#include <cstdint>

#include <torch/types.h>

namespace ppl::runtime {

/// Crops a size x size glimpse from each image at z_where (bilinear, zeros
/// outside the image):
///   windows[b, c, i, j] = images[b, c](A_b (u_j, v_i) + t_b)
/// with (u_j, v_i) the window's pixel centres in [-1, 1] and A_b, t_b as in
/// the header comment. images [B, C, H, W]; z_where [B, 3] (s > 0), [B, 4]
/// (sx, sy > 0) or [B, 6] (invertible A). Returns [B, C, size, size].
/// Differentiable in images and z_where on CPU and CUDA.
/// Throws std::invalid_argument on a wrong rank, mismatched B, mixed dtypes
/// or devices, non-positive size, s <= 0 or a singular A.
torch::Tensor stn_crop(const torch::Tensor& images, const torch::Tensor& z_where, std::int64_t size);

/// Places each window back on a height x width canvas at z_where, the inverse
/// of stn_crop: canvas[b, c](p) = windows[b, c](A_b^{-1} (p - t_b)), zero
/// outside the window. stn_place(stn_crop(x, z, n), z, H, W) equals x inside
/// the window up to bilinear resampling (exactly for z = (1, 0, 0), n = H = W).
/// windows [B, C, K, K] (any K); z_where as for stn_crop. Returns
/// [B, C, height, width]. Differentiable in windows and z_where.
/// Throws std::invalid_argument as stn_crop does.
torch::Tensor stn_place(const torch::Tensor& windows, const torch::Tensor& z_where,
                        std::int64_t height, std::int64_t width);

/// The [B, 2, 3] affine matrix (A | t) of z_where ([B, 3] or [B, 6]), mapping
/// window coordinates to image coordinates. Throws like stn_crop.
torch::Tensor stn_theta(const torch::Tensor& z_where);

/// The [B, 2, 3] inverse (A^{-1} | -A^{-1} t), mapping image coordinates to
/// window coordinates. Throws like stn_crop.
torch::Tensor stn_inverse_theta(const torch::Tensor& z_where);

}  // namespace ppl::runtime
