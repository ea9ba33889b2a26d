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
  const auto z6 = torch::tensor({0.71, 0.13, 0.05, -0.09, 0.66, -0.07, 0.52, -0.11, 0.031, 0.08, 0.77, 0.043},
                                torch::kFloat64)
                      .view({2, 6});
  ppl_test::check_gradients([](const std::vector<torch::Tensor>& in) { return stn_crop(in[0], in[1], 5); },
                            {images, z6}, {"images", "z_where (affine)"});
  ppl_test::check_gradients(
      [](const std::vector<torch::Tensor>& in) { return stn_place(in[0], in[1], 6, 7); }, {windows, z6},
      {"windows", "z_where (affine)"});
}

TEST_CASE("stn theta and inverse theta compose to the identity", "[runtime][stn]") {
  const auto z = torch::tensor({0.7, 0.2, -0.1, 0.5, -0.3, 0.1}, torch::kFloat64).view({2, 3});
  for (const auto& zw : {z, torch::tensor({0.7, 0.2, 0.1, -0.1, 0.5, 0.3}, torch::kFloat64).view({1, 6})}) {
    const auto t = ppl::runtime::stn_theta(zw), ti = ppl::runtime::stn_inverse_theta(zw);
    const auto bottom = torch::tensor({0.0, 0.0, 1.0}, torch::kFloat64).view({1, 1, 3}).expand({zw.size(0), 1, 3});
    const auto prod = torch::matmul(torch::cat({t, bottom}, 1), torch::cat({ti, bottom}, 1));
    CHECK(torch::allclose(prod, torch::eye(3, torch::kFloat64).expand_as(prod), 1e-12, 1e-12));
  }
}

TEST_CASE("stn rejects bad arguments", "[runtime][stn]") {
  const auto images = torch::rand({3, 1, 8, 8});
  CHECK_THROWS_AS(stn_crop(images, torch::ones({2, 3}), 4), std::invalid_argument);
  CHECK_THROWS_WITH(stn_crop(images, torch::ones({3, 4}), 4),
                    "stn_crop: z_where has shape [3, 4], but must be [B, 3] or [B, 6] with B = 3");
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
