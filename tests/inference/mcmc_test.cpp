// MCMC: the diagnostics against values computed by hand, the warm-up
// schedule, NUTS and HMC against known posteriors, constrained latents, the
// driver's options and errors.
#include <cmath>
#include <limits>
#include <sstream>

#include <catch2/catch.hpp>

#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;
namespace mcmc = ppl::infer::mcmc;
using mcmc::Chains;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

// Fixed short chains and their diagnostics, computed once by
// tests/inference/mcmc_reference.py from the definitions (and, for
// ess_basic, ess_mean and split_rhat, equal to rstan 2.21's ess_rfun and
// rhat_rfun to the digits shown).
const Chains kMixing = {
    {-0.64, -0.24, -1.93, -0.87, -0.85, -1.23, -0.64, -2.34, -1.56, -1.67, -0.59, 0.09,
     -0.88, -1.46, -2.34, -2.19, -1.00, 0.26,  0.38,  0.27,  -0.71, -0.23, -0.95, -0.33},
    {0.73,  0.64,  1.75,  0.64,  1.14,  0.91,  2.24,  -0.62, 0.50,  -0.72, -1.30, -0.80,
     -1.99, -2.39, -1.94, -1.49, -2.80, -2.55, -1.68, -1.14, -1.34, -0.81, -1.00, 0.57},
    {-0.43, -0.75, 0.41, -0.73, 0.44, -0.93, -1.93, -1.70, -0.93, -2.08, -1.75, -1.05,
     -0.67, 0.47,  1.07, 0.97,  1.50, 1.84,  -0.01, 2.18,  1.26,  0.15,  0.69,  -0.07},
    {-0.83, 0.23, -1.13, -0.30, -0.39, -0.74, -0.29, -0.75, -1.22, -0.34, 1.73, 0.04,
     1.18,  1.79, -0.05, 0.16,  0.62,  -0.54, 0.76,  1.33,  2.50,  1.89,  2.08, 3.06},
};
const Chains kApart = {
    {-0.44, -1.58, -0.19, -1.32, 0.70, 0.36, 0.92, 0.44, 1.37, -0.05, 0.04, 1.41, -0.83, -0.06, 0.96, -0.78, -0.93,
     -1.53, 0.72, 0.03},
    {-0.71, -0.72, 1.27, 0.75, 0.38, 1.47, 0.09, 2.20, 0.85, 0.30, 0.39, 0.71, 1.48, 0.30, -0.17, 0.55, 1.06, 1.76,
     0.61, 1.71},
    {2.68, 0.83, 1.28, 1.70, 2.64, 3.37, 2.18, 3.67, 1.40, 1.87, 1.44, 2.13, 0.81, 0.26, 2.48, 2.93, 2.56, 1.19, 2.07,
     2.19},
};
const Chains kAntithetic = {
    {-0.51, -1.31, 0.57, -0.37, 1.01, -0.86, -0.54, 1.48, -0.50, -0.80, -0.19, 1.03, -1.97, 2.15, -1.27,
     0.61,  0.50,  -0.73, 0.49, 1.34, -1.65, 2.81, -3.37, 1.17, 0.20,  -0.78, 0.15, 0.70, 0.54,  0.17},
    {0.95, -0.42, 1.43, -0.47, -0.52, 0.18, -1.66, 1.63, -0.53, 0.34, -1.55, 0.54, 0.36, -0.40, 0.36,
     0.93, 0.08,  -1.64, 1.35, -1.75, -1.18, 1.87, -2.61, 1.25, 0.50, 0.40, -0.30, -0.71, 0.72, -0.50},
};

struct Expected {
  double split_rhat, rank_normalized_rhat, ess_basic, ess_mean, ess_bulk, ess_tail, q05, q50;
};

