#include <catch2/catch.hpp>

#include <stdexcept>

#include <torch/torch.h>

#include <ppl/runtime/stn.hpp>

#include "gradcheck.hpp"

namespace {

using ppl::runtime::stn_crop;
using ppl::runtime::stn_place;

torch::Tensor z3(double s, double x, double y) {
  return torch::tensor({s, x, y}, torch::kFloat64).view({1, 3});
}

}  // namespace

TEST_CASE("stn: crop then place with the identity window gives back the input", "[runtime][stn]") {
  torch::manual_seed(21);
  const auto images = torch::rand({2, 3, 12, 12}, torch::kFloat64);
  const auto z = torch::tensor({1.0, 0.0, 0.0, 1.0, 0.0, 0.0}, torch::kFloat64).view({2, 3});
  const auto window = stn_crop(images, z, 12);
  CHECK(torch::allclose(window, images, 1e-12, 1e-12));
  CHECK(torch::allclose(stn_place(window, z, 12, 12), images, 1e-12, 1e-12));
  const auto z6 = torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 0.0}, torch::kFloat64).view({1, 6}).expand({2, 6});
  CHECK(torch::allclose(stn_place(stn_crop(images, z6, 12), z6, 12, 12), images, 1e-12, 1e-12));
}

TEST_CASE("stn_crop with a known shift matches integer-shifted pixels", "[runtime][stn]") {
  torch::manual_seed(22);
  const std::int64_t N = 12, kx = 3, ky = -2;
  const auto images = torch::rand({1, 1, N, N}, torch::kFloat64);
  // A shift of 2 k / N in normalised coordinates moves the window k pixels.
  const auto win = stn_crop(images, z3(1.0, 2.0 * kx / N, 2.0 * ky / N), N);
  for (std::int64_t i = 0; i < N; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      const auto si = i + ky, sj = j + kx;
      const bool inside = si >= 0 && si < N && sj >= 0 && sj < N;
      const double want = inside ? images[0][0][si][sj].item<double>() : 0.0;
      CHECK(win[0][0][i][j].item<double>() == Approx(want).margin(1e-12));
    }
}

TEST_CASE("stn: a half-size window crops the matching quadrant and places it back", "[runtime][stn]") {
  torch::manual_seed(23);
  const auto images = torch::rand({1, 2, 8, 8}, torch::kFloat64);
  // Window centre (0.5, 0.5), half size: the bottom-right 4 x 4 quadrant.
  const auto z = z3(0.5, 0.5, 0.5);
  const auto win = stn_crop(images, z, 4);
  CHECK(torch::allclose(win, images.slice(2, 4, 8).slice(3, 4, 8), 1e-12, 1e-12));
  const auto placed = stn_place(win, z, 8, 8);
  CHECK(torch::allclose(placed.slice(2, 4, 8).slice(3, 4, 8), win, 1e-12, 1e-12));
  CHECK(placed.slice(2, 0, 4).abs().max().item<double>() == 0.0);
}

