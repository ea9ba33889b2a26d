// The README example: the mean of Gaussian data under a Gaussian prior,
// learned by variational inference and checked against the exact posterior.
#include <cmath>
#include <cstdio>

#include <ppl/inference.hpp>
#include <ppl/ppl.hpp>

namespace d = ppl::dist;

torch::Tensor model(const torch::Tensor& x) {
  auto mu = ppl::sample("mu", d::Normal(0.0, 1.0));            // prior
  auto data = ppl::plate("data", x.size(0));                   // x_i independent given mu
  return ppl::sample("x", d::Normal(mu, 0.5), {.obs = x});     // likelihood; simulates when x is undefined
}

torch::Tensor guide(const torch::Tensor&) {
  auto loc = ppl::param("loc", torch::tensor(0.0));
  auto scale = ppl::param("scale", torch::tensor(1.0), ppl::ParamConstraint::positive);
  return ppl::sample("mu", d::Normal(loc, scale));
}

int main() {
  namespace infer = ppl::infer;
  torch::manual_seed(0);
  auto x = 0.8 + 0.5 * torch::randn({20});
  // Svi traces the guide, replays the model against it and steps Adam on the
  // ELBO's surrogate loss (score-function terms included when a guide site
  // is discrete), averaged over 4 particles. The rate decays from 0.1 to
  // 0.001 over the 2,000 steps, so the noisy gradient settles at the optimum
  // instead of wandering around it (Svi::step advances the schedule).
  const int steps = 2000;
  infer::Svi svi(model, guide, infer::Elbo({.particles = 4}),
                 infer::Adam(0.1).decay_by(std::pow(0.01, 1.0 / steps)));
  for (int step = 0; step < steps; ++step) svi.step(x);
  // Conjugacy: posterior precision 1 + n / 0.25, mean sum(x) / 0.25 / precision.
  const double precision = 1.0 + 20 / 0.25, mean = x.sum().item<double>() / 0.25 / precision, sd = 1 / std::sqrt(precision);
  const double loc = ppl::param_store().at("loc").item<double>();
  const double scale = ppl::param_store().at("scale").item<double>();
  std::printf("mu: SVI %.4f +- %.4f, exact %.4f +- %.4f\n", loc, scale, mean, sd);
  return std::abs(loc - mean) < 0.1 * sd && std::abs(scale - sd) < 0.1 * sd ? 0 : 1;
}
