// Spatial transformer on ATen's affine_grid_generator and grid_sampler: both
// are fused kernels with their own backward on CPU and CUDA, and the only
// intermediate is the [B, K, K, 2] sampling grid, the size of the output's
// coordinates, so a hand-written kernel would gain nothing in memory.
#include <ppl/runtime/stn.hpp>

#include <ATen/ATen.h>

#include "../render/arg_checks.hpp"

namespace ppl::runtime {
namespace {

void check_z_where(std::string_view op, const torch::Tensor& z_where, std::int64_t batch,
                   const torch::Tensor& ref, std::string_view ref_arg) {
  using namespace detail;
  check_rank(op, "z_where", z_where, 2, "[B, 3] or [B, 6]");
  if (z_where.size(0) != batch || (z_where.size(1) != 3 && z_where.size(1) != 6))
    fail(fmt::format("{}: z_where has shape {}, but must be [B, 3] or [B, 6] with B = {}", op,
                     shape_string(z_where.sizes()), batch));
  check_like(op, "z_where", z_where, ref_arg, ref);
  const auto z = z_where.detach();
  if (z.size(1) == 3) {
    check_positive(op, "z_where scale", z.select(1, 0));
  } else {
    const auto det = z.select(1, 0) * z.select(1, 4) - z.select(1, 1) * z.select(1, 3);
    check_positive(op, "z_where |det A|", det.abs());
  }
}

torch::Tensor theta_of(const torch::Tensor& z) {
  const auto B = z.size(0);
  if (z.size(1) == 6) return z.reshape({B, 2, 3});
  const auto s = z.select(1, 0), x = z.select(1, 1), y = z.select(1, 2), zero = torch::zeros_like(s);
  return torch::stack({s, zero, x, zero, s, y}, 1).reshape({B, 2, 3});
}

torch::Tensor inverse_theta_of(const torch::Tensor& z) {
  const auto B = z.size(0);
  if (z.size(1) == 3) {
    const auto s = z.select(1, 0), x = z.select(1, 1), y = z.select(1, 2), zero = torch::zeros_like(s);
    const auto r = 1 / s;
    return torch::stack({r, zero, -x * r, zero, r, -y * r}, 1).reshape({B, 2, 3});
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

}  // namespace

torch::Tensor stn_theta(const torch::Tensor& z_where) {
  detail::check_rank("stn_theta", "z_where", z_where, 2, "[B, 3] or [B, 6]");
  check_z_where("stn_theta", z_where, z_where.size(0), z_where, "z_where");
  return theta_of(z_where);
}

torch::Tensor stn_inverse_theta(const torch::Tensor& z_where) {
  detail::check_rank("stn_inverse_theta", "z_where", z_where, 2, "[B, 3] or [B, 6]");
  check_z_where("stn_inverse_theta", z_where, z_where.size(0), z_where, "z_where");
  return inverse_theta_of(z_where);
}

torch::Tensor stn_crop(const torch::Tensor& images, const torch::Tensor& z_where, std::int64_t size) {
  constexpr std::string_view op = "stn_crop";
  detail::check_rank(op, "images", images, 4, "[B, C, H, W]");
  detail::check_floating(op, "images", images);
  check_z_where(op, z_where, images.size(0), images, "images");
  detail::check_positive_option(op, "size", size);
  return warp(images, theta_of(z_where), size, size);
}

torch::Tensor stn_place(const torch::Tensor& windows, const torch::Tensor& z_where,
                        std::int64_t height, std::int64_t width) {
  constexpr std::string_view op = "stn_place";
  detail::check_rank(op, "windows", windows, 4, "[B, C, K, K]");
  detail::check_floating(op, "windows", windows);
  check_z_where(op, z_where, windows.size(0), windows, "windows");
  detail::check_positive_option(op, "height", height);
  detail::check_positive_option(op, "width", width);
  return warp(windows, inverse_theta_of(z_where), height, width);
}

}  // namespace ppl::runtime
