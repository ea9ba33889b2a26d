// Importance sampling against the closed-form evidence of a conjugate model,
// and the IWAE bound.
#include <cmath>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);
constexpr double kSigma = 0.5;

// z_n ~ N(0, 1), x_n | z_n ~ N(z_n, sigma): p(x_n) = N(x_n; 0, sqrt(1 + sigma^2)).
void model(const torch::Tensor& x) {
  auto data = ppl::plate("data", x.size(0));
  auto z = ppl::sample("z", d::Normal(torch::zeros({x.size(0)}, kF64), 1.0));
  ppl::observe("x", d::Normal(z, kSigma), x);
}
void prior_guide(const torch::Tensor& x) {
  auto data = ppl::plate("data", x.size(0));
  ppl::sample("z", d::Normal(torch::zeros({x.size(0)}, kF64), 1.0));
}
// The exact posterior: N(x / (1 + sigma^2), sigma / sqrt(1 + sigma^2)).
void posterior_guide(const torch::Tensor& x) {
  auto data = ppl::plate("data", x.size(0));
  const double s2 = kSigma * kSigma;
  ppl::sample("z", d::Normal(x / (1 + s2), kSigma / std::sqrt(1 + s2)));
}

double log_normal(double x, double sd) { return -0.5 * std::pow(x / sd, 2) - std::log(sd) - 0.5 * std::log(2 * M_PI); }

const std::vector<double> kData = {-1.3, 0.1, 0.8, 2.2};

}  // namespace

TEST_CASE("log_marginal matches the closed-form evidence within its Monte Carlo error", "[importance]") {
  torch::manual_seed(21);
  const auto x = torch::tensor(kData, kF64);
  const int64_t k = 4000;
  auto prior = infer::log_marginal(model, prior_guide, x, {.particles = k, .chunk = 512});
  REQUIRE(prior.log_likelihood.sizes() == c10::IntArrayRef({4}));
  REQUIRE(prior.ess.sizes() == c10::IntArrayRef({4}));
  for (size_t n = 0; n < kData.size(); ++n) {
    const double xn = kData[n];
    const double exact = log_normal(xn, std::sqrt(1 + kSigma * kSigma));
    // Delta method: sd(log mean w) ~ sqrt((E[w^2] / p^2 - 1) / K), with
    // E_prior[N(x; z, s)^2] = N(x; 0, sqrt(1 + s^2 / 2)) / (2 s sqrt(pi)).
    const double second = std::exp(log_normal(xn, std::sqrt(1 + kSigma * kSigma / 2))) / (2 * kSigma * std::sqrt(M_PI));
    const double sd = std::sqrt((second / std::exp(2 * exact) - 1) / static_cast<double>(k));
    INFO("x = " << xn << ": estimate " << prior.log_likelihood[n].item<double>() << ", exact " << exact << ", sd "
                << sd);
    CHECK(std::abs(prior.log_likelihood[n].item<double>() - exact) < 5 * sd);
    CHECK(prior.ess[n].item<double>() > 1.0);
    CHECK(prior.ess[n].item<double>() < static_cast<double>(k));
  }
  // With the exact posterior every weight equals p(x): no error, ESS = K.
  auto exact_guide = infer::log_marginal(model, posterior_guide, x, {.particles = 50, .chunk = 7});
  for (size_t n = 0; n < kData.size(); ++n) {
    CHECK(exact_guide.log_likelihood[n].item<double>() ==
          Approx(log_normal(kData[n], std::sqrt(1 + kSigma * kSigma))).epsilon(1e-10));
    CHECK(exact_guide.ess[n].item<double>() == Approx(50.0).epsilon(1e-9));
  }
}

TEST_CASE("log_marginal does not depend on the chunk size", "[importance]") {
  // One run per particle: the draws come in the same order whatever the
  // chunk (vectorised chunks draw a chunk's particles together).
  const auto x = torch::tensor(kData, kF64);
  torch::manual_seed(22);
  auto a = infer::log_marginal(model, prior_guide, x, {.particles = 300, .chunk = 7, .vectorise = false});
  torch::manual_seed(22);
  auto b = infer::log_marginal(model, prior_guide, x, {.particles = 300, .chunk = 300, .vectorise = false});
  CHECK(torch::allclose(a.log_likelihood, b.log_likelihood, 1e-12, 1e-12));
  CHECK(torch::allclose(a.ess, b.ess, 1e-9, 1e-9));
}