TEST_CASE("stn gradients match finite differences", "[runtime][stn][grad]") {
  torch::manual_seed(24);
  const auto images = torch::rand({2, 2, 6, 7}, torch::kFloat64);
  const auto z = torch::tensor({0.63, 0.071, -0.113, 0.81, -0.093, 0.052}, torch::kFloat64).view({2, 3});
  ppl_test::check_gradients([](const std::vector<torch::Tensor>& in) { return stn_crop(in[0], in[1], 5); },
                            {images, z}, {"images", "z_where"});
  const auto windows = torch::rand({2, 2, 5, 5}, torch::kFloat64);
  ppl_test::check_gradients(
      [](const std::vector<torch::Tensor>& in) { return stn_place(in[0], in[1], 6, 7); }, {windows, z},
      {"windows", "z_where"});
  const auto z4 = torch::tensor({0.58, 0.83, 0.061, -0.097, 0.91, 0.47, -0.12, 0.043}, torch::kFloat64).view({2, 4});
  for (const std::int64_t side : {5, 8})  // the grid sampler's path and the separable one
    ppl_test::check_gradients([side](const std::vector<torch::Tensor>& in) { return stn_crop(in[0], in[1], side); },
                              {images, z4}, {"images", "z_where (two scales)"});
  ppl_test::check_gradients(
      [](const std::vector<torch::Tensor>& in) { return stn_place(in[0], in[1], 6, 7); }, {windows, z4},
      {"windows", "z_where (two scales)"});
  const auto z6 = torch::tensor({0.71, 0.13, 0.05, -0.09, 0.66, -0.07, 0.52, -0.11, 0.031, 0.08, 0.77, 0.043},
                                torch::kFloat64)
                      .view({2, 6});
  ppl_test::check_gradients([](const std::vector<torch::Tensor>& in) { return stn_crop(in[0], in[1], 5); },
                            {images, z6}, {"images", "z_where (affine)"});
  ppl_test::check_gradients(
      [](const std::vector<torch::Tensor>& in) { return stn_place(in[0], in[1], 6, 7); }, {windows, z6},
      {"windows", "z_where (affine)"});
}

TEST_CASE("stn: axis-aligned windows (separable weights) match the affine grid sampler", "[runtime][stn]") {
  torch::manual_seed(26);
  // [B, 4] (sx, sy, x, y) and [B, 3] (s, x, y) against the same windows as [B, 6]
  // (sx, 0, x, 0, sy, y), which take ATen's grid sampler: values and gradients.
  const auto z4 = torch::tensor({0.43, 0.61, -0.27, 0.18, 1.37, 0.52, 0.11, -0.64, 0.29, 0.29, 0.83, 0.77},
                                torch::kFloat64)
                      .view({3, 4});
  const auto zero = torch::zeros({3}, torch::kFloat64);
  const auto z6 = torch::stack({z4.select(1, 0), zero, z4.select(1, 2), zero, z4.select(1, 1), z4.select(1, 3)}, 1);
  const auto z3 = torch::stack({z4.select(1, 0), z4.select(1, 2), z4.select(1, 3)}, 1);
  const auto z6_square =
      torch::stack({z4.select(1, 0), zero, z4.select(1, 2), zero, z4.select(1, 0), z4.select(1, 3)}, 1);
  const auto images = torch::rand({3, 2, 11, 9}, torch::kFloat64);
  const auto windows = torch::rand({3, 2, 7, 7}, torch::kFloat64);
  // Outputs with more pixels than the source take the separable path, the others the grid sampler.
  for (const auto& [axis, affine] : {std::pair{z4, z6}, std::pair{z3, z6_square}})
    for (const std::int64_t side : {6, 14}) {
      const std::int64_t height = side == 6 ? 5 : 13, width = side == 6 ? 4 : 10;
      CHECK(torch::allclose(stn_crop(images, axis, side), stn_crop(images, affine, side), 1e-12, 1e-12));
      CHECK(torch::allclose(stn_place(windows, axis, height, width), stn_place(windows, affine, height, width), 1e-12,
                            1e-12));
      // Gradients of a weighted sum, in the pixels and in the window.
      for (bool place : {false, true}) {
        auto run = [&](const torch::Tensor& z) {
          auto src = (place ? windows : images).clone().requires_grad_(true);
          auto zz = z.clone().requires_grad_(true);
          auto out = place ? stn_place(src, zz, height, width) : stn_crop(src, zz, side);
          const auto weights = torch::linspace(-1, 2, out.numel(), torch::kFloat64).view(out.sizes());
          (out * weights).sum().backward();
          return std::pair{src.grad(), zz.grad()};
        };
        const auto [g_src, g_axis] = run(axis);
        const auto [g_src6, g_affine] = run(affine);
        CHECK(torch::allclose(g_src, g_src6, 1e-10, 1e-10));
        if (axis.size(1) == 4) {
          // d/d(sx, sy, x, y) are d/d(a, d, tx, ty) of the affine form.
          const auto mapped = torch::stack({g_affine.select(1, 0), g_affine.select(1, 4), g_affine.select(1, 2),
                                            g_affine.select(1, 5)}, 1);
          CHECK(torch::allclose(g_axis, mapped, 1e-9, 1e-9));
        } else {
          // d/ds is d/da + d/dd: one scale for both axes.
          const auto mapped = torch::stack({g_affine.select(1, 0) + g_affine.select(1, 4), g_affine.select(1, 2),
                                            g_affine.select(1, 5)}, 1);
          CHECK(torch::allclose(g_axis, mapped, 1e-9, 1e-9));
        }
      }
    }
}

