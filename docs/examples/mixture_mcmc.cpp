// A two-component Gaussian mixture sampled with HMC and with NUTS, its
// assignments marked .enumerate and summed out of the density exactly, so
// the samplers move only the two component means. The posterior means are
// checked against the exact posterior, computed at the end by quadrature on
// a grid, within 4 Monte Carlo standard errors; the assignments given the
// posterior mean are read off with infer_discrete.
#include <cmath>
#include <cstdio>
#include <iostream>

#include <ppl/inference.hpp>
#include <ppl/ppl.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);
const auto kWeights = torch::tensor({0.3, 0.7}, kF64);

// loc_k ~ N(0, 3^2); z_n ~ Categorical(0.3, 0.7), summed out; x_n ~ N(loc_{z_n}, 1).
void mixture(const torch::Tensor& x) {
  auto loc = ppl::sample("loc", d::Normal(torch::zeros({2}, kF64), 3.0).to_event(1));
  auto data = ppl::plate("data", x.size(0));
  // Under enumeration z is [2, 1]: both values, along a dim left of the plate.
  auto z = ppl::sample("z", d::Categorical(kWeights), {.enumerate = true});
  ppl::sample("x", d::Normal(loc.index({z}), 1.0), {.obs = x});
}

struct Exact {
  double loc0, loc1;  // posterior means
};
Exact exact_posterior(const torch::Tensor& x);

int main() {
  // 60 points: 18 from N(-2, 1), 42 from N(2.5, 1).
  torch::manual_seed(0);
  const auto truth = torch::cat({torch::zeros({18}, torch::kLong), torch::ones({42}, torch::kLong)});
  const auto x = torch::tensor({-2.0, 2.5}, kF64).index({truth}) + torch::randn({60}, kF64);

  // Two chains each, started at the same labelling (the other one, with the
  // components swapped, is 1e-9 times less probable with these weights).
  const infer::McmcOptions options{.warmup = 300, .samples = 1000, .chains = 2, .seed = 1, .progress = false};
  const std::map<std::string, torch::Tensor> init{{"loc", torch::tensor({-1.0, 1.0}, kF64)}};
  infer::Mcmc nuts(infer::Nuts(mixture, {.init = init, .max_plate_nesting = 1}), options);
  nuts.run(x);
  // Static HMC: 3 leapfrog steps of the adapted step size span about the
  // posterior's width in the adapted metric; longer trajectories turn back.
  infer::Mcmc hmc(infer::Hmc(mixture, {.num_steps = 3, .init = init, .max_plate_nesting = 1}), options);
  hmc.run(x);
  std::cout << nuts.summary();  // loc[0] and loc[1]: z has no draws, it was summed out

  const auto exact = exact_posterior(x);
  bool ok = true;
  const auto check = [&](const char* who, const infer::mcmc::SummaryRow& row, double want) {
    const bool good = std::abs(row.mean - want) < 4 * row.mcse_mean && row.rhat < 1.01;
    std::printf("%-6s %-6s %.3f (mcse %.3f, R-hat %.3f), exact %.3f: %s\n", who, row.name.c_str(), row.mean,
                row.mcse_mean, row.rhat, want, good ? "ok" : "FAILED");
    ok = ok && good;
  };
  for (const auto& [who, summary] : {std::pair{"NUTS", nuts.summary()}, std::pair{"HMC", hmc.summary()}}) {
    check(who, summary.row("loc[0]"), exact.loc0);
    check(who, summary.row("loc[1]"), exact.loc1);
  }

  // The assignments: infer_discrete at temperature 0 on the model with the
  // posterior mean of loc substituted gives each point's most probable component.
  const auto loc = nuts.flat_samples().at("loc").mean(0);
  const auto conditioned = ppl::handlers::substitute(mixture, {{"loc", loc}});
  const auto z = ppl::trace(infer::infer_discrete(conditioned, {.temperature = 0}), x).site("z").value;
  const double agree = (z == truth).to(torch::kDouble).mean().item<double>();
  std::printf("assignments equal to the generating components: %.0f %%\n", 100 * agree);
  ok = ok && agree > 0.9;
  return ok ? 0 : 1;
}

// The exact posterior means of loc by quadrature: the unnormalised log
// posterior log N(loc_0; 0, 9) + log N(loc_1; 0, 9) + sum_n log sum_k w_k
// N(x_n; loc_k, 1) on a 601 x 601 grid over [-8, 8]^2 (both labellings
// included), normalised by logsumexp.
Exact exact_posterior(const torch::Tensor& x) {
  const auto grid = torch::linspace(-8, 8, 601, kF64);
  const auto a = grid.view({-1, 1, 1}), b = grid.view({1, -1, 1});  // loc_0, loc_1
  const auto xs = x.view({1, 1, -1});
  const auto normal = [](const torch::Tensor& v, const torch::Tensor& m, double s) {
    return -0.5 * ((v - m) / s).square() - std::log(s) - 0.5 * std::log(2 * M_PI);
  };
  const auto log_w = kWeights.log();
  const auto per_point = torch::logaddexp(log_w[0] + normal(xs, a, 1.0), log_w[1] + normal(xs, b, 1.0));
  const auto log_post = per_point.sum(-1) + normal(a.squeeze(-1), torch::zeros({}, kF64), 3.0) +
                        normal(b.squeeze(-1), torch::zeros({}, kF64), 3.0);
  const auto p = (log_post - log_post.flatten().logsumexp(0)).exp();
  return {(p * grid.view({-1, 1})).sum().item<double>(), (p * grid.view({1, -1})).sum().item<double>()};
}