TEST_CASE("log_marginal rejects bad options", "[importance][errors]") {
  const auto x = torch::tensor(kData, kF64);
  const nlohmann::json j = infer::ImportanceOptions{.particles = 7, .chunk = 3};
  CHECK(j.get<infer::ImportanceOptions>().particles == 7);
  CHECK(j.get<infer::ImportanceOptions>().chunk == 3);
  CHECK_THROWS_WITH(nlohmann::json({{"k", 1}}).get<infer::ImportanceOptions>(),
                    "ImportanceOptions: unknown key \"k\"");
  CHECK_THROWS_AS(infer::log_marginal(model, prior_guide, x, {.particles = 0}), ppl::ArgumentError);
  CHECK_THROWS_WITH(infer::log_marginal(model, prior_guide, x, {.particles = 10, .chunk = 0}),
                    "log_marginal: chunk is 0, but must be at least 1");
  CHECK(nlohmann::json(infer::ImportanceOptions{})["vectorise"].is_null());
  CHECK(nlohmann::json({{"vectorise", false}}).get<infer::ImportanceOptions>().vectorise == false);
}

namespace {
// mu ~ N(0, 1), x_n ~ N(mu, sigma): mu lies outside the data plate.
void global_model(const torch::Tensor& x) {
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
  auto data = ppl::plate("data", x.size(0));
  ppl::observe("x", d::Normal(mu, kSigma), x);
}
void global_prior_guide(const torch::Tensor&) { ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0)); }
// The exact posterior: precision 1 + N / sigma^2, mean sum(x) / sigma^2 / precision.
void global_posterior_guide(const torch::Tensor& x) {
  const double precision = 1 + x.size(0) / (kSigma * kSigma);
  ppl::sample("mu", d::Normal(x.sum() / (kSigma * kSigma) / precision, 1 / std::sqrt(precision)));
}
/// log N(x; 0, sigma^2 I + 1 1^T), from its determinant and inverse written out.
double global_evidence(const std::vector<double>& x) {
  const double s2 = kSigma * kSigma, n = static_cast<double>(x.size());
  double sum = 0, squares = 0;
  for (double v : x) {
    sum += v;
    squares += v * v;
  }
  const double log_det = n * std::log(s2) + std::log(1 + n / s2);
  const double quadratic = (squares - sum * sum / (s2 + n)) / s2;
  return -0.5 * n * std::log(2 * M_PI) - 0.5 * log_det - 0.5 * quadratic;
}
}  // namespace

TEST_CASE("log_marginal estimates the joint evidence when a latent lies outside the data plate",
          "[importance][global]") {
  const auto x = torch::tensor(kData, kF64);
  const double exact = global_evidence(kData);
  // With the exact posterior as guide every weight is p(x_1..N): exact, ESS = K.
  auto posterior = infer::log_marginal(global_model, global_posterior_guide, x, {.particles = 20, .chunk = 8});
  CHECK(posterior.joint);
  REQUIRE(posterior.log_likelihood.sizes() == c10::IntArrayRef({1}));
  CHECK(posterior.log_likelihood.item<double>() == Approx(exact).epsilon(1e-10));
  CHECK(posterior.ess.item<double>() == Approx(20.0).epsilon(1e-9));
  CHECK(posterior.standard_error.item<double>() < 1e-6);
  // The prior as guide, 10^4 particles: within 3 of its standard errors.
  torch::manual_seed(25);
  auto prior = infer::log_marginal(global_model, global_prior_guide, x, {.particles = 10000, .chunk = 2500});
  CHECK(prior.joint);
  CHECK(prior.vectorised);  // these programs broadcast over the particle plate
  INFO("estimate " << prior.log_likelihood.item<double>() << " +- " << prior.standard_error.item<double>()
                   << ", exact " << exact << ", ESS " << prior.ess.item<double>());
  CHECK(prior.standard_error.item<double>() > 0);
  CHECK(std::abs(prior.log_likelihood.item<double>() - exact) < 3 * prior.standard_error.item<double>());
  // Per-point results stay for models whose latents are all in the plate.
  auto local = infer::log_marginal(model, posterior_guide, x, {.particles = 10});
  CHECK_FALSE(local.joint);
  CHECK(local.log_likelihood.sizes() == c10::IntArrayRef({4}));
}

