// A Gaussian mixture: Dirichlet weights, a Categorical assignment for every
// point (summed out by MixtureSameFamily), and the component means; fitted
// by stochastic variational inference and checked against the parameters
// that generated the data.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include <ppl/inference.hpp>
#include <ppl/ppl.hpp>

namespace d = ppl::dist;
namespace c = ppl::constraints;
namespace infer = ppl::infer;

constexpr int64_t kComponents = 3;

// weights ~ Dirichlet(1, 1, 1), locs_k ~ Normal(0, 10), and for each point
// z_i ~ Categorical(weights), x_i ~ Normal(locs[z_i], 1). With z_i summed out,
// x_i ~ sum_k weights_k Normal(locs_k, 1): a MixtureSameFamily.
void model(const torch::Tensor& x) {
  auto weights = ppl::sample("weights", d::Dirichlet(torch::ones({kComponents})));
  auto locs = ppl::sample("locs", d::Normal(torch::zeros({kComponents}), 10.0).to_event(1));
  auto data = ppl::plate("data", x.size(0));
  ppl::observe("x", d::MixtureSameFamily(d::Categorical(weights), d::Normal(locs, 1.0)), x);
}

// A point estimate of the weights, kept on the simplex by its constraint,
// and a Gaussian for the means.
void guide(const torch::Tensor&) {
  auto weights = ppl::param("weights_map", torch::full({kComponents}, 1.0 / kComponents), c::simplex);
  ppl::sample("weights", d::Delta(weights).to_event(1));
  auto loc = ppl::param("locs_loc", torch::tensor({-1.0, 0.0, 1.0}));
  auto scale = ppl::param("locs_scale", torch::full({kComponents}, 0.5), c::positive);
  ppl::sample("locs", d::Normal(loc, scale).to_event(1));
}

int main() {
  torch::manual_seed(0);
  const auto true_weights = torch::tensor({0.2, 0.5, 0.3});
  const auto true_locs = torch::tensor({-4.0, 0.0, 5.0});
  const int64_t n = 1000;
  // The generative story with the assignments drawn explicitly.
  const auto z = d::Categorical(true_weights).sample({n});
  const auto x = d::Normal(true_locs.index_select(0, z), 1.0).sample();

  infer::Svi svi(model, guide, infer::Elbo({.particles = 1}), infer::Adam(0.05));
  for (int step = 0; step < 2500; ++step) svi.step(x);

  // Components are exchangeable: match them to the truth by their order.
  const auto weights = ppl::param_store().at("weights_map").detach();
  const auto locs = ppl::param_store().at("locs_loc").detach();
  const auto order = std::get<1>(locs.sort());
  bool ok = true;
  for (int64_t k = 0; k < kComponents; ++k) {
    const int64_t j = order[k].item<int64_t>();
    const double w = weights[j].item<double>(), loc = locs[j].item<double>();
    const double tw = true_weights[k].item<double>(), tl = true_locs[k].item<double>();
    // Within four standard errors of the estimates from n points.
    const double w_se = std::sqrt(tw * (1 - tw) / n), loc_se = 1 / std::sqrt(tw * n);
    std::printf("component %lld: weight %.3f (true %.2f), mean %.3f (true %.1f)\n", static_cast<long long>(k), w, tw,
                loc, tl);
    ok = ok && std::abs(w - tw) < 4 * w_se && std::abs(loc - tl) < 4 * loc_se;
  }
  return ok ? 0 : 1;
}