void check_diagnostics(const Chains& x, const Expected& e) {
  const auto near = [](double got, double want) { return Approx(want).epsilon(1e-8) == got; };
  CHECK(near(mcmc::split_rhat(x), e.split_rhat));
  CHECK(near(mcmc::rank_normalized_rhat(x), e.rank_normalized_rhat));
  CHECK(near(mcmc::ess_basic(x), e.ess_basic));
  CHECK(near(mcmc::ess_mean(x), e.ess_mean));
  CHECK(near(mcmc::ess_bulk(x), e.ess_bulk));
  CHECK(near(mcmc::ess_tail(x), e.ess_tail));
  CHECK(near(mcmc::quantile(x, 0.05), e.q05));
  CHECK(near(mcmc::quantile(x, 0.5), e.q50));
}

/// chains [C, S] of one scalar as diagnostics input.
Chains to_chains(const torch::Tensor& draws) {
  const auto x = draws.to(torch::kDouble).contiguous();
  Chains out(static_cast<size_t>(x.size(0)));
  for (int64_t c = 0; c < x.size(0); ++c) {
    const auto row = x[c];
    out[static_cast<size_t>(c)].assign(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
  }
  return out;
}

/// The sample mean and variance of `draws` [C, S] within 4 Monte Carlo
/// standard errors of `mean` and `variance`; R-hat below `rhat`.
void check_moments(const std::string& what, const torch::Tensor& draws, double mean, double variance,
                   double rhat = 1.01) {
  const auto x = to_chains(draws);
  const auto row = mcmc::summarize(what, x, {});
  const double sample_var = row.sd * row.sd;
  auto sq = x;
  for (auto& c : sq)
    for (auto& v : c) v = (v - row.mean) * (v - row.mean);
  const auto sq_row = mcmc::summarize(what + "^2", sq, {});
  INFO(what << ": mean " << row.mean << " (mcse " << row.mcse_mean << ") vs " << mean << ", variance " << sample_var
            << " (mcse " << sq_row.mcse_mean << ") vs " << variance << ", R-hat " << row.rhat << ", bulk-ESS "
            << row.ess_bulk);
  CHECK(std::abs(row.mean - mean) < 4 * row.mcse_mean);
  CHECK(std::abs(sample_var - variance) < 4 * sq_row.mcse_mean);
  CHECK(row.rhat < rhat);
}

/// The Beta(a, b) CDF for integer a, b: P(Binomial(a + b - 1, x) >= a).
double beta_cdf(double x, double a, double b) {
  const int n = static_cast<int>(a + b) - 1;
  double sum = 0, choose = 1;  // C(n, j), built up from C(n, 0)
  for (int j = 0; j <= n; ++j) {
    if (j > 0) choose = choose * (n - j + 1) / j;
    if (j >= static_cast<int>(a)) sum += choose * std::pow(x, j) * std::pow(1 - x, n - j);
  }
  return sum;
}

/// mu ~ N(0, 1), x_n ~ N(mu, 0.5).
void conjugate(const torch::Tensor& x) {
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
  auto data = ppl::plate("data", x.size(0));
  ppl::sample("x", d::Normal(mu, 0.5), {.obs = x});
}

const std::vector<double> kData = {0.9, 1.4, 0.3, 1.1, 0.7, 1.6, 0.2, 1.0};

std::pair<double, double> conjugate_posterior() {
  double sum = 0;
  for (double v : kData) sum += v;
  const double precision = 1 + static_cast<double>(kData.size()) / 0.25;
  return {sum / 0.25 / precision, 1 / precision};
}

/// Eight schools, non-centred (Rubin 1981; the parameterisation of Stan's
/// case study).
void eight_schools(const torch::Tensor& sigma, const torch::Tensor& y) {
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 5.0));
  auto tau = ppl::sample("tau", d::HalfCauchy(torch::tensor(5.0, kF64)));
  auto schools = ppl::plate("schools", y.size(0));
  auto theta_tilde = ppl::sample("theta_tilde", d::Normal(torch::tensor(0.0, kF64), 1.0));
  ppl::sample("y", d::Normal(mu + tau * theta_tilde, sigma), {.obs = y});
}

}  // namespace