TEST_CASE("log_marginal falls back to one run per particle where the programs do not broadcast, and says why",
          "[importance][vectorise]") {
  // A guide that reshapes a draw to the data's size: inside a particle plate
  // the draw has a leading particle dimension and the reshape fails.
  auto rigid_guide = [](const torch::Tensor& x) {
    auto data = ppl::plate("data", x.size(0));
    auto u = ppl::sample("u", d::Normal(torch::zeros({x.size(0)}, kF64), 1.0));
    ppl::sample("z", d::Normal(u.view({x.size(0)}) * 0.0, 1.0));
  };
  auto rigid_model = [](const torch::Tensor& x) {
    auto data = ppl::plate("data", x.size(0));
    ppl::sample("u", d::Normal(torch::zeros({x.size(0)}, kF64), 1.0));
    auto z = ppl::sample("z", d::Normal(torch::zeros({x.size(0)}, kF64), 1.0));
    ppl::observe("x", d::Normal(z, kSigma), x);
  };
  const auto x = torch::tensor(kData, kF64);
  auto r = infer::log_marginal(rigid_model, rigid_guide, x, {.particles = 6, .chunk = 6});
  CHECK_FALSE(r.vectorised);
  CHECK_THAT(r.note, Catch::Contains("one run at a time"));
  CHECK(r.log_likelihood.sizes() == c10::IntArrayRef({4}));
  CHECK_THROWS(infer::log_marginal(rigid_model, rigid_guide, x, {.particles = 6, .chunk = 6, .vectorise = true}));
}

TEST_CASE("the IWAE bound is exact for the posterior guide and tighter than the ELBO", "[importance][iwae]") {
  torch::manual_seed(23);
  const auto x = torch::tensor(kData, kF64);
  double evidence = 0;
  for (double xn : kData) evidence += log_normal(xn, std::sqrt(1 + kSigma * kSigma));
  // The plain ELBO with the exact posterior is log p(x) too, for every draw.
  CHECK(infer::Elbo({.particles = 3}).estimate(model, posterior_guide, x) == Approx(evidence).epsilon(1e-10));
  infer::Elbo iwae({.particles = 20, .iwae = true});
  auto loss = iwae.loss(model, posterior_guide, x);
  CHECK(-loss.item<double>() == Approx(evidence).epsilon(1e-10));

  double bound = 0, elbo = 0;
  infer::Elbo plain;
  for (int i = 0; i < 50; ++i) {
    bound += -iwae.loss(model, prior_guide, x).item<double>() / 50;
    elbo += -plain.loss(model, prior_guide, x).item<double>() / 50;
  }
  INFO("IWAE(20) " << bound << ", ELBO " << elbo << ", log p(x) " << evidence);
  CHECK(elbo < bound);
  CHECK(bound < evidence + 0.05);
}

TEST_CASE("log_marginal with vectorised particles agrees with the loop", "[importance][vectorise]") {
  torch::manual_seed(24);
  const auto x = torch::tensor(kData, kF64);
  auto exact_guide =
      infer::log_marginal(model, posterior_guide, x, {.particles = 40, .chunk = 16, .vectorise = true});
  REQUIRE(exact_guide.log_likelihood.sizes() == c10::IntArrayRef({4}));
  for (size_t n = 0; n < kData.size(); ++n) {
    CHECK(exact_guide.log_likelihood[n].item<double>() ==
          Approx(log_normal(kData[n], std::sqrt(1 + kSigma * kSigma))).epsilon(1e-10));
    CHECK(exact_guide.ess[n].item<double>() == Approx(40.0).epsilon(1e-9));
  }
  const int64_t k = 4000;
  auto looped = infer::log_marginal(model, prior_guide, x, {.particles = k, .chunk = 1000});
  auto vectorised = infer::log_marginal(model, prior_guide, x, {.particles = k, .chunk = 1000, .vectorise = true});
  // Both are within a few standard errors of the truth, hence of each other.
  CHECK(torch::allclose(looped.log_likelihood, vectorised.log_likelihood, 0.0, 0.1));
}
