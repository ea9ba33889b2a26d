// `ppl demo`: the end-to-end example: Bayesian linear regression fitted by
// stochastic variational inference, compared with the exact posterior.
#include <cmath>
#include <cstdio>

#include <ppl/inference.hpp>
#include <ppl/ppl.hpp>

#include "commands.hpp"

namespace {
namespace d = ppl::dist;
namespace h = ppl::handlers;

struct DemoOptions {
  int points = 50;
  int steps = 1500;
  double lr = 0.1;
  uint64_t seed = 0;
};

torch::Tensor model(const torch::Tensor& x, const torch::Tensor& y) {
  auto w = ppl::sample("w", d::Normal(0.0, 1.0));
  auto b = ppl::sample("b", d::Normal(0.0, 1.0));
  auto data = ppl::plate("data", x.size(0));
  return ppl::observe("y", d::Normal(w * x + b, 0.5), y);
}

torch::Tensor guide(const torch::Tensor&, const torch::Tensor&) {
  auto loc = ppl::param("loc", torch::zeros({2}));
  auto scale = ppl::param("scale", torch::full({2}, 0.1), ppl::ParamConstraint::positive);
  ppl::sample("w", d::Normal(loc[0], scale[0]));
  return ppl::sample("b", d::Normal(loc[1], scale[1]));
}

void run(const DemoOptions& o) {
  if (o.points < 2) throw ppl::cli::UsageError("demo: --points must be at least 2");
  if (o.steps < 1) throw ppl::cli::UsageError("demo: --steps must be at least 1");
  if (!(o.lr > 0)) throw ppl::cli::UsageError("demo: --lr must be positive");
  ppl::manual_seed(o.seed);
  ppl::param_store().clear();
  auto x = torch::linspace(-2, 2, o.points);
  auto y = 1.5 * x - 0.7 + 0.5 * torch::randn({o.points});
  std::printf("Bayesian linear regression, %d points, y = w x + b + N(0, 0.5^2), priors N(0, 1)\n", o.points);
  ppl::trace(guide, x, y);
  std::printf("%s\n", ppl::trace(h::replay(model, ppl::trace(guide, x, y)), x, y).format_shapes().c_str());
  // Svi: each step traces the guide, replays the model against it and takes
  // an Adam step on the ELBO averaged over 4 particles; the rate decays
  // 100-fold over the run (Svi::step advances the schedule), so the noisy
  // gradient settles at the optimum.
  namespace infer = ppl::infer;
  infer::Svi svi(model, guide, infer::Elbo({.particles = 4}),
                 infer::Adam(o.lr).decay_by(std::pow(0.01, 1.0 / o.steps)));
  for (int step = 1; step <= o.steps; ++step) {
    const double loss = svi.step(x, y);
    if (step % (o.steps / 5 > 0 ? o.steps / 5 : 1) == 0) std::printf("step %5d  -ELBO %9.3f\n", step, loss);
  }
  auto X = torch::stack({x, torch::ones_like(x)}, 1).to(torch::kDouble);
  auto cov = torch::inverse(torch::eye(2, torch::kDouble) + X.t().mm(X) / 0.25);
  auto mean = cov.mm(X.t().mm(y.to(torch::kDouble).unsqueeze(1))).squeeze(1) / 0.25;
  auto loc = ppl::param_store().at("loc");
  auto scale = ppl::param_store().at("scale");
  std::printf("\n          SVI mean  exact mean   SVI sd  exact sd\n");
  const char* names[] = {"w", "b"};
  for (int i = 0; i < 2; ++i)
    std::printf("%-8s %9.3f %11.3f %8.3f %9.3f\n", names[i], loc[i].item<double>(), mean[i].item<double>(),
                scale[i].item<double>(), std::sqrt(cov[i][i].item<double>()));
}

ppl::cli::RegisterCommand reg{"demo", [](CLI::App& app) {
  auto opts = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand("demo", "Fit a Bayesian linear regression with SVI and compare with the exact posterior");
  cmd->add_option("--points", opts->points, "number of data points")->capture_default_str();
  cmd->add_option("--steps", opts->steps, "optimisation steps")->capture_default_str();
  cmd->add_option("--lr", opts->lr, "initial Adam learning rate (decays 100-fold over the steps)")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "random seed")->capture_default_str();
  cmd->callback([opts] { run(*opts); });
}};
}  // namespace