TEST_CASE("MCMC diagnostics: R-hat and ESS of fixed chains against values computed by hand", "[mcmc]") {
  SECTION("four mixing chains") {
    check_diagnostics(kMixing, {1.449766246, 1.455963213, 14.78123403, 11.16399367, 11.04996413, 50.49299258,
                                -2.2275, -0.485});
  }
  SECTION("three chains apart (large R-hat)") {
    check_diagnostics(kApart, {1.419589517, 1.403163784, 3.463682134, 9.616224141, 9.837311611, 55.21008403, -0.9495,
                               0.82});
  }
  SECTION("antithetic chains (tau at its lower bound 1 / log10(MN))") {
    check_diagnostics(kAntithetic, {0.9718938466, 0.9998445245, 106.689075, 106.689075, 106.689075, 79.14110429,
                                    -1.761, 0.16});
  }
  SECTION("split, rank and edge cases") {
    const Chains odd = {{1, 2, 3, 4, 5}};
    CHECK(mcmc::split_chains(odd) == Chains{{1, 2}, {4, 5}});
    const auto z = mcmc::rank_normalize({{1.0, 2.0, 2.0, 3.0}});
    // ranks 1, 2.5, 2.5, 4 -> Phi^-1((r - 3/8) / 4.25): Phi^-1(0.625 / 4.25), 0, 0, -z[0]
    CHECK(z[0][0] == Approx(-1.0491314).epsilon(1e-6));
    CHECK(z[0][1] == Approx(0.0).margin(1e-12));
    CHECK(z[0][2] == Approx(0.0).margin(1e-12));
    CHECK(z[0][3] == Approx(-z[0][0]).epsilon(1e-12));
    CHECK(std::isnan(mcmc::ess_bulk({{1, 1, 1, 1, 1, 1, 1, 1}})));
    CHECK(std::isnan(mcmc::rank_normalized_rhat({{1, 2, 3}})));
    CHECK_THROWS_WITH(mcmc::ess_basic({{1, 2, 3, 4}, {1, 2, 3}}), Catch::Contains("every chain needs the same number"));
  }
}

TEST_CASE("MCMC warm-up: Stan's windows, dual averaging and the regularised variance", "[mcmc]") {
  using W = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(mcmc::WarmupSchedule(1000, {}).windows() == W{{75, 100}, {100, 150}, {150, 250}, {250, 450}, {450, 950}});
  CHECK(mcmc::WarmupSchedule(500, {}).windows() == W{{75, 100}, {100, 150}, {150, 250}, {250, 450}});
  CHECK(mcmc::WarmupSchedule(150, {}).windows() == W{{75, 100}});
  CHECK(mcmc::WarmupSchedule(100, {}).windows() == W{{15, 90}});  // 15 %, 75 %, 10 %
  CHECK(mcmc::WarmupSchedule(19, {}).windows().empty());
  const mcmc::WarmupSchedule s(1000, {});
  CHECK(s.in_window(75));
  CHECK_FALSE(s.in_window(74));
  CHECK_FALSE(s.in_window(950));
  CHECK(s.window_end(99));
  CHECK(s.window_end(949));
  CHECK_FALSE(s.window_end(100));

  // An acceptance rate exp(-eps) reaches 0.8 at eps = -log 0.8.
  mcmc::DualAveraging da(0.8, {});
  da.restart(1.0);
  double eps = 1.0;
  for (int i = 0; i < 2000; ++i) eps = da.update(std::exp(-eps));
  CHECK(da.averaged() == Approx(-std::log(0.8)).epsilon(0.02));

  mcmc::WelfordCovariance diagonal(2, false), dense(2, true);
  for (const auto& x : std::vector<std::vector<double>>{{1, 2}, {2, 4}, {3, 3}, {6, 7}}) {
    diagonal.add(x);
    dense.add(x);
  }
  // Sample variances 14/3 and 14/3, covariance 13/3; n = 4: shrink 4/9, ridge 5e-3/9.
  const auto v = diagonal.regularised();
  CHECK(v[0] == Approx(4.0 / 9 * 14 / 3 + 5e-3 / 9));
  CHECK(v[1] == Approx(4.0 / 9 * 14 / 3 + 5e-3 / 9));
  const auto c = dense.regularised();
  CHECK(c[1] == Approx(4.0 / 9 * 13 / 3));
  CHECK(c[3] == Approx(v[1]));
}

