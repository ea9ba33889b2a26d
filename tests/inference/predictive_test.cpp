// Predictive against the closed-form prior and posterior predictive of the
// conjugate Normal model.
#include <cmath>

#include <catch2/catch.hpp>

#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);
constexpr double kSigma = 0.5;

/// mu ~ N(0, 1); twice = 2 mu; x_n ~ N(mu, 0.5), observed when x is given.
torch::Tensor model(const torch::Tensor& x, int64_t n) {
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
  ppl::deterministic("twice", 2 * mu);
  auto data = ppl::plate("data", n);
  return ppl::sample("x", d::Normal(mu, kSigma), {.obs = x});
}

const std::vector<double> kData = {0.9, 1.4, 0.3, 1.1};

/// The exact posterior of mu given kData: precision 1 + N / s^2.
std::pair<double, double> posterior() {
  double sum = 0;
  for (double v : kData) sum += v;
  const double precision = 1 + static_cast<double>(kData.size()) / (kSigma * kSigma);
  return {sum / (kSigma * kSigma) / precision, 1 / precision};
}

void exact_guide(const torch::Tensor&, int64_t) {
  const auto [m, v] = posterior();
  ppl::sample("mu", d::Normal(torch::tensor(m, kF64), std::sqrt(v)));
}

/// |mean - m| within 5 standard errors and the variance within 5 of its
/// (Gaussian) standard errors, sqrt(2 / S) v.
void check_moments(const torch::Tensor& draws, double m, double v) {
  const auto s = static_cast<double>(draws.size(0));
  INFO("mean " << draws.mean().item<double>() << " vs " << m << ", variance " << draws.var().item<double>() << " vs "
               << v);
  CHECK(std::abs(draws.mean().item<double>() - m) < 5 * std::sqrt(v / s));
  CHECK(std::abs(draws.var().item<double>() - v) < 5 * std::sqrt(2 / s) * v);
}

}  // namespace

TEST_CASE("Predictive: the prior predictive of the conjugate model", "[predictive]") {
  torch::manual_seed(11);
  infer::Predictive predictive(model, {.num_samples = 4000});
  auto draws = predictive.run(torch::Tensor(), int64_t{3});
  CHECK(predictive.vectorised());
  REQUIRE(draws.at("mu").sizes() == torch::IntArrayRef({4000}));
  REQUIRE(draws.at("x").sizes() == torch::IntArrayRef({4000, 3}));
  check_moments(draws.at("mu"), 0.0, 1.0);
  check_moments(draws.at("x").select(1, 0), 0.0, 1.0 + kSigma * kSigma);
  // Deterministic sites come along.
  CHECK(torch::allclose(draws.at("twice"), 2 * draws.at("mu")));
  // The loop gives the same distribution, and the same shapes.
  infer::Predictive looped(model, {.num_samples = 2000, .parallel = false});
  auto again = looped.run(torch::Tensor(), int64_t{3});
  CHECK_FALSE(looped.vectorised());
  CHECK(again.at("x").sizes() == torch::IntArrayRef({2000, 3}));
  check_moments(again.at("x").select(1, 2), 0.0, 1.0 + kSigma * kSigma);
}

TEST_CASE("Predictive: the posterior predictive from a guide and from posterior samples", "[predictive]") {
  torch::manual_seed(12);
  const auto [m, v] = posterior();
  infer::Predictive from_guide(model, {.guide = exact_guide, .num_samples = 4000});
  auto draws = from_guide.run(torch::Tensor(), int64_t{2});
  check_moments(draws.at("mu"), m, v);
  check_moments(draws.at("x").select(1, 1), m, v + kSigma * kSigma);
  // Posterior samples in place of the guide.
  const auto mu = m + std::sqrt(v) * torch::randn({4000}, kF64);
  infer::Predictive from_samples(model, {.posterior_samples = {{"mu", mu}}});
  auto given = from_samples.run(torch::Tensor(), int64_t{2});
  CHECK(torch::equal(given.at("mu"), mu));
  check_moments(given.at("x").select(1, 0), m, v + kSigma * kSigma);
  infer::Predictive from_samples_looped(model, {.posterior_samples = {{"mu", mu.narrow(0, 0, 500)}}, .parallel = false});
  CHECK(torch::equal(from_samples_looped.run(torch::Tensor(), int64_t{2}).at("mu"), mu.narrow(0, 0, 500)));
  // Observed sites are returned only when named; an unknown name is an error.
  const auto x = torch::tensor(kData, kF64);
  infer::Predictive observed(model, {.guide = exact_guide, .num_samples = 5, .return_sites = {"x", "mu"}});
  auto out = observed.run(x, static_cast<int64_t>(kData.size()));
  CHECK(torch::equal(out.at("x")[3], x));
  infer::Predictive unknown(model, {.num_samples = 2, .return_sites = {"nope"}});
  CHECK_THROWS_WITH(unknown.run(x, int64_t{4}), Catch::Contains("no sample, observe or deterministic site \"nope\""));
  infer::Predictive both(model, {.guide = exact_guide, .posterior_samples = {{"mu", mu}}});
  CHECK_THROWS_WITH(both.run(x, int64_t{4}), Catch::Contains("either a guide or posterior_samples"));
}

TEST_CASE("Predictive falls back to one run per draw where the model does not broadcast", "[predictive]") {
  auto rigid = [](const torch::Tensor&, int64_t n) {
    auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
    ppl::deterministic("first", mu.view({1}));  // breaks with a leading sample dimension
    auto data = ppl::plate("data", n);
    ppl::sample("x", d::Normal(mu, kSigma));
  };
  infer::Predictive predictive(rigid, {.num_samples = 7});
  auto draws = predictive.run(torch::Tensor(), int64_t{2});
  CHECK_FALSE(predictive.vectorised());
  CHECK_THAT(predictive.note(), Catch::Contains("one run at a time"));
  CHECK(draws.at("first").sizes() == torch::IntArrayRef({7, 1}));
  CHECK(draws.at("x").sizes() == torch::IntArrayRef({7, 2}));
}

TEST_CASE("Predictive with an autoguide after SVI", "[predictive][autoguide]") {
  ppl::param_store().clear();
  torch::manual_seed(13);
  const auto x = torch::tensor(kData, kF64);
  const auto n = static_cast<int64_t>(kData.size());
  infer::AutoNormal guide(model);
  infer::Svi svi(model, guide, infer::Elbo({.particles = 4}), infer::Adam(0.05).decay_by(std::pow(0.01, 1.0 / 2000)));
  for (int i = 0; i < 2000; ++i) svi.step(x, n);
  const auto [m, v] = posterior();
  infer::Predictive predictive(model, {.guide = guide, .num_samples = 4000});
  auto draws = predictive.run(torch::Tensor(), int64_t{1});
  // The fitted guide is the exact posterior up to the fit: mean within 0.1
  // posterior sd (plus sampling error), variance within 15 %.
  const double sd = std::sqrt(v);
  CHECK(std::abs(draws.at("mu").mean().item<double>() - m) < 0.1 * sd + 5 * sd / std::sqrt(4000.0));
  CHECK(draws.at("mu").var().item<double>() == Approx(v).epsilon(0.15));
  CHECK(draws.at("twice").sizes() == torch::IntArrayRef({4000}));
  CHECK(draws.at("x").sizes() == torch::IntArrayRef({4000, 1}));
}
