// The autoguides against the closed-form posterior of Bayesian linear
// regression, a local-latent model, and a model with constrained latents.
#include <cmath>

#include <catch2/catch.hpp>

#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);
constexpr double kNoise = 0.5;

/// w ~ N(0, I_3), y_n ~ N(x_n . w, 0.5^2).
void regression(const torch::Tensor& x, const torch::Tensor& y) {
  auto w = ppl::sample("w", d::Normal(torch::zeros({3}, kF64), 1.0).to_event(1));
  auto data = ppl::plate("data", x.size(0));
  ppl::sample("y", d::Normal(x.matmul(w), kNoise), {.obs = y});
}

struct Posterior {
  torch::Tensor mean, covariance, precision;
};
/// The exact posterior: precision I + X^T X / s^2, mean cov X^T y / s^2.
Posterior exact_posterior(const torch::Tensor& x, const torch::Tensor& y) {
  const auto precision = torch::eye(3, kF64) + x.t().matmul(x) / (kNoise * kNoise);
  const auto covariance = torch::inverse(precision);
  return {covariance.matmul(x.t().matmul(y)) / (kNoise * kNoise), covariance, precision};
}

struct Data {
  torch::Tensor x, y;
};
Data regression_data() {
  torch::manual_seed(7);
  auto x = torch::randn({30, 3}, kF64);
  auto y = x.matmul(torch::tensor({1.0, -0.5, 0.25}, kF64)) + kNoise * torch::randn({30}, kF64);
  return {x, y};
}

/// SVI with a rate decaying 100-fold over `steps`.
template <class G>
void fit(G& guide, const Data& data, int steps, double lr, int particles) {
  infer::Svi svi(regression, guide, infer::Elbo({.particles = particles}),
                 infer::Adam(lr).decay_by(std::pow(0.01, 1.0 / steps)));
  for (int i = 0; i < steps; ++i) svi.step(data.x, data.y);
}

}  // namespace

TEST_CASE("AutoNormal recovers the mean-field optimum of a Gaussian posterior", "[autoguide]") {
  ppl::param_store().clear();
  const auto data = regression_data();
  const auto exact = exact_posterior(data.x, data.y);
  infer::AutoNormal guide(regression);
  CHECK_FALSE(guide.built());
  CHECK_THROWS_WITH(guide.median(), Catch::Contains("AutoNormal: the guide has not seen the model yet"));
  fit(guide, data, 2500, 0.05, 4);
  REQUIRE(guide.built());
  const auto median = guide.median().at("w");
  const auto sd = exact.covariance.diagonal().sqrt();
  INFO("AutoNormal " << median << " exact " << exact.mean);
  // Means within 0.1 posterior sd; the mean-field sd is 1 / sqrt(precision_ii).
  CHECK(((median - exact.mean).abs() / sd).max().item<double>() < 0.1);
  const auto [loc, scale] = guide.loc_scale("w");
  const auto mean_field_sd = exact.precision.diagonal().rsqrt();
  CHECK(((scale.detach() - mean_field_sd).abs() / mean_field_sd).max().item<double>() < 0.1);
  CHECK(ppl::param_store().contains("AutoNormal.locs.w"));
  // Quantiles: the 50 % quantile is the median, the others straddle it.
  const auto q = guide.quantiles({0.1, 0.5, 0.9}).at("w");
  REQUIRE(q.sizes() == torch::IntArrayRef({3, 3}));
  CHECK(torch::allclose(q[1], median));
  CHECK((q[0] < q[1]).all().item<bool>());
  CHECK((q[2] > q[1]).all().item<bool>());
  // sample_posterior: draws with the guide's moments.
  torch::manual_seed(1);
  const auto draws = guide.sample_posterior(4000).at("w");
  REQUIRE(draws.sizes() == torch::IntArrayRef({4000, 3}));
  CHECK(((draws.mean(0) - median).abs() / mean_field_sd).max().item<double>() < 5.0 / std::sqrt(4000.0));
}