TEST_CASE("NUTS: the conjugate Normal model's posterior mean and variance", "[mcmc][nuts]") {
  const auto x = torch::tensor(kData, kF64);
  infer::Nuts kernel(conjugate);
  infer::Mcmc mcmc(kernel, {.warmup = 300, .samples = 1000, .chains = 4, .seed = 1, .progress = false});
  mcmc.run(x);
  const auto& draws = mcmc.samples().at("mu");
  REQUIRE(draws.sizes() == torch::IntArrayRef({4, 1000}));
  CHECK(draws.scalar_type() == torch::kDouble);
  const auto [mean, variance] = conjugate_posterior();
  check_moments("mu", draws, mean, variance);
  CHECK(mcmc.divergences() == 0);
  const auto summary = mcmc.summary();
  CHECK(summary.row("mu").rhat < 1.01);
  CHECK(summary.row("mu").ess_bulk > 1000);
  CHECK(mcmc.flat_samples().at("mu").sizes() == torch::IntArrayRef({4000}));
  for (const auto& name : {"accept_prob", "diverging", "num_steps", "tree_depth", "energy", "step_size"})
    CHECK(mcmc.sample_stats().at(name).sizes() == torch::IntArrayRef({4, 1000}));
}

TEST_CASE("NUTS: a 10-dimensional correlated Gaussian", "[mcmc][nuts]") {
  // Sigma_ij = s_i s_j 0.8^|i - j|, scales from 0.5 to 5.
  const int64_t dim = 10;
  auto scales = torch::linspace(0.5, 5.0, dim, kF64);
  auto lag = (torch::arange(dim, kF64).unsqueeze(1) - torch::arange(dim, kF64).unsqueeze(0)).abs();
  auto covariance = scales.unsqueeze(1) * scales.unsqueeze(0) * torch::pow(0.8, lag);
  auto loc = torch::linspace(-2.0, 2.0, dim, kF64);
  const auto model = [&](const torch::Tensor& m, const torch::Tensor& scale_tril) {
    ppl::sample("z", d::MultivariateNormal(m, {.scale_tril = scale_tril}));
  };
  infer::Mcmc mcmc(infer::Nuts(model, {.dense_mass = true}),
                   {.warmup = 300, .samples = 500, .chains = 4, .seed = 2, .progress = false});
  mcmc.run(loc, torch::linalg_cholesky(covariance));
  const auto z = mcmc.samples().at("z");
  REQUIRE(z.sizes() == torch::IntArrayRef({4, 500, dim}));
  for (int64_t i = 0; i < dim; ++i)
    check_moments("z[" + std::to_string(i) + "]", z.select(2, i), loc[i].item<double>(),
                  covariance[i][i].item<double>());
  CHECK(mcmc.divergences() == 0);
}

TEST_CASE("NUTS: eight schools (non-centred) has no divergences after warm-up", "[mcmc][nuts]") {
  const auto y = torch::tensor({28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0}, kF64);
  const auto sigma = torch::tensor({15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0}, kF64);
  infer::Mcmc mcmc(infer::Nuts(eight_schools, {.target_accept = 0.9}),
                   {.warmup = 300, .samples = 300, .chains = 4, .seed = 3, .progress = false});
  mcmc.run(sigma, y);
  const auto summary = mcmc.summary();
  INFO(summary);
  CHECK(summary.total_divergences() == 0);
  for (const auto& row : summary.rows) CHECK(row.rhat < 1.05);
  CHECK((mcmc.samples().at("tau") > 0).all().item<bool>());
  // The posterior mean of mu is about 4.4 (sd 3.3).
  CHECK(std::abs(summary.row("mu").mean - 4.4) < 4 * summary.row("mu").mcse_mean + 0.1);
}

