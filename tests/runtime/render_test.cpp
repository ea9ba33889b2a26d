#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>

#include <torch/torch.h>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include <ppl/runtime/render.hpp>

#include "gradcheck.hpp"

namespace {

using ppl::runtime::render_strokes;
using ppl::runtime::RenderOptions;

// Eq. 10-13 written with plain composed ATen ops: materialises [B, T, S, H, W].
torch::Tensor reference_render(const torch::Tensor& points, const torch::Tensor& sigma,
                               const torch::Tensor& omega0, std::int64_t H, std::int64_t W,
                               std::int64_t S, bool detach_max = false) {
  const auto opts = points.options();
  const auto K = points.size(2), D = K - 1;
  const auto u = torch::linspace(0, 1, S, opts);
  std::vector<torch::Tensor> cols;
  double binom = 1;
  for (std::int64_t k = 0; k <= D; ++k) {
    if (k > 0) binom = binom * static_cast<double>(D - k + 1) / static_cast<double>(k);
    cols.push_back(binom * torch::pow(1 - u, static_cast<double>(D - k)) *
                   torch::pow(u, static_cast<double>(k)));
  }
  const auto bern = torch::stack(cols, 1);                          // [S, K]
  const auto curve = torch::einsum("sk,btkc->btsc", {bern, points});  // [B, T, S, 2]
  const auto xs = torch::arange(W, opts) / static_cast<double>(W);
  const auto ys = torch::arange(H, opts) / static_cast<double>(H);
  const auto dx = xs.view({1, 1, 1, 1, W}) - curve.select(-1, 0).unsqueeze(-1).unsqueeze(-1);
  const auto dy = ys.view({1, 1, 1, H, 1}) - curve.select(-1, 1).unsqueeze(-1).unsqueeze(-1);
  const auto s2 = (2 * sigma * sigma).unsqueeze(-1).unsqueeze(-1).unsqueeze(-1);
  const auto raw = torch::exp(-(dx * dx + dy * dy) / s2).sum(2);  // [B, T, H, W]
  auto m = std::get<0>(raw.flatten(2).max(-1)).unsqueeze(-1).unsqueeze(-1);
  if (detach_max) m = m.detach();
  return torch::tanh(raw / m / omega0.unsqueeze(-1).unsqueeze(-1));
}

struct Strokes {
  torch::Tensor points, sigma, omega0;
};

Strokes random_strokes(std::int64_t B, std::int64_t T, std::int64_t K, torch::Dtype dtype) {
  const auto opts = torch::TensorOptions().dtype(dtype);
  return {torch::rand({B, T, K, 2}, opts) * 0.8 + 0.1, torch::rand({B, T}, opts) * 0.05 + 0.03,
          torch::rand({B, T}, opts) * 0.6 + 0.2};
}

}  // namespace

TEST_CASE("render_strokes matches the composed-ops reference", "[runtime][render]") {
  torch::manual_seed(1);
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    for (const std::int64_t K : {1, 2, 4, 6}) {
      const auto s = random_strokes(3, 4, K, dtype);
      const auto got = render_strokes(s.points, s.sigma, s.omega0, {.height = 20, .width = 28, .samples = 37});
      const auto want = reference_render(s.points, s.sigma, s.omega0, 20, 28, 37);
      REQUIRE(got.sizes() == want.sizes());
      CHECK(got.dtype() == dtype);
      const double tol = dtype == torch::kFloat64 ? 1e-10 : 1e-5;
      CHECK(torch::allclose(got, want, tol, tol));
      CHECK(got.min().item<double>() >= 0);
      CHECK(got.max().item<double>() <= 1);
    }
  }
}

