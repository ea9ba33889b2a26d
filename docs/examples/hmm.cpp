// A hidden Markov model whose states are summed out exactly: 20 sequences of
// 40 steps, two states with Gaussian emissions. The transition matrix and
// the emission means are fitted by SVI with an AutoNormal guide and
// Elbo({.enumerate = true}); infer_discrete then gives the most probable
// state path of every sequence. Checked against the parameters and states
// that generated the data.
#include <cmath>
#include <cstdio>

#include <ppl/inference.hpp>
#include <ppl/ppl.hpp>

namespace d = ppl::dist;
namespace h = ppl::handlers;
namespace infer = ppl::infer;

constexpr int64_t kStates = 2;

// trans_k ~ Dirichlet(1, 1) (row k of the transition matrix), locs ~ Normal(0, 3),
// and for each sequence n: z_0 uniform, z_t | z_{t-1} ~ Categorical(trans[z_{t-1}]),
// x_t ~ Normal(locs[z_t], 0.5). The states are enumerated, the chain in a
// ppl::markov scope so that summing them out costs O(T K^2).
void model(const torch::Tensor& x) {  // x: [T, N]
  auto trans = ppl::sample("trans", d::Dirichlet(torch::ones({kStates, kStates})).to_event(1));
  auto locs = ppl::sample("locs", d::Normal(torch::zeros({kStates}), 3.0).to_event(1));
  auto sequences = ppl::plate("sequences", x.size(1));
  torch::Tensor z;
  for (int64_t t : ppl::markov(x.size(0))) {
    auto probs = t == 0 ? torch::full({kStates}, 1.0 / kStates) : trans.index({z});
    z = ppl::sample(ppl::addr("z", t), d::Categorical(probs), {.enumerate = true});
    ppl::observe(ppl::addr("x", t), d::Normal(locs.index({z}), 0.5), x[t]);
  }
}

int main() {
  torch::manual_seed(0);
  const int64_t steps = 40, sequences = 20;
  const auto true_trans = torch::tensor({{0.9, 0.1}, {0.2, 0.8}});
  const auto true_locs = torch::tensor({-1.5, 1.5});
  // The generative story, states drawn explicitly.
  auto z = torch::zeros({sequences}, torch::kLong);
  std::vector<torch::Tensor> xs, zs;
  for (int64_t t = 0; t < steps; ++t) {
    z = t == 0 ? torch::randint(kStates, {sequences}) : d::Categorical(true_trans.index({z})).sample();
    zs.push_back(z);
    xs.push_back(d::Normal(true_locs.index({z}), 0.5).sample());
  }
  const auto x = torch::stack(xs), states = torch::stack(zs);

  // Start the means apart: the two states are otherwise exchangeable.
  infer::AutoNormal guide(model, infer::AutoGuideOptions().with_init_value("locs", torch::tensor({-0.5, 0.5})));
  infer::Svi svi(model, guide, infer::Elbo({.max_plate_nesting = 1, .enumerate = true}),
                 infer::Adam(0.05).decay_by(std::pow(0.1, 1.0 / 600)));
  for (int step = 0; step < 600; ++step) svi.step(x);

  const auto fitted = guide.median();
  const auto trans = fitted.at("trans"), locs = fitted.at("locs");
  std::printf("emission means %.3f %.3f (true -1.5 1.5)\n", locs[0].item<double>(), locs[1].item<double>());
  std::printf("transition matrix [[%.3f %.3f] [%.3f %.3f]] (true [[0.9 0.1] [0.2 0.8]])\n", trans[0][0].item<double>(),
              trans[0][1].item<double>(), trans[1][0].item<double>(), trans[1][1].item<double>());

  // The most probable states given the fitted parameters (Viterbi).
  auto decode = infer::infer_discrete(h::substitute(model, fitted), {.temperature = 0});
  const auto path = ppl::trace(decode, x);
  int64_t right = 0;
  for (int64_t t = 0; t < steps; ++t) right += path.site(ppl::addr("z", t)).value.eq(states[t]).sum().item<int64_t>();
  const double accuracy = static_cast<double>(right) / static_cast<double>(steps * sequences);
  std::printf("states recovered: %.1f %%\n", 100 * accuracy);

  const bool ok = (locs - true_locs).abs().max().item<double>() < 0.15 &&
                  (trans - true_trans).abs().max().item<double>() < 0.08 && accuracy > 0.95;
  return ok ? 0 : 1;
}
