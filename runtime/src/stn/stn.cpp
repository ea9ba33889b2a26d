// Spatial transformer. Bilinear interpolation with zeros outside is, for an
// axis-aligned window ([B, 3] and [B, 4] z_where), separable: along each axis
// a matrix of "hat" weights max(0, 1 - |source coordinate - k|), so a warp is
// two small batched matrix products, Wy @ src @ Wx^T, whose backward is
// matrix products too. That is the cheaper form when the output has more
// pixels than the source (placing patches on canvases): ATen's
// affine_grid_generator and grid_sampler work per output pixel, and their CPU
// backward copies and scatters per output pixel. Crops (fewer output pixels)
// and general affine windows ([B, 6]) use those fused kernels.
#include <ppl/runtime/stn.hpp>

#include <ATen/ATen.h>

#include "../render/arg_checks.hpp"

namespace ppl::runtime {
namespace {

void check_z_where(std::string_view op, const torch::Tensor& z_where, std::int64_t batch,
                   const torch::Tensor& ref, std::string_view ref_arg) {
  using namespace detail;
  check_rank(op, "z_where", z_where, 2, "[B, 3], [B, 4] or [B, 6]");
  const int64_t form = z_where.size(1);
  if (z_where.size(0) != batch || (form != 3 && form != 4 && form != 6))
    fail(fmt::format("{}: z_where has shape {}, but must be [B, 3], [B, 4] or [B, 6] with B = {}", op,
                     shape_string(z_where.sizes()), batch));
  check_like(op, "z_where", z_where, ref_arg, ref);
  const auto z = z_where.detach();
  if (form == 3) {
    check_positive(op, "z_where scale", z.select(1, 0));
  } else if (form == 4) {
    check_positive(op, "z_where x scale", z.select(1, 0));
    check_positive(op, "z_where y scale", z.select(1, 1));
  } else {
    const auto det = z.select(1, 0) * z.select(1, 4) - z.select(1, 1) * z.select(1, 3);
    check_positive(op, "z_where |det A|", det.abs());
  }
}

/// An axis-aligned z_where ([B, 3] or [B, 4]) as its scales and centre,
/// each [B]: the window point (u, v) sits at (sx u + x, sy v + y).
struct AxisAligned {
  torch::Tensor sx, sy, x, y;
};

AxisAligned axis_aligned(const torch::Tensor& z) {
  if (z.size(1) == 3) return {z.select(1, 0), z.select(1, 0), z.select(1, 1), z.select(1, 2)};
  return {z.select(1, 0), z.select(1, 1), z.select(1, 2), z.select(1, 3)};
}

torch::Tensor theta_of(const torch::Tensor& z) {
  const auto B = z.size(0);
  if (z.size(1) == 6) return z.reshape({B, 2, 3});
  const auto w = axis_aligned(z);
  const auto zero = torch::zeros_like(w.sx);
  return torch::stack({w.sx, zero, w.x, zero, w.sy, w.y}, 1).reshape({B, 2, 3});
}

torch::Tensor inverse_theta_of(const torch::Tensor& z) {
  const auto B = z.size(0);
  if (z.size(1) != 6) {
    const auto w = axis_aligned(z);
    const auto zero = torch::zeros_like(w.sx);
    const auto rx = 1 / w.sx, ry = 1 / w.sy;
    return torch::stack({rx, zero, -w.x * rx, zero, ry, -w.y * ry}, 1).reshape({B, 2, 3});
  }
  const auto a = z.select(1, 0), b = z.select(1, 1), tx = z.select(1, 2);
  const auto c = z.select(1, 3), d = z.select(1, 4), ty = z.select(1, 5);
  const auto r = 1 / (a * d - b * c);
  const auto ia = d * r, ib = -b * r, ic = -c * r, id = a * r;
  return torch::stack({ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)}, 1)
      .reshape({B, 2, 3});
}

torch::Tensor warp(const torch::Tensor& src, const torch::Tensor& theta, std::int64_t height,
                   std::int64_t width) {
  const auto grid = at::affine_grid_generator(theta, {src.size(0), src.size(1), height, width},
                                              /*align_corners=*/false);
  return at::grid_sampler(src, grid, /*interpolation_mode=bilinear*/ 0,
                          /*padding_mode=zeros*/ 0, /*align_corners=*/false);
}

/// Bilinear weights [B, n_out, n_src] along one axis, zero outside the
/// source: output sample i (pixel centre c_i = (2 i + 1) / n_out - 1 in
/// [-1, 1]) reads the source at the normalised point scale * c_i + shift
/// (scale, shift [B]), i.e. at pixel coordinate ((point + 1) n_src - 1) / 2
/// (align_corners = false, as grid_sampler).
torch::Tensor hat_weights(const torch::Tensor& scale, const torch::Tensor& shift, int64_t n_out, int64_t n_src) {
  const auto opts = scale.options();
  const auto centres = (2 * torch::arange(n_out, opts) + 1) / static_cast<double>(n_out) - 1;  // [n_out]
  const auto point = scale.unsqueeze(1) * centres + shift.unsqueeze(1);                      // [B, n_out]
  const auto source = ((point + 1) * static_cast<double>(n_src) - 1) / 2;
  return torch::relu(1 - (source.unsqueeze(2) - torch::arange(n_src, opts)).abs());
}

/// warp() for an axis-aligned theta [B, 2, 3] (zero off-diagonal): output
/// pixel centre (u, v) reads src at (theta00 u + theta02, theta11 v + theta12).
torch::Tensor separable_warp(const torch::Tensor& src, const torch::Tensor& theta, int64_t height, int64_t width) {
  const auto entry = [&](int64_t r, int64_t c) { return theta.select(1, r).select(1, c); };  // [B]
  const auto wy = hat_weights(entry(1, 1), entry(1, 2), height, src.size(2)).unsqueeze(1);  // [B, 1, H, Hs]
  const auto wx =
      hat_weights(entry(0, 0), entry(0, 2), width, src.size(3)).transpose(1, 2).unsqueeze(1);  // [B, 1, Ws, W]
  // The cheaper order: rows first costs H Ws (Hs + W) multiply-adds, columns first Hs W (Ws + H).
  const int64_t hs = src.size(2), ws = src.size(3);
  if (height * ws * (hs + width) <= hs * width * (ws + height)) return torch::matmul(torch::matmul(wy, src), wx);
  return torch::matmul(wy, torch::matmul(src, wx));
}

/// Whether to resample separably: for axis-aligned windows with more output
/// pixels than source pixels (placing a patch on a canvas). Measured on one
/// CPU thread (`ppl_bench_runtime`), forward + backward: placing 16 x 16
/// patches on 64 x 64 canvases is 8.7 times faster separably, 20 x 20 on
/// 50 x 50 3.7 times; cropping 20 x 20 glimpses of 50 x 50 images is 5.6
/// times slower, 16 x 16 of 64 x 64 2.1 times (the grid sampler's cost grows
/// with the output's pixels, the matrix products' with the source's).
bool separable_is_cheaper(const torch::Tensor& z_where, const torch::Tensor& src, int64_t height, int64_t width) {
  return z_where.size(1) != 6 && height * width > src.size(2) * src.size(3);
}

}  // namespace

