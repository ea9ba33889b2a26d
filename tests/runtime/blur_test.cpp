#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>

#include <torch/torch.h>

#include <ppl/runtime/image.hpp>

#include "gradcheck.hpp"

using ppl::runtime::gaussian_blur;

TEST_CASE("gaussian_blur of a point keeps its mass and spreads it with the truncated Gaussian's variance",
          "[runtime][blur]") {
  const double sigma = 2.0;
  auto image = torch::zeros({41, 41}, torch::kFloat64);
  image[20][20] = 1.0;
  const auto out = gaussian_blur(image, sigma);
  REQUIRE(out.sizes() == image.sizes());
  CHECK(out.sum().item<double>() == Approx(1.0).epsilon(1e-12));
  // Along each axis the kernel is N(0, sigma^2) sampled on the integers
  // |t| <= 6: as a density on cells of width 1 it reaches 6.5 = a sigma, and
  // a Normal truncated at +-a sigma has variance sigma^2 (1 - 2 a phi(a) /
  // (2 Phi(a) - 1)); sampling on cells changes it by far less than the
  // tolerance at sigma = 2.
  const double a = 6.5 / sigma;
  const double phi = std::exp(-a * a / 2) / std::sqrt(2 * M_PI), mass = std::erf(a / std::sqrt(2.0));
  const double variance = sigma * sigma * (1 - 2 * a * phi / mass);
  const auto t = torch::arange(-20, 21, torch::kFloat64);
  const auto rows = out.sum(1), cols = out.sum(0);
  CHECK((rows * t * t).sum().item<double>() == Approx(variance).epsilon(0.005));
  CHECK((cols * t * t).sum().item<double>() == Approx(variance).epsilon(0.005));
  CHECK((rows * t).sum().item<double>() == Approx(0.0).margin(1e-12));
  // Separable and isotropic: the image is the product of its marginals,
  // and symmetric under the transpose.
  CHECK(torch::allclose(out, torch::outer(rows, cols), 1e-12, 1e-14));
  CHECK(torch::allclose(out, out.t(), 1e-12, 1e-14));
  // Nothing beyond ceil(3 sigma) = 6 pixels.
  CHECK(out[20][27].item<double>() == 0.0);
  CHECK(out[20][26].item<double>() > 0.0);
}

TEST_CASE("gaussian_blur: zeros outside the image, leading dimensions kept, sigma 0 the identity",
          "[runtime][blur]") {
  torch::manual_seed(31);
  const auto images = torch::rand({2, 3, 9, 11});
  const auto out = gaussian_blur(images, 1.3);
  REQUIRE(out.sizes() == images.sizes());
  CHECK(out.dtype() == torch::kFloat32);
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 3; ++c) CHECK(torch::allclose(out[b][c], gaussian_blur(images[b][c], 1.3), 1e-6, 1e-7));
  // A uniform image stays uniform in the middle and loses mass at its edges.
  const auto flat = gaussian_blur(torch::ones({21, 21}, torch::kFloat64), 1.0);
  CHECK(flat[10][10].item<double>() == Approx(1.0).epsilon(1e-12));
  CHECK(flat[0][10].item<double>() < 0.9);
  CHECK(gaussian_blur(images, 0.0).is_same(images));
}

TEST_CASE("gaussian_blur's gradient matches central differences", "[runtime][blur]") {
  torch::manual_seed(32);
  ppl_test::check_gradients([](const std::vector<torch::Tensor>& in) { return gaussian_blur(in[0], 0.8); },
                            {torch::rand({2, 6, 7}, torch::kFloat64)}, {"images"});
}

TEST_CASE("gaussian_blur refuses a bad sigma or tensor, naming it", "[runtime][blur]") {
  const auto image = torch::rand({5, 5});
  CHECK_THROWS_WITH(gaussian_blur(image, -1.0), Catch::Contains("sigma is -1"));
  CHECK_THROWS_WITH(gaussian_blur(image, std::nan("")), Catch::Contains("sigma is nan"));
  CHECK_THROWS_AS(gaussian_blur(torch::rand({5}), 1.0), std::invalid_argument);
  CHECK_THROWS_WITH(gaussian_blur(torch::ones({5, 5}, torch::kInt64), 1.0), Catch::Contains("floating point"));
}