TEST_CASE("render_strokes in float32 with thin strokes, partly or wholly off the raster, matches float64",
          "[runtime][render][grad]") {
  // Thin strokes: each curve sample's splat is nonzero in float32 only
  // within 13.2 sigma of it, a window of the raster the kernels keep to.
  torch::manual_seed(15);
  const std::int64_t B = 4, T = 5, K = 4, H = 50, W = 50, S = 100;
  auto points = torch::rand({B, T, K, 2}) * 1.6 - 0.3;
  points[0][0] = points[0][0] + 2.0;  // wholly past the right and bottom edges
  points[1][0] = points[1][0] - 2.0;  // wholly before the left and top edges
  const auto sigma = torch::rand({B, T}) * 0.015 + 0.005;
  const auto omega0 = torch::rand({B, T}) * 0.6 + 0.2;
  const auto weights = torch::randn({B, T, H, W}, torch::kFloat64);
  const auto image = render_strokes(points, sigma, omega0, {.height = H, .width = W, .samples = S});
  const auto want = reference_render(points.to(torch::kFloat64), sigma.to(torch::kFloat64),
                                     omega0.to(torch::kFloat64), H, W, S);
  // The strokes off the raster render empty (the reference divides 0 by 0
  // there); the others agree up to float32 rounding of sums of S terms,
  // through tanh (slope at most 1).
  CHECK(image[0][0].abs().max().item<double>() == 0);
  CHECK(image[1][0].abs().max().item<double>() == 0);
  auto on = torch::ones({B, T}, torch::kBool);
  on[0][0] = false;
  on[1][0] = false;
  CHECK(torch::allclose(image.to(torch::kFloat64).index({on}), want.index({on}), 1e-5, 1e-5));
  // Gradients: the fused kernel with the max held fixed against autograd
  // through the float64 reference, relative to each gradient's largest entry.
  auto fused = [&] {
    auto p = points.clone().set_requires_grad(true);
    auto g = sigma.clone().set_requires_grad(true);
    auto o = omega0.clone().set_requires_grad(true);
    auto out = render_strokes(p, g, o, {.height = H, .width = W, .samples = S, .detach_max = true});
    (out.to(torch::kFloat64) * weights).sum().backward();
    return std::vector<torch::Tensor>{p.grad().to(torch::kFloat64), g.grad().to(torch::kFloat64),
                                      o.grad().to(torch::kFloat64)};
  }();
  const auto ref = [&] {
    auto p = points.to(torch::kFloat64).set_requires_grad(true);
    auto g = sigma.to(torch::kFloat64).set_requires_grad(true);
    auto o = omega0.to(torch::kFloat64).set_requires_grad(true);
    (reference_render(p, g, o, H, W, S, /*detach_max=*/true) * weights).sum().backward();
    return std::vector<torch::Tensor>{p.grad(), g.grad(), o.grad()};
  }();
  for (std::size_t i = 0; i < 3; ++i) {
    const auto got = fused[i].index({on}), expected = ref[i].index({on});
    const double scale = expected.abs().max().item<double>();
    INFO("input " << i << " max difference " << (got - expected).abs().max().item<double>() << " of " << scale);
    CHECK((got - expected).abs().max().item<double>() <= 1e-3 * scale);
    CHECK(fused[i].index({on.logical_not()}).abs().max().item<double>() == 0);  // empty strokes: zero gradients
  }
}

TEST_CASE("render_strokes uses the default 50 x 50 raster and 100 samples", "[runtime][render]") {
  torch::manual_seed(2);
  const auto s = random_strokes(2, 3, 4, torch::kFloat64);
  const auto got = render_strokes(s.points, s.sigma, s.omega0);
  CHECK(got.sizes() == torch::IntArrayRef({2, 3, 50, 50}));
  CHECK(torch::allclose(got, reference_render(s.points, s.sigma, s.omega0, 50, 50, 100), 1e-10, 1e-10));
}

