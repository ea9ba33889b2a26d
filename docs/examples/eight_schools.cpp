// Eight schools (Rubin 1981) sampled with NUTS: four chains, the summary
// table, posterior predictive draws from the posterior samples, and a check
// of the posterior means against the exact posterior (computed at the end by
// quadrature) within 4 Monte Carlo standard errors.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <vector>

#include <ppl/inference.hpp>
#include <ppl/ppl.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

const std::vector<double> kY = {28, 8, -3, 7, -1, 1, 18, 12};        // estimated effects
const std::vector<double> kSigma = {15, 10, 16, 11, 9, 11, 10, 18};  // their standard errors

// Non-centred: theta_j = mu + tau theta_tilde_j with theta_tilde_j ~ N(0, 1),
// so the sampler sees no funnel between tau and the theta_j. The number of
// schools comes from sigma, so that y may be undefined (simulated).
void eight_schools(const torch::Tensor& sigma, const torch::Tensor& y) {
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 5.0));
  auto tau = ppl::sample("tau", d::HalfCauchy(torch::tensor(5.0, kF64)));  // positive: sampled as log tau
  auto schools = ppl::plate("schools", sigma.size(0));
  auto theta_tilde = ppl::sample("theta_tilde", d::Normal(torch::tensor(0.0, kF64), 1.0));
  auto theta = ppl::deterministic("theta", mu + tau * theta_tilde);
  ppl::sample("y", d::Normal(theta, sigma), {.obs = y});
}

struct Exact {
  double mu, tau, theta0;  // posterior means
};
Exact exact_posterior();

int main() {
  const auto y = torch::tensor(kY, kF64), sigma = torch::tensor(kSigma, kF64);

  // NUTS with a higher target acceptance than the default 0.8 (smaller steps
  // near tau = 0); 500 warm-up iterations adapt the step size and a diagonal
  // mass matrix, then 1,000 draws per chain, four chains on threads.
  infer::Mcmc mcmc(infer::Nuts(eight_schools, {.target_accept = 0.9}),
                   {.warmup = 500, .samples = 1000, .chains = 4, .seed = 1, .progress = false});
  mcmc.run(sigma, y);
  const auto summary = mcmc.summary();
  std::cout << summary;  // mean, sd, mcse, quantiles, R-hat, bulk/tail ESS; divergences, step sizes

  // samples(): name -> [chains, draws, ...] in the constrained space (tau > 0).
  const auto draws = mcmc.samples();
  std::printf("tau: [%lld, %lld] draws, smallest %.3g\n", static_cast<long long>(draws.at("tau").size(0)),
              static_cast<long long>(draws.at("tau").size(1)), draws.at("tau").min().item<double>());

  // Posterior predictive: the model rerun once per draw (4,000, flattened
  // over chains) with its latents substituted and y undefined, so y is
  // simulated; "theta" is recorded as a deterministic site.
  infer::Predictive predictive(eight_schools, {.posterior_samples = mcmc.flat_samples()});
  const auto predicted = predictive.run(sigma, torch::Tensor());
  const auto theta = predicted.at("theta");  // [4000, 8]
  const auto y_rep = predicted.at("y");      // [4000, 8]
  std::printf("school 0: E[theta] %.2f, E[y_rep] %.2f, P(y_rep > 28) %.3f\n", theta.select(1, 0).mean().item<double>(),
              y_rep.select(1, 0).mean().item<double>(), (y_rep.select(1, 0) > 28).to(torch::kDouble).mean().item<double>());

  // The check: each mean within 4 of its Monte Carlo standard errors of the
  // exact value; R-hat below 1.01 for every element.
  const auto exact = exact_posterior();
  bool ok = true;
  const auto check = [&](const infer::mcmc::SummaryRow& row, double want) {
    const bool good = std::abs(row.mean - want) < 4 * row.mcse_mean;
    std::printf("%-8s NUTS %.3f (mcse %.3f), exact %.3f: %s\n", row.name.c_str(), row.mean, row.mcse_mean, want,
                good ? "ok" : "FAILED");
    ok = ok && good;
  };
  check(summary.row("mu"), exact.mu);
  check(summary.row("tau"), exact.tau);
  // theta_0 = mu + tau theta_tilde_0 per draw, as chains for the diagnostics.
  const auto theta0 = (draws.at("mu") + draws.at("tau") * draws.at("theta_tilde").select(2, 0)).contiguous();
  infer::mcmc::Chains chains;
  for (int64_t c = 0; c < theta0.size(0); ++c)
    chains.emplace_back(theta0[c].data_ptr<double>(), theta0[c].data_ptr<double>() + theta0.size(1));
  check(infer::mcmc::summarize("theta[0]", chains, {}), exact.theta0);
  double max_rhat = 0;
  for (const auto& row : summary.rows) max_rhat = std::max(max_rhat, row.rhat);
  ok = ok && max_rhat < 1.01;
  std::printf("largest R-hat %.4f, divergences %lld\n", max_rhat, static_cast<long long>(mcmc.divergences()));
  return ok ? 0 : 1;
}

// The exact posterior means. Given tau, y_j ~ N(mu, sigma_j^2 + tau^2)
// independently and mu ~ N(0, 25), so mu | tau, y is normal with precision
// P = 1/25 + sum_j 1/V_j and mean m = sum_j (y_j / V_j) / P (V_j = sigma_j^2 +
// tau^2), and, integrating mu out,
//
//     p(tau | y)  is proportional to  p(tau) prod_j V_j^-1/2 exp(-sum_j y_j^2 / (2 V_j) + m^2 P / 2) / sqrt(25 P),
//
// p(tau) the half-Cauchy density, proportional to 1 / (1 + tau^2 / 25).
// E[theta_0 | tau, y] = m + tau^2 / V_0 (y_0 - m). The integrals over tau
// are midpoint sums in u, tau = 5 tan(u pi / 2), u in (0, 1).
Exact exact_posterior() {
  const int n = 200000;
  double total = 0, mu = 0, tau_sum = 0, theta0 = 0;
  std::vector<double> log_w(n), m(n), tau(n);
  double max_log_w = -INFINITY;
  for (int i = 0; i < n; ++i) {
    const double u = (i + 0.5) / n;
    const double t = 5 * std::tan(u * M_PI / 2), dt = 5 * M_PI / 2 / std::pow(std::cos(u * M_PI / 2), 2) / n;
    double precision = 1.0 / 25, weighted = 0, log_lik = 0;
    for (size_t j = 0; j < kY.size(); ++j) {
      const double v = kSigma[j] * kSigma[j] + t * t;
      precision += 1 / v;
      weighted += kY[j] / v;
      log_lik += -0.5 * std::log(v) - 0.5 * kY[j] * kY[j] / v;
    }
    m[i] = weighted / precision;
    tau[i] = t;
    log_lik += 0.5 * m[i] * m[i] * precision - 0.5 * std::log(25 * precision);
    log_w[i] = log_lik - std::log1p(t * t / 25) + std::log(dt);
    max_log_w = std::max(max_log_w, log_w[i]);
  }
  for (int i = 0; i < n; ++i) {
    const double w = std::exp(log_w[i] - max_log_w);
    const double v0 = kSigma[0] * kSigma[0] + tau[i] * tau[i];
    total += w;
    mu += w * m[i];
    tau_sum += w * tau[i];
    theta0 += w * (m[i] + tau[i] * tau[i] / v0 * (kY[0] - m[i]));
  }
  return {mu / total, tau_sum / total, theta0 / total};
}