TEST_CASE("NUTS: positive and simplex latents stay in their supports with the Jacobian", "[mcmc][nuts]") {
  // A Dirichlet(2, 3, 5) prior alone: marginals Beta(a_i, 10 - a_i). A Gamma(3, 2) one: mean 1.5, variance 0.75.
  const std::vector<double> alpha = {2, 3, 5};
  const auto model = [&] {
    ppl::sample("p", d::Dirichlet(torch::tensor(alpha, kF64)));
    ppl::sample("s", d::Gamma(torch::tensor(3.0, kF64), 2.0));
  };
  infer::Mcmc mcmc(infer::Nuts{model}, {.warmup = 200, .samples = 500, .chains = 4, .seed = 4, .progress = false});
  mcmc.run();
  const auto p = mcmc.samples().at("p");
  const auto s = mcmc.samples().at("s");
  REQUIRE(p.sizes() == torch::IntArrayRef({4, 500, 3}));
  CHECK((p >= 0).all().item<bool>());
  CHECK(((p.sum(-1) - 1).abs() < 1e-12).all().item<bool>());
  CHECK((s > 0).all().item<bool>());
  check_moments("s", s, 1.5, 0.75);
  for (int i = 0; i < 3; ++i) {
    const double a = alpha[static_cast<size_t>(i)], b = 10 - a;
    const auto pi = p.select(2, i);
    check_moments("p[" + std::to_string(i) + "]", pi, a / 10, a * b / (100 * 11));
    // The marginal CDF at the mean and one sd either side: P(p_i <= x)
    // within 4 Monte Carlo standard errors (from the indicator's ESS).
    const double sd = std::sqrt(a * b / (100 * 11));
    for (double at : {a / 10 - sd, a / 10, a / 10 + sd}) {
      const auto below = to_chains((pi <= at).to(torch::kDouble));
      const auto row = mcmc::summarize("below", below, {});
      const double cdf = beta_cdf(at, a, b);
      INFO("p[" << i << "] <= " << at << ": " << row.mean << " vs " << cdf << " (mcse " << row.mcse_mean << ")");
      CHECK(std::abs(row.mean - cdf) < 4 * row.mcse_mean);
    }
  }
}

TEST_CASE("HMC: the conjugate Normal model with a fixed number of steps", "[mcmc][hmc]") {
  const auto x = torch::tensor(kData, kF64);
  infer::Hmc kernel(conjugate, {.step_size = 0.1, .num_steps = 8});
  infer::Mcmc mcmc(kernel, {.warmup = 200, .samples = 500, .chains = 4, .seed = 5, .progress = false});
  mcmc.run(x);
  const auto [mean, variance] = conjugate_posterior();
  check_moments("mu", mcmc.samples().at("mu"), mean, variance);
  CHECK((mcmc.sample_stats().at("num_steps") == 8).all().item<bool>());
  CHECK((mcmc.sample_stats().at("tree_depth") == 0).all().item<bool>());
  const double accept = mcmc.sample_stats().at("accept_prob").mean().item<double>();
  CHECK(accept > 0.6);
}