TEST_CASE("render_strokes accepts non-contiguous inputs", "[runtime][render]") {
  torch::manual_seed(9);
  const auto s = random_strokes(3, 4, 4, torch::kFloat64);
  const auto points_t = s.points.transpose(0, 1).contiguous().transpose(0, 1);  // same values, other strides
  const auto sigma_t = s.sigma.t().contiguous().t();
  REQUIRE_FALSE(points_t.is_contiguous());
  const RenderOptions opts{.height = 10, .width = 10, .samples = 20};
  CHECK(torch::equal(render_strokes(points_t, sigma_t, s.omega0, opts), render_strokes(s.points, s.sigma, s.omega0, opts)));
}

TEST_CASE("render_strokes gradients match finite differences", "[runtime][render][grad]") {
  torch::manual_seed(3);
  const auto s = random_strokes(2, 2, 4, torch::kFloat64);
  const RenderOptions opts{.height = 7, .width = 9, .samples = 11};
  ppl_test::check_gradients(
      [&](const std::vector<torch::Tensor>& in) { return render_strokes(in[0], in[1], in[2], opts); },
      {s.points, s.sigma, s.omega0}, {"points", "sigma", "omega0"});
}

TEST_CASE("render_strokes backward agrees with autograd through the reference",
          "[runtime][render][grad]") {
  torch::manual_seed(4);
  const auto s = random_strokes(3, 5, 4, torch::kFloat64);
  auto run = [&](bool fused) {
    auto p = s.points.clone().set_requires_grad(true);
    auto g = s.sigma.clone().set_requires_grad(true);
    auto o = s.omega0.clone().set_requires_grad(true);
    auto out = fused ? render_strokes(p, g, o, {.height = 16, .width = 12, .samples = 30})
                     : reference_render(p, g, o, 16, 12, 30);
    torch::manual_seed(5);
    (out * torch::randn_like(out)).sum().backward();
    return std::vector<torch::Tensor>{p.grad(), g.grad(), o.grad()};
  };
  const auto fused = run(true), ref = run(false);
  for (std::size_t i = 0; i < 3; ++i) CHECK(torch::allclose(fused[i], ref[i], 1e-9, 1e-9));
}

TEST_CASE("render_strokes detach_max: the same image, gradients with each stroke's max held fixed",
          "[runtime][render][grad]") {
  torch::manual_seed(14);
  const auto s = random_strokes(3, 4, 4, torch::kFloat64);
  auto run = [&](bool fused, bool detach) {
    auto p = s.points.clone().set_requires_grad(true);
    auto g = s.sigma.clone().set_requires_grad(true);
    auto o = s.omega0.clone().set_requires_grad(true);
    auto out = fused ? render_strokes(p, g, o, {.height = 16, .width = 12, .samples = 30, .detach_max = detach})
                     : reference_render(p, g, o, 16, 12, 30, detach);
    torch::manual_seed(15);
    (out * torch::randn_like(out)).sum().backward();
    return std::vector<torch::Tensor>{out.detach(), p.grad(), g.grad(), o.grad()};
  };
  const auto held = run(true, true), ref = run(false, true), free = run(true, false);
  CHECK(torch::equal(held[0], free[0]));
  for (std::size_t i = 0; i < held.size(); ++i) CHECK(torch::allclose(held[i], ref[i], 1e-9, 1e-9));
  // The max's gradient is what tells them apart: points and sigma move it, omega0 does not.
  CHECK_FALSE(torch::allclose(held[1], free[1], 1e-6, 1e-6));
  CHECK_FALSE(torch::allclose(held[2], free[2], 1e-6, 1e-6));
  CHECK(torch::allclose(held[3], free[3], 1e-12, 1e-12));
}

