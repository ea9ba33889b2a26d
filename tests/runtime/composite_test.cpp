#include <catch2/catch.hpp>

#include <stdexcept>

#include <torch/torch.h>

#include <ppl/runtime/composite.hpp>
#include <ppl/runtime/render.hpp>

#include "gradcheck.hpp"

namespace {

using ppl::runtime::composite;

// Eq. 15 with plain composed ATen ops.
torch::Tensor reference_composite(const torch::Tensor& strokes, const torch::Tensor& omega1) {
  return torch::tanh(strokes.cumsum(1) / omega1.view({-1, 1, 1, 1}));
}

}  // namespace

TEST_CASE("composite matches the composed-ops reference", "[runtime][composite]") {
  torch::manual_seed(11);
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const auto strokes = torch::rand({3, 5, 6, 7}, torch::TensorOptions().dtype(dtype));
    const auto omega1 = torch::rand({3}, torch::TensorOptions().dtype(dtype)) + 0.3;
    const auto got = composite(strokes, omega1);
    CHECK(got.sizes() == strokes.sizes());
    const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-6;
    CHECK(torch::allclose(got, reference_composite(strokes, omega1), tol, tol));
  }
}

TEST_CASE("composite: the first canvas is one stroke, the last is all of them", "[runtime][composite]") {
  const auto strokes = torch::zeros({1, 3, 2, 2}, torch::kFloat64);
  strokes[0][0][0][0] = 0.5;
  strokes[0][2][0][0] = 0.25;
  strokes[0][1][1][1] = 1.0;
  const auto omega1 = torch::full({1}, 0.5, torch::kFloat64);
  const auto c = composite(strokes, omega1);
  CHECK(c[0][0][0][0].item<double>() == Approx(std::tanh(1.0)));
  CHECK(c[0][0][1][1].item<double>() == 0.0);
  CHECK(c[0][1][1][1].item<double>() == Approx(std::tanh(2.0)));
  CHECK(c[0][2][0][0].item<double>() == Approx(std::tanh(1.5)));
}

TEST_CASE("composite gradients match finite differences", "[runtime][composite][grad]") {
  torch::manual_seed(12);
  const auto strokes = torch::rand({2, 4, 3, 5}, torch::kFloat64);
  const auto omega1 = torch::rand({2}, torch::kFloat64) + 0.5;
  ppl_test::check_gradients([](const std::vector<torch::Tensor>& in) { return composite(in[0], in[1]); },
                            {strokes, omega1}, {"strokes", "omega1"});
}

TEST_CASE("composite backward agrees with autograd through the reference", "[runtime][composite][grad]") {
  torch::manual_seed(13);
  const auto strokes = torch::rand({4, 6, 10, 9}, torch::kFloat64);
  const auto omega1 = torch::rand({4}, torch::kFloat64) + 0.2;
  const auto weights = torch::randn({4, 6, 10, 9}, torch::kFloat64);
  auto run = [&](bool fused) {
    auto s = strokes.clone().set_requires_grad(true);
    auto o = omega1.clone().set_requires_grad(true);
    ((fused ? composite(s, o) : reference_composite(s, o)) * weights).sum().backward();
    return std::pair{s.grad(), o.grad()};
  };
  const auto [fs, fo] = run(true);
  const auto [rs, ro] = run(false);
  CHECK(torch::allclose(fs, rs, 1e-12, 1e-12));
  CHECK(torch::allclose(fo, ro, 1e-12, 1e-12));
}

TEST_CASE("render then composite: gradients through both match finite differences",
          "[runtime][composite][render][grad]") {
  torch::manual_seed(15);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto points = torch::rand({2, 3, 3, 2}, opts) * 0.8 + 0.1;
  const auto sigma = torch::rand({2, 3}, opts) * 0.05 + 0.05;
  const auto omega0 = torch::rand({2, 3}, opts) * 0.5 + 0.3;
  const auto omega1 = torch::rand({2}, opts) * 0.5 + 0.5;
  ppl_test::check_gradients(
      [](const std::vector<torch::Tensor>& in) {
        const auto strokes = ppl::runtime::render_strokes(in[0], in[1], in[2], {.height = 6, .width = 8, .samples = 9});
        return composite(strokes, in[3]);
      },
      {points, sigma, omega0, omega1}, {"points", "sigma", "omega0", "omega1"});
}

TEST_CASE("composite rejects bad arguments", "[runtime][composite]") {
  const auto strokes = torch::rand({4, 3, 5, 5});
  CHECK_THROWS_AS(composite(strokes, torch::ones({3})), std::invalid_argument);
  CHECK_THROWS_WITH(composite(strokes, torch::ones({3})),
                    "composite: omega1 has shape [3], but must be [B] = [4]");
  CHECK_THROWS_WITH(composite(strokes[0], torch::ones({4})),
                    Catch::Contains("composite: strokes has shape [3, 5, 5], but must be [B, T, H, W]"));
  auto bad = torch::ones({4});
  bad[2] = -1.0;
  CHECK_THROWS_WITH(composite(strokes, bad), "composite: omega1[2] is -1, but must be positive");
  CHECK_THROWS_AS(composite(strokes, torch::ones({4}, torch::kFloat64)), std::invalid_argument);
}

TEST_CASE("composite CUDA kernel matches its CPU twin", "[runtime][composite][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no GPU: skipped");
    return;
  }
  torch::manual_seed(14);
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const auto opts = torch::TensorOptions().dtype(dtype);
    const auto strokes = torch::rand({8, 6, 50, 50}, opts);
    const auto omega1 = torch::rand({8}, opts) + 0.3;
    const auto weights = torch::randn({8, 6, 50, 50}, opts);
    auto run = [&](torch::Device device) {
      auto s = ppl_test::leaf_on(strokes, device);
      auto o = ppl_test::leaf_on(omega1, device);
      auto c = composite(s, o);
      (c * weights.to(device)).sum().backward();
      return std::vector<torch::Tensor>{c.cpu(), s.grad().cpu(), o.grad().cpu()};
    };
    const auto cpu = run(torch::kCPU), gpu = run(torch::kCUDA);
    const double tol = dtype == torch::kFloat64 ? 1e-10 : 1e-3;
    for (std::size_t i = 0; i < cpu.size(); ++i) CHECK(torch::allclose(gpu[i], cpu[i], tol, tol));
  }
}