TEST_CASE("MCMC: seeds, threads, init values and the summary table", "[mcmc]") {
  const auto x = torch::tensor(kData, kF64);
  const auto run = [&](infer::McmcOptions options) {
    options.progress = false;
    infer::Mcmc mcmc(infer::Nuts{conjugate}, options);
    mcmc.run(x);
    return mcmc.samples().at("mu");
  };
  const auto parallel = run({.warmup = 50, .samples = 50, .chains = 3, .seed = 9});
  const auto sequential = run({.warmup = 50, .samples = 50, .chains = 3, .seed = 9, .parallel = false});
  CHECK(torch::equal(parallel, sequential));
  CHECK_FALSE(torch::equal(parallel, run({.warmup = 50, .samples = 50, .chains = 3, .seed = 10})));
  CHECK_FALSE(torch::equal(parallel[0], parallel[1]));  // chains draw streams of their own
  {
    // Without a seed, one drawn from torch's generator.
    torch::manual_seed(4);
    const auto a = run({.warmup = 20, .samples = 20});
    torch::manual_seed(4);
    CHECK(torch::equal(a, run({.warmup = 20, .samples = 20})));
  }

  // A chain that barely moves stays at its init value.
  infer::Hmc still(conjugate, {.step_size = 1e-8, .num_steps = 1, .init = {{"mu", torch::tensor(3.0, kF64)}},
                               .adapt_step_size = false, .adapt_mass_matrix = false});
  infer::Mcmc fixed(still, {.warmup = 0, .samples = 2, .chains = 2, .progress = false});
  fixed.run(x);
  CHECK(((fixed.samples().at("mu") - 3).abs() < 1e-6).all().item<bool>());
  CHECK(fixed.chains().size() == 2);
  CHECK(fixed.chains()[0].step_size == 1e-8);

  infer::Mcmc mcmc(infer::Nuts{conjugate}, {.warmup = 100, .samples = 100, .chains = 2, .seed = 1, .progress = false});
  CHECK_THROWS_WITH(mcmc.samples(), Catch::Contains("call run(args...) first"));
  mcmc.run(x);
  std::ostringstream table;
  table << mcmc.summary({0.1, 0.9});
  INFO(table.str());
  CHECK_THAT(table.str(), Catch::Contains("r_hat") && Catch::Contains("ess_bulk") && Catch::Contains("10%") &&
                              Catch::Contains("mu") && Catch::Contains("divergences after warm-up: 0"));
  CHECK(mcmc.summary().rows.size() == 1);
  CHECK(mcmc.summary().min_ess_per_second() > 0);
  const auto& metric = mcmc.chains()[0].inverse_mass_matrix;
  CHECK(metric.sizes() == torch::IntArrayRef({1}));

  nlohmann::json j = infer::McmcOptions{.warmup = 7, .samples = 8, .chains = 2, .seed = 3};
  const auto back = j.get<infer::McmcOptions>();
  CHECK(back.warmup == 7);
  CHECK(back.chains == 2);
  CHECK(back.seed == std::optional<uint64_t>(3));
  CHECK_THROWS_WITH(nlohmann::json({{"warmups", 3}}).get<infer::McmcOptions>(), Catch::Contains("unknown key \"warmups\""));
}

TEST_CASE("MCMC: draws feed Predictive, flattened over chains", "[mcmc]") {
  const auto model = [](const torch::Tensor& x, int64_t n) {
    auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
    auto data = ppl::plate("data", n);
    ppl::sample("x", d::Normal(mu, 0.5), {.obs = x});
  };
  const auto x = torch::tensor(kData, kF64);
  infer::Mcmc mcmc(infer::Nuts{model}, {.warmup = 200, .samples = 500, .chains = 2, .seed = 6, .progress = false});
  mcmc.run(x, x.size(0));
  infer::Predictive predictive(model, {.posterior_samples = mcmc.flat_samples()});
  const auto draws = predictive.run(torch::Tensor(), int64_t{3});
  REQUIRE(draws.at("x").sizes() == torch::IntArrayRef({1000, 3}));
  CHECK(torch::equal(draws.at("mu"), mcmc.flat_samples().at("mu")));
  // The posterior predictive mean is the posterior mean; its variance adds the noise's.
  const auto [mean, variance] = conjugate_posterior();
  const double sd = std::sqrt(variance + 0.25);
  CHECK(std::abs(draws.at("x").mean().item<double>() - mean) < 4 * sd / std::sqrt(1000.0 / 3));
}

/// A mixture with unknown means and scale, its assignments marked
/// `.enumerate`: NUTS samples loc and scale with z summed out.
void enumerated_mixture(const torch::Tensor& x) {
  auto loc = ppl::sample("loc", d::Normal(torch::zeros({2}, kF64), 3.0).to_event(1));
  auto scale = ppl::sample("scale", d::LogNormal(torch::tensor(0.0, kF64), 0.5));
  auto data = ppl::plate("data", x.size(0));
  auto z = ppl::sample("z", d::Categorical(torch::tensor({0.3, 0.7}, kF64)), {.enumerate = true});
  ppl::sample("x", d::Normal(loc.index({z}), scale), {.obs = x});
}

/// The same density with z marginalised by hand: log sum_k w_k N(x | loc_k, scale).
void marginal_mixture(const torch::Tensor& x) {
  auto loc = ppl::sample("loc", d::Normal(torch::zeros({2}, kF64), 3.0).to_event(1));
  auto scale = ppl::sample("scale", d::LogNormal(torch::tensor(0.0, kF64), 0.5));
  auto data = ppl::plate("data", x.size(0));
  const auto log_w = torch::tensor({0.3, 0.7}, kF64).log();
  ppl::factor("x", torch::logsumexp(log_w + d::Normal(loc, scale).log_prob(x.unsqueeze(-1)), -1));
}