TEST_CASE("a straight stroke is brightest on its line and dark far from it", "[runtime][render]") {
  // Cubic with control points evenly spaced on the diagonal from (0.2, 0.2) to (0.8, 0.8).
  const auto points = torch::tensor({0.2, 0.2, 0.4, 0.4, 0.6, 0.6, 0.8, 0.8}, torch::kFloat64).view({1, 1, 4, 2});
  const auto img = render_strokes(points, torch::full({1, 1}, 0.02, torch::kFloat64),
                                  torch::full({1, 1}, 0.5, torch::kFloat64))[0][0];
  // Pixel (h, w) sits at (w / 50, h / 50): the stroke covers rows and columns 10..40.
  for (std::int64_t h = 12; h <= 38; ++h) {
    const auto row = img[h];
    CHECK(row.argmax().item<std::int64_t>() == h);
    CHECK(row[h].item<double>() > 0.9);
  }
  CHECK(img[40][10].item<double>() < 1e-6);
  CHECK(img[10][40].item<double>() < 1e-6);
  CHECK(img[0][49].item<double>() < 1e-6);
  CHECK(img[25][35].item<double>() < 1e-3);
  CHECK(img[2][2].item<double>() < 1e-3);  // beyond the end point (0.2, 0.2)
}

TEST_CASE("a stroke whose splats nearly underflow renders empty, not NaN", "[runtime][render]") {
  // Vertical strokes just right of the raster (last column at x = 0.98) with
  // sigma 0.01: in float32 the largest splat exp(-d^2 / (2 sigma^2)) passes
  // from normal numbers through denormals (d ~ 0.13-0.144) to zero. 1 / (m omega0)
  // overflows in between, which once made 0 * inf = NaN pixels.
  const int64_t n = 51;
  auto d = torch::linspace(0.125, 0.15, n, torch::kFloat32);
  auto x = (0.98 + d).view({n, 1, 1}).expand({n, 2, 1});
  auto y = torch::tensor({0.2f, 0.8f}).view({1, 2, 1}).expand({n, 2, 1});
  auto points = torch::cat({x, y}, 2).view({n, 1, 2, 2}).clone().requires_grad_(true);
  auto sigma = torch::full({n, 1}, 0.01f).requires_grad_(true);
  auto omega0 = torch::full({n, 1}, 0.1f).requires_grad_(true);
  auto img = render_strokes(points, sigma, omega0, {.height = 50, .width = 50, .samples = 20});
  REQUIRE(torch::isfinite(img).all().item<bool>());
  // Each stroke is empty or normalised: its brightest pixel is tanh(1 / omega0).
  auto peak = img.amax({1, 2, 3});
  for (int64_t i = 0; i < n; ++i) {
    const double v = peak[i].item<double>();
    CHECK((v == 0.0 || v == Approx(std::tanh(10.0)).epsilon(1e-4)));
  }
  CHECK(peak[0].item<double>() > 0.99);   // near: visible
  CHECK(peak[n - 1].item<double>() == 0);  // far: empty
  img.sum().backward();
  CHECK(torch::isfinite(points.grad()).all().item<bool>());
  CHECK(torch::isfinite(sigma.grad()).all().item<bool>());
  CHECK(torch::isfinite(omega0.grad()).all().item<bool>());
}

TEST_CASE("render_strokes output is differentiable and runs on float32 batches", "[runtime][render]") {
  torch::manual_seed(6);
  const auto s = random_strokes(4, 3, 4, torch::kFloat32);
  auto p = s.points.clone().set_requires_grad(true);
  render_strokes(p, s.sigma, s.omega0).sum().backward();
  REQUIRE(p.grad().defined());
  CHECK(torch::isfinite(p.grad()).all().item<bool>());
}

