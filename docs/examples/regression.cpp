// The README example: the mean of Gaussian data under a Gaussian prior,
// learned by variational inference and checked against the exact posterior.
#include <cstdio>

#include <ppl/ppl.hpp>

namespace d = ppl::dist;

torch::Tensor model(const torch::Tensor& x) {
  auto mu = ppl::sample("mu", d::Normal(0.0, 1.0));            // prior
  auto data = ppl::plate("data", x.size(0));                   // x_i independent given mu
  return ppl::observe("x", d::Normal(mu, 0.5), x);             // likelihood
}

torch::Tensor guide(const torch::Tensor&) {
  auto loc = ppl::param("loc", torch::tensor(0.0));
  auto scale = ppl::param("scale", torch::tensor(1.0), ppl::ParamConstraint::positive);
  return ppl::sample("mu", d::Normal(loc, scale));
}

int main() {
  torch::manual_seed(0);
  auto x = 0.8 + 0.5 * torch::randn({20});
  ppl::trace(guide, x);                                        // creates the parameters
  torch::optim::Adam adam(ppl::param_store().parameters(), torch::optim::AdamOptions(0.02));
  for (int step = 0; step < 2000; ++step) {
    auto q = ppl::trace(guide, x);                             // z ~ q
    auto p = ppl::trace(ppl::handlers::replay(model, q), x);   // score z under p
    auto loss = -(p.log_prob_sum() - q.log_prob_sum());        // -ELBO, one particle
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  // Conjugacy: posterior precision 1 + n / 0.25, mean sum(x) / 0.25 / precision.
  const double precision = 1.0 + 20 / 0.25, mean = x.sum().item<double>() / 0.25 / precision;
  const double loc = ppl::param_store().at("loc").item<double>();
  const double scale = ppl::param_store().at("scale").item<double>();
  std::printf("mu: SVI %.3f +- %.3f, exact %.3f +- %.3f\n", loc, scale, mean, 1 / std::sqrt(precision));
  return std::abs(loc - mean) < 0.05 && std::abs(scale - 1 / std::sqrt(precision)) < 0.03 ? 0 : 1;
}