TEST_CASE("AutoMultivariateNormal recovers the full posterior covariance", "[autoguide]") {
  ppl::param_store().clear();
  const auto data = regression_data();
  const auto exact = exact_posterior(data.x, data.y);
  infer::AutoMultivariateNormal guide(regression);
  fit(guide, data, 3000, 0.05, 8);
  CHECK(guide.latent_dim() == 3);
  const auto sd = exact.covariance.diagonal().sqrt();
  const auto median = guide.median().at("w");
  INFO("AutoMultivariateNormal " << median << " exact " << exact.mean);
  CHECK(((median - exact.mean).abs() / sd).max().item<double>() < 0.1);
  const auto tril = ppl::param_store().at("AutoMultivariateNormal.scale_tril").detach();
  const auto covariance = tril.matmul(tril.t());
  INFO("covariance " << covariance << " exact " << exact.covariance);
  CHECK((covariance - exact.covariance).norm().item<double>() < 0.1 * exact.covariance.norm().item<double>());
}

TEST_CASE("AutoLowRankMultivariateNormal and AutoDelta on the regression", "[autoguide]") {
  const auto data = regression_data();
  const auto exact = exact_posterior(data.x, data.y);
  const auto sd = exact.covariance.diagonal().sqrt();
  {
    ppl::param_store().clear();
    infer::AutoLowRankMultivariateNormal guide(regression, 2);
    fit(guide, data, 3000, 0.05, 8);
    const auto median = guide.median().at("w");
    CHECK(((median - exact.mean).abs() / sd).max().item<double>() < 0.1);
    const auto q = guide.quantiles({0.5}).at("w");
    CHECK(torch::allclose(q[0], median));
  }
  {
    // The posterior is Gaussian: its mode is its mean.
    ppl::param_store().clear();
    infer::AutoDelta guide(regression);
    fit(guide, data, 1500, 0.05, 1);
    const auto map = guide.median().at("w");
    INFO("AutoDelta " << map << " exact " << exact.mean);
    CHECK(((map - exact.mean).abs() / sd).max().item<double>() < 0.02);
  }
  CHECK_THROWS_WITH(infer::AutoLowRankMultivariateNormal(regression, 0), Catch::Contains("rank is 0"));
}

TEST_CASE("autoguides give local latents per-element parameters inside the plates", "[autoguide]") {
  ppl::param_store().clear();
  // z_n ~ N(0, 1), x_n ~ N(z_n, 0.5): posterior N(x_n / 1.25, 0.5 / sqrt(1.25)).
  auto model = [](const torch::Tensor& x) {
    auto data = ppl::plate("data", x.size(0));
    auto z = ppl::sample("z", d::Normal(torch::zeros({}, kF64), 1.0));
    ppl::sample("x", d::Normal(z, 0.5), {.obs = x});
  };
  const auto x = torch::tensor({-1.0, 0.2, 1.4, 2.0}, kF64);
  infer::AutoNormal guide(model);
  infer::Svi svi(model, guide, infer::Elbo({.particles = 4}), infer::Adam(0.05).decay_by(std::pow(0.01, 1.0 / 2000)));
  for (int i = 0; i < 2000; ++i) svi.step(x);
  CHECK(ppl::param_store().at("AutoNormal.locs.z").sizes() == torch::IntArrayRef({4}));
  const auto median = guide.median().at("z");
  const double sd = 0.5 / std::sqrt(1.25);
  CHECK(((median - x / 1.25).abs()).max().item<double>() < 0.1 * sd);
  // The guide's site lies in the same plate as the model's.
  auto q = ppl::trace(guide, x);
  REQUIRE(q.site("z").plates.size() == 1);
  CHECK(q.site("z").plates[0].name == "data");
}