TEST_CASE("render_strokes rejects bad arguments", "[runtime][render]") {
  const auto s = random_strokes(4, 5, 4, torch::kFloat32);
  CHECK_THROWS_AS(render_strokes(s.points, s.sigma.narrow(1, 0, 3), s.omega0), std::invalid_argument);
  CHECK_THROWS_WITH(render_strokes(s.points, s.sigma.narrow(1, 0, 3), s.omega0),
                    "render_strokes: sigma has shape [4, 3], but must be [B, T] = [4, 5]");
  CHECK_THROWS_WITH(render_strokes(s.points, s.sigma, s.omega0.narrow(0, 0, 2)),
                    "render_strokes: omega0 has shape [2, 5], but must be [B, T] = [4, 5]");
  CHECK_THROWS_WITH(render_strokes(s.points.flatten(2), s.sigma, s.omega0),
                    Catch::Contains("render_strokes: points has shape [4, 5, 8], but must be [B, T, D+1, 2]"));
  CHECK_THROWS_WITH(render_strokes(torch::rand({4, 5, 4, 3}), s.sigma, s.omega0),
                    Catch::Contains("points has shape [4, 5, 4, 3]"));
  auto bad_sigma = s.sigma.clone();
  bad_sigma[1][2] = -0.5;
  CHECK_THROWS_WITH(render_strokes(s.points, bad_sigma, s.omega0),
                    "render_strokes: sigma[1, 2] is -0.5, but must be positive");
  auto bad_omega = s.omega0.clone();
  bad_omega[3][0] = 0;
  CHECK_THROWS_WITH(render_strokes(s.points, s.sigma, bad_omega),
                    "render_strokes: omega0[3, 0] is 0, but must be positive");
  CHECK_THROWS_WITH(render_strokes(s.points, s.sigma.to(torch::kFloat64), s.omega0),
                    Catch::Contains("render_strokes: sigma has dtype Double, but must match points (Float)"));
  CHECK_THROWS_WITH(render_strokes(s.points, s.sigma, s.omega0, {.height = 0}),
                    "render_strokes: options.height is 0, but must be positive");
  CHECK_THROWS_AS(render_strokes(s.points.to(torch::kInt32), s.sigma, s.omega0), std::invalid_argument);
}

TEST_CASE("render_strokes leaves the calling thread's subnormal modes as they were", "[runtime][render]") {
#if defined(__SSE2__)
  // The CPU kernels flush subnormals while they run, on every thread they run
  // on, the caller's included; the caller's own arithmetic must not change.
  const auto s = random_strokes(4, 3, 4, torch::kFloat32);
  const unsigned before = _mm_getcsr();
  auto p = s.points.clone().set_requires_grad(true);
  render_strokes(p, s.sigma, s.omega0).sum().backward();
  CHECK(_mm_getcsr() == before);
  volatile float tiny = 1e-39f;  // subnormal in float32
  volatile float half = tiny * 0.5f;
  CHECK(half != 0.0f);
#else
  WARN("no SSE control register on this target: skipped");
#endif
}

TEST_CASE("render_strokes CUDA kernel matches its CPU twin", "[runtime][render][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no GPU: skipped");
    return;
  }
  torch::manual_seed(7);
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    const auto s = random_strokes(8, 6, 4, dtype);
    const bool detach = dtype == torch::kFloat32;  // the held-max backward on one of the two
    auto run = [&](torch::Device device) {
      auto p = ppl_test::leaf_on(s.points, device);
      auto g = ppl_test::leaf_on(s.sigma, device);
      auto o = ppl_test::leaf_on(s.omega0, device);
      auto out = render_strokes(p, g, o, {.height = 50, .width = 40, .samples = 100, .detach_max = detach});
      torch::manual_seed(8);
      const auto w = torch::randn(out.sizes(), out.options().device(torch::kCPU)).to(device);
      (out * w).sum().backward();
      return std::vector<torch::Tensor>{out.cpu(), p.grad().cpu(), g.grad().cpu(), o.grad().cpu()};
    };
    const auto cpu = run(torch::kCPU), gpu = run(torch::kCUDA);
    const double tol = dtype == torch::kFloat64 ? 1e-9 : 2e-3;
    for (std::size_t i = 0; i < cpu.size(); ++i) CHECK(torch::allclose(gpu[i], cpu[i], tol, tol));
  }
}