TEST_CASE("NUTS: an enumerated site is summed out exactly: the potential and its gradient equal the hand-marginalised "
          "model's",
          "[mcmc][nuts][enum]") {
  const auto x = torch::tensor({-1.2, 0.4, 2.5, 1.9, -0.3}, kF64);
  const auto enumerated_runner = infer::Nuts(enumerated_mixture).bind(x);
  const auto marginal_runner = infer::Nuts(marginal_mixture).bind(x);
  const auto sites = mcmc::model_latent_sites(enumerated_runner, "NUTS", {}, 1);
  REQUIRE(sites.size() == 2);  // loc and scale; z is summed out
  CHECK(sites[0].name == "loc");
  CHECK(sites[1].name == "scale");
  mcmc::ModelPotential enumerated(enumerated_runner, sites);
  mcmc::ModelPotential marginal(marginal_runner, mcmc::model_latent_sites(marginal_runner, "NUTS", {}, 1));
  REQUIRE(enumerated.dim() == 3);
  for (const auto& q : std::vector<std::vector<double>>{{0.0, 0.0, 0.0}, {-1.0, 2.0, -0.4}, {1.5, -0.7, 0.6}}) {
    std::vector<double> g1, g2;
    const double u1 = enumerated(q, g1), u2 = marginal(q, g2);
    CHECK(u1 == Approx(u2).epsilon(1e-12));
    for (size_t i = 0; i < g1.size(); ++i) CHECK(g1[i] == Approx(g2[i]).epsilon(1e-10).margin(1e-12));
  }
  // The assignments given one draw of loc and scale: infer_discrete on the
  // model with the draw substituted.
  const auto loc = torch::tensor({-1.0, 2.0}, kF64), scale = torch::tensor(0.8, kF64);
  const auto conditioned = ppl::handlers::substitute(enumerated_mixture, {{"loc", loc}, {"scale", scale}});
  const auto t = ppl::trace(infer::infer_discrete(conditioned, {.temperature = 0}), x);
  const auto expected = (torch::tensor({0.3, 0.7}, kF64).log() + d::Normal(loc, scale).log_prob(x.unsqueeze(-1))).argmax(-1);
  CHECK(torch::equal(t.site("z").value, expected));
}

TEST_CASE("NUTS: with a global enumerated site, the posterior of a Normal mean is the closed-form mixture",
          "[mcmc][nuts][enum]") {
  // z ~ Bernoulli(0.3), mu ~ N(0, 1), x ~ N(mu + 3 z, 1), x = 2: given z,
  // x ~ N(3 z, sqrt 2) and mu | x, z ~ N((x - 3 z) / 2, 1 / 2).
  const auto model = [](const torch::Tensor& x) {
    auto z = ppl::sample("z", d::Bernoulli(torch::tensor(0.3, kF64)), {.enumerate = true});
    auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
    ppl::sample("x", d::Normal(mu + 3.0 * z, 1.0), {.obs = x});
  };
  const double x = 2.0;
  double weight[2], mean = 0, second = 0, total = 0;
  for (int z = 0; z < 2; ++z) {
    const double r = x - 3.0 * z;
    weight[z] = (z == 1 ? 0.3 : 0.7) * std::exp(-r * r / 4);
    total += weight[z];
  }
  for (int z = 0; z < 2; ++z) {
    const double m = (x - 3.0 * z) / 2;
    mean += weight[z] / total * m;
    second += weight[z] / total * (0.5 + m * m);
  }
  infer::Mcmc mcmc(infer::Nuts{model}, {.warmup = 300, .samples = 1000, .chains = 4, .seed = 2, .progress = false});
  mcmc.run(torch::tensor(x, kF64));
  CHECK(mcmc.samples().count("z") == 0);
  check_moments("mu", mcmc.samples().at("mu"), mean, second - mean * mean);
}