torch::Tensor stn_theta(const torch::Tensor& z_where) {
  detail::check_rank("stn_theta", "z_where", z_where, 2, "[B, 3], [B, 4] or [B, 6]");  // before size(0)
  check_z_where("stn_theta", z_where, z_where.size(0), z_where, "z_where");
  return theta_of(z_where);
}

torch::Tensor stn_inverse_theta(const torch::Tensor& z_where) {
  detail::check_rank("stn_inverse_theta", "z_where", z_where, 2, "[B, 3], [B, 4] or [B, 6]");  // before size(0)
  check_z_where("stn_inverse_theta", z_where, z_where.size(0), z_where, "z_where");
  return inverse_theta_of(z_where);
}

torch::Tensor stn_crop(const torch::Tensor& images, const torch::Tensor& z_where, std::int64_t size) {
  constexpr std::string_view op = "stn_crop";
  detail::check_rank(op, "images", images, 4, "[B, C, H, W]");
  detail::check_floating(op, "images", images);
  check_z_where(op, z_where, images.size(0), images, "images");
  detail::check_positive_option(op, "size", size);
  const auto theta = theta_of(z_where);  // window point u reads the image at A u + t
  return separable_is_cheaper(z_where, images, size, size) ? separable_warp(images, theta, size, size)
                                                           : warp(images, theta, size, size);
}

torch::Tensor stn_place(const torch::Tensor& windows, const torch::Tensor& z_where,
                        std::int64_t height, std::int64_t width) {
  constexpr std::string_view op = "stn_place";
  detail::check_rank(op, "windows", windows, 4, "[B, C, K, K]");
  detail::check_floating(op, "windows", windows);
  check_z_where(op, z_where, windows.size(0), windows, "windows");
  detail::check_positive_option(op, "height", height);
  detail::check_positive_option(op, "width", width);
  const auto theta = inverse_theta_of(z_where);  // image point p reads the window at A^-1 (p - t)
  return separable_is_cheaper(z_where, windows, height, width) ? separable_warp(windows, theta, height, width)
                                                               : warp(windows, theta, height, width);
}

}  // namespace ppl::runtime
