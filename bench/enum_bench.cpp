// The enumerated ELBO against the score-function ELBO on one HMM: the
// variance of the gradient of the model's parameters, and the steps each
// takes to bring the exact log-likelihood to the same value.
//   ppl_bench_enum [max_steps]
// Prints a table. Asserts nothing.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <torch/torch.h>

#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace c = ppl::constraints;
namespace infer = ppl::infer;

namespace {

constexpr int64_t kStates = 2;
const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

// Two states with overlapping emissions (means -1, 1, sd 1), so the states
// are uncertain given the data: 10 sequences of 20 steps.
void model(const torch::Tensor& x) {
  auto trans = ppl::param("trans", torch::full({kStates, kStates}, 0.5, kF64), c::simplex);
  auto locs = ppl::param("locs", torch::tensor({-0.3, 0.3}, kF64));
  auto sequences = ppl::plate("sequences", x.size(1));
  torch::Tensor z;
  for (int64_t t : ppl::markov(x.size(0))) {
    auto probs = t == 0 ? torch::full({kStates}, 0.5, kF64) : trans.index({z});
    z = ppl::sample(ppl::addr("z", t), d::Categorical(probs), {.enumerate = true});
    ppl::observe(ppl::addr("x", t), d::Normal(locs.index({z}), 1.0), x[t]);
  }
}

// The states summed out: nothing left to guide.
void no_guide(const torch::Tensor&) {}

// For the score-function ELBO: a Categorical per state, learnt.
void mean_field_guide(const torch::Tensor& x) {
  auto sequences = ppl::plate("sequences", x.size(1));
  for (int64_t t = 0; t < x.size(0); ++t) {
    auto logits = ppl::param(ppl::addr("q", t), torch::zeros({x.size(1), kStates}, kF64));
    ppl::sample(ppl::addr("z", t), d::Categorical(d::logits(logits)));
  }
}

/// -log p(x) at the current parameters, exactly.
double nll(const torch::Tensor& x) { return -infer::Elbo({.enumerate = true}).estimate(model, no_guide, x); }

/// The sum over the model's parameters of the variance of each gradient
/// coordinate over `n` evaluations, and the squared norm of the mean.
std::pair<double, double> gradient_variance(infer::Elbo& elbo, void (*guide)(const torch::Tensor&),
                                            const torch::Tensor& x, int n) {
  elbo.loss(model, guide, x);  // creates the parameters
  const auto params = ppl::param_store().parameters({"trans", "locs"});
  std::vector<torch::Tensor> draws;
  for (int i = 0; i < n; ++i) {
    const auto g = torch::autograd::grad({elbo.loss(model, guide, x)}, params);
    draws.push_back(torch::cat({g[0].flatten(), g[1].flatten()}));
  }
  const auto all = torch::stack(draws);
  return {all.var(0, /*unbiased=*/true).sum().item<double>(), all.mean(0).pow(2).sum().item<double>()};
}

struct Fit {
  int steps_to_target = -1;
  double final_nll = 0, ms_per_step = 0;
  std::pair<double, double> gradient_at_end;  ///< variance and squared mean norm, 200 evaluations
};

/// Fits with `elbo` for up to `max_steps`, the exact -log p(x) checked every
/// 10 steps; the first step at which it is within `target`.
Fit fit(infer::Elbo elbo, void (*guide)(const torch::Tensor&), const torch::Tensor& x, int max_steps, double target) {
  ppl::param_store().clear();
  infer::Svi svi(model, guide, std::move(elbo), infer::Adam(0.05));
  Fit out;
  double seconds = 0;
  for (int step = 1; step <= max_steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    svi.step(x);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (step % 10 == 0 && out.steps_to_target < 0 && nll(x) <= target) out.steps_to_target = step;
  }
  out.final_nll = nll(x);
  out.ms_per_step = 1e3 * seconds / max_steps;
  out.gradient_at_end = gradient_variance(svi.elbo(), guide, x, 200);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int max_steps = argc > 1 ? std::atoi(argv[1]) : 3000;
  torch::set_num_threads(1);
  ppl::set_validation(false);
  torch::manual_seed(0);
  const int64_t steps = 20, sequences = 10;
  const auto true_trans = torch::tensor({{0.9, 0.1}, {0.2, 0.8}}, kF64);
  const auto true_locs = torch::tensor({-1.0, 1.0}, kF64);
  auto z = torch::randint(kStates, {sequences});
  std::vector<torch::Tensor> xs;
  for (int64_t t = 0; t < steps; ++t) {
    if (t > 0) z = d::Categorical(true_trans.index({z})).sample();
    xs.push_back(d::Normal(true_locs.index({z}), 1.0).sample());
  }
  const auto x = torch::stack(xs);

  // Gradient variance at the initial parameters (200 evaluations each).
  ppl::param_store().clear();
  infer::Elbo enumerated({.enumerate = true});
  const auto [var_enum, norm_enum] = gradient_variance(enumerated, no_guide, x, 200);
  ppl::param_store().clear();
  infer::Elbo scored;
  const auto [var_sf, norm_sf] = gradient_variance(scored, mean_field_guide, x, 200);

  // The enumerated fit sets the target: its -log p(x) after max_steps / 6 steps, plus 0.5 nats.
  const auto reference = fit(infer::Elbo({.enumerate = true}), no_guide, x, max_steps / 6, -1e30);
  const double target = reference.final_nll + 0.5;
  const auto with_enum = fit(infer::Elbo({.enumerate = true}), no_guide, x, max_steps, target);
  const auto with_sf = fit(infer::Elbo(), mean_field_guide, x, max_steps, target);

  std::printf("HMM: 2 states, %lld sequences x %lld steps; model parameters trans (2 x 2), locs (2)\n",
              static_cast<long long>(sequences), static_cast<long long>(steps));
  std::printf("gradient of the model parameters, 200 evaluations: summed variance (squared norm of "
              "the mean)\n");
  std::printf("  enumerated      at the start %.3g (%.3g), after its fit %.3g (%.3g)\n", var_enum, norm_enum,
              with_enum.gradient_at_end.first, with_enum.gradient_at_end.second);
  std::printf("  score function  at the start %.3g (%.3g), after its fit %.3g (%.3g)\n", var_sf, norm_sf,
              with_sf.gradient_at_end.first, with_sf.gradient_at_end.second);
  std::printf("target -log p(x) = %.3f (the enumerated fit after %d steps, + 0.5)\n", target, max_steps / 6);
  auto report = [&](const char* name, const Fit& f) {
    if (f.steps_to_target > 0)
      std::printf("  %-15s reaches it at step %d; -log p(x) %.3f after %d steps; %.2f ms/step\n", name,
                  f.steps_to_target, f.final_nll, max_steps, f.ms_per_step);
    else
      std::printf("  %-15s not within %d steps; -log p(x) %.3f then; %.2f ms/step\n", name, max_steps, f.final_nll,
                  f.ms_per_step);
  };
  report("enumerated", with_enum);
  report("score function", with_sf);
  return 0;
}