TEST_CASE("MCMC: bad input is an error naming the site or the option", "[mcmc]") {
  const auto x = torch::tensor(kData, kF64);
  CHECK_THROWS_WITH(infer::Nuts(conjugate, {.target_accept = 1.2}), Catch::Contains("NUTS: target_accept is 1.2"));
  CHECK_THROWS_WITH(infer::Nuts(conjugate, {.max_tree_depth = 0}), Catch::Contains("NUTS: max_tree_depth is 0"));
  CHECK_THROWS_WITH(infer::Hmc(conjugate, {.step_size = -0.1}),
                    Catch::Contains("HMC: step_size is -0.1, but must be positive and finite"));
  CHECK_THROWS_WITH(infer::Hmc(conjugate, {.num_steps = 0}), Catch::Contains("HMC: num_steps is 0"));
  CHECK_THROWS_WITH(infer::Mcmc(infer::Nuts(conjugate), {.samples = 0}), Catch::Contains("Mcmc: samples is 0"));
  CHECK_THROWS_WITH(infer::Mcmc(infer::Nuts(conjugate), {.chains = 0}), Catch::Contains("Mcmc: chains is 0"));

  const auto discrete = [] {
    ppl::sample("k", d::Bernoulli(torch::tensor(0.3, kF64)));
    ppl::sample("z", d::Normal(torch::tensor(0.0, kF64), 1.0));
  };
  infer::Mcmc with_discrete(infer::Nuts{discrete}, {.warmup = 5, .samples = 5, .progress = false});
  CHECK_THROWS_WITH(with_discrete.run(),
                    Catch::Contains("NUTS: site \"k\"") && Catch::Contains("discrete support") &&
                        Catch::Contains(".enumerate"));
  // A continuous latent drawn once per value of an enumerated site.
  const auto downstream = [] {
    auto k = ppl::sample("k", d::Bernoulli(torch::tensor(0.3, kF64)), {.enumerate = true});
    ppl::sample("z", d::Normal(k, 1.0));
  };
  infer::Mcmc with_downstream(infer::Nuts{downstream}, {.warmup = 5, .samples = 5, .progress = false});
  CHECK_THROWS_WITH(with_downstream.run(), Catch::Contains("NUTS: site \"z\" has shape [2, 1]") &&
                                               Catch::Contains("must not depend on an enumerated site"));
  CHECK_THROWS_WITH(infer::Nuts(conjugate, {.max_plate_nesting = -1}),
                    Catch::Contains("NUTS: max_plate_nesting is -1, but must be at least 0"));

  infer::Mcmc misnamed(infer::Nuts(conjugate, {.init = {{"m", torch::tensor(0.0, kF64)}}}),
                       {.warmup = 5, .samples = 5, .progress = false});
  CHECK_THROWS_WITH(misnamed.run(x), Catch::Contains("init names site \"m\"") && Catch::Contains("\"mu\""));
  infer::Mcmc outside(infer::Nuts(eight_schools, {.init = {{"tau", torch::tensor(-1.0, kF64)}}}),
                      {.warmup = 5, .samples = 5, .progress = false});
  CHECK_THROWS_WITH(outside.run(torch::ones({8}, kF64), torch::zeros({8}, kF64)),
                    Catch::Contains("NUTS: site \"tau\"") && Catch::Contains("outside the support"));

  const auto no_latent = [](const torch::Tensor& v) { ppl::sample("x", d::Normal(torch::tensor(0.0, kF64), 1.0), {.obs = v}); };
  infer::Mcmc nothing(infer::Nuts{no_latent}, {.warmup = 5, .samples = 5, .progress = false});
  CHECK_THROWS_WITH(nothing.run(x[0]), Catch::Contains("NUTS: the model has no latent sample site"));

  // A model whose density is zero everywhere it starts.
  const auto impossible = [] {
    auto z = ppl::sample("z", d::Normal(torch::tensor(0.0, kF64), 1.0));
    ppl::factor("never", torch::full({}, -std::numeric_limits<double>::infinity(), kF64) + 0 * z);
  };
  infer::Mcmc stuck(infer::Nuts{impossible}, {.warmup = 5, .samples = 5, .progress = false});
  CHECK_THROWS_WITH(stuck.run(), Catch::Contains("NUTS: no initial point with a finite log-density"));
}