TEST_CASE("stn theta and inverse theta compose to the identity", "[runtime][stn]") {
  const auto z = torch::tensor({0.7, 0.2, -0.1, 0.5, -0.3, 0.1}, torch::kFloat64).view({2, 3});
  for (const auto& zw : {z, torch::tensor({0.7, 0.2, 0.1, -0.1, 0.5, 0.3}, torch::kFloat64).view({1, 6}),
                         torch::tensor({0.7, 1.3, 0.1, -0.4}, torch::kFloat64).view({1, 4})}) {
    const auto t = ppl::runtime::stn_theta(zw), ti = ppl::runtime::stn_inverse_theta(zw);
    const auto bottom = torch::tensor({0.0, 0.0, 1.0}, torch::kFloat64).view({1, 1, 3}).expand({zw.size(0), 1, 3});
    const auto prod = torch::matmul(torch::cat({t, bottom}, 1), torch::cat({ti, bottom}, 1));
    CHECK(torch::allclose(prod, torch::eye(3, torch::kFloat64).expand_as(prod), 1e-12, 1e-12));
  }
}

TEST_CASE("stn rejects bad arguments", "[runtime][stn]") {
  const auto images = torch::rand({3, 1, 8, 8});
  CHECK_THROWS_AS(stn_crop(images, torch::ones({2, 3}), 4), std::invalid_argument);
  CHECK_THROWS_WITH(stn_crop(images, torch::ones({3, 5}), 4),
                    "stn_crop: z_where has shape [3, 5], but must be [B, 3], [B, 4] or [B, 6] with B = 3");
  auto z4 = torch::ones({3, 4});
  z4[2][1] = 0.0;
  CHECK_THROWS_WITH(stn_place(images, z4, 8, 8), "stn_place: z_where y scale[2] is 0, but must be positive");
  CHECK_THROWS_WITH(stn_crop(images[0], torch::ones({3, 3}), 4),
                    Catch::Contains("stn_crop: images has shape [1, 8, 8], but must be [B, C, H, W]"));
  auto z = torch::ones({3, 3});
  z[1][0] = -0.5;
  CHECK_THROWS_WITH(stn_crop(images, z, 4), "stn_crop: z_where scale[1] is -0.5, but must be positive");
  CHECK_THROWS_WITH(stn_place(images, torch::zeros({3, 6}), 8, 8),
                    "stn_place: z_where |det A|[0] is 0, but must be positive");
  CHECK_THROWS_WITH(stn_crop(images, torch::ones({3, 3}), 0), "stn_crop: size is 0, but must be positive");
}

TEST_CASE("stn on CUDA matches the CPU", "[runtime][stn][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no GPU: skipped");
    return;
  }
  torch::manual_seed(25);
  const auto images = torch::rand({4, 2, 20, 20}, torch::kFloat64);
  const auto z = torch::rand({4, 3}, torch::kFloat64) * 0.5 + 0.3;
  const auto cpu = stn_place(stn_crop(images, z, 9), z, 20, 20);
  const auto gpu = stn_place(stn_crop(images.cuda(), z.cuda(), 9), z.cuda(), 20, 20).cpu();
  CHECK(torch::allclose(cpu, gpu, 1e-9, 1e-9));
}