TEST_CASE("constrained latents train in unconstrained space and their medians lie in the support", "[autoguide]") {
  // s ~ HalfNormal(1), p ~ Dirichlet(1, 1, 1); y_n ~ N(0, s), k_n ~ Categorical(p).
  auto model = [](const torch::Tensor& y, const torch::Tensor& k) {
    auto s = ppl::sample("s", d::HalfNormal(torch::tensor(1.0, kF64)));
    auto p = ppl::sample("p", d::Dirichlet(torch::ones({3}, kF64)));
    auto data = ppl::plate("data", y.size(0));
    ppl::sample("y", d::Normal(torch::zeros({}, kF64), s), {.obs = y});
    ppl::sample("k", d::Categorical(p), {.obs = k});
  };
  torch::manual_seed(3);
  const auto y = 2.0 * torch::randn({50}, kF64);
  const auto k = torch::multinomial(torch::tensor({0.6, 0.3, 0.1}, kF64), 50, true);
  for (int which = 0; which < 2; ++which) {
    ppl::param_store().clear();
    std::map<std::string, torch::Tensor> median;
    if (which == 0) {
      infer::AutoNormal guide(model);
      infer::Svi svi(model, guide, infer::Elbo({.particles = 2}), infer::Adam(0.05));
      for (int i = 0; i < 800; ++i) CHECK_FALSE(std::isnan(svi.step(y, k)));
      median = guide.median();
    } else {
      infer::AutoMultivariateNormal guide(model);
      infer::Svi svi(model, guide, infer::Elbo({.particles = 2}), infer::Adam(0.05));
      for (int i = 0; i < 800; ++i) CHECK_FALSE(std::isnan(svi.step(y, k)));
      median = guide.median();
    }
    INFO("guide " << which << ": s " << median.at("s") << " p " << median.at("p"));
    CHECK(median.at("s").item<double>() > 0);
    CHECK(ppl::constraints::simplex.check(median.at("p")).all().item<bool>());
    // The data: sd about 2, frequencies about 0.6, 0.3, 0.1.
    CHECK(median.at("s").item<double>() == Approx(2.0).margin(0.5));
    CHECK(median.at("p")[0].item<double>() > median.at("p")[2].item<double>());
  }
}

TEST_CASE("autoguides name what they cannot do", "[autoguide][errors]") {
  ppl::param_store().clear();
  auto discrete = [](const torch::Tensor&) { ppl::sample("c", d::Bernoulli(torch::tensor(0.3, kF64))); };
  infer::AutoNormal guide(discrete);
  CHECK_THROWS_WITH(guide(torch::Tensor()), Catch::Contains("AutoNormal: site \"c\"") &&
                                                Catch::Contains("discrete support"));
  auto subsampled = [](const torch::Tensor& x) {
    auto data = ppl::plate("data", 10, {.subsample_size = 3});
    ppl::sample("z", d::Normal(torch::zeros({}, kF64), 1.0));
  };
  infer::AutoNormal sub(subsampled);
  CHECK_THROWS_WITH(sub(torch::Tensor()), Catch::Contains("subsampled"));
  auto model = [](const torch::Tensor&) { ppl::sample("mu", d::Normal(torch::zeros({2}, kF64), 1.0).to_event(1)); };
  infer::AutoNormal bad_init(model, infer::AutoGuideOptions{}.with_init_value("mu", torch::zeros({3}, kF64)));
  CHECK_THROWS_WITH(bad_init(torch::Tensor()), Catch::Contains("init value has shape [3]"));
  // A misnamed guide site: the message names both sides.
  auto named_model = [](const torch::Tensor&) { ppl::sample("mu", d::Normal(0.0, 1.0)); };
  auto misnamed_guide = [](const torch::Tensor&) { ppl::sample("mu_", d::Normal(0.0, 1.0)); };
  CHECK_THROWS_WITH(infer::Elbo().loss(named_model, misnamed_guide, torch::Tensor()),
                    Catch::Contains("model site \"mu\"") && Catch::Contains("has no guide site") &&
                        Catch::Contains("guide site \"mu_\"") && Catch::Contains("never visited by the model"));
}
