// `ppl demo`: the end-to-end example: Bayesian linear regression fitted by
// stochastic variational inference, compared with the exact posterior; then
// a shipped AIR model on test scenes: the objects it infers drawn over them
// (PNG), the trace of one scene (JSON and HTML), and its log-likelihood by
// importance sampling.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/inference.hpp>
#include <ppl/ppl.hpp>

#include "commands.hpp"
#include "run.hpp"

namespace {
namespace d = ppl::dist;
namespace h = ppl::handlers;

namespace fs = std::filesystem;

constexpr const char* kDefaultModel = "models/air-multi-mnist";

struct DemoOptions {
  int points = 50;
  int steps = 1500;
  double lr = 0.1;
  uint64_t seed = 0;
  std::string model = kDefaultModel;  ///< a trained model or run folder; "" or "none": no second part
  std::string out = "demo-output";
  int64_t scenes = 12;
  int64_t ll_n = 20;
  int64_t particles = 10;
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

/// The second part: a trained model that infers objects, on its test scenes.
void run_model(const DemoOptions& o) {
  using namespace ppl::cli;
  if (o.model.empty() || o.model == "none") return;
  if (!fs::is_directory(o.model)) {
    if (o.model == kDefaultModel) {
      std::printf("\n(no %s here: run `ppl demo` from the project's root for the AIR part, or give --model)\n",
                  kDefaultModel);
      return;
    }
    throw UsageError(fmt::format("demo: --model \"{}\" is not a folder (a model under models/ or a run directory)",
                                 o.model));
  }
  if (o.scenes < 1) throw UsageError(fmt::format("demo: --scenes is {}, but must be at least 1", o.scenes));
  if (o.ll_n < 1) throw UsageError(fmt::format("demo: --ll-n is {}, but must be at least 1", o.ll_n));
  if (o.particles < 1) throw UsageError(fmt::format("demo: --particles is {}, but must be at least 1", o.particles));
  const auto started = std::chrono::steady_clock::now();
  auto run = open_run(o.model);
  auto& program = *run.program;
  if (!program.infers_objects())
    throw UsageError(fmt::format("demo: --model \"{}\" holds a \"{}\" program, which infers no objects (air does)",
                                 o.model, program.name()));
  const auto& data = run.train.data;
  const auto scenes =
      load_scenes(data, "test", run.train.data_dir, std::max(o.scenes, o.ll_n), program.image_size(), "--scenes");
  const auto images = stack_scenes(scenes);
  fs::create_directories(o.out);
  std::printf("\n%s: program %s, trained %lld steps on %s\n", o.model.c_str(), program.name().c_str(),
              static_cast<long long>(run.step), data.c_str());

  // The objects of one guide draw per scene, over the true boxes.
  ppl::random::SeedScope seeded(o.seed);
  const auto shown = images.narrow(0, 0, o.scenes);
  const auto objects = program.infer_objects(shown.to(run.device));
  std::vector<std::vector<ppl::programs::ScoredBox>> truth;
  int64_t right = 0;
  std::printf("scene  objects  inferred\n");
  for (int64_t i = 0; i < o.scenes; ++i) {
    const auto& scene = scenes[static_cast<size_t>(i)];
    truth.emplace_back();
    for (const auto& obj : scene.objects) {
      const auto box = obj.ink();
      truth.back().push_back({.x = box.x, .y = box.y, .width = box.width, .height = box.height});
    }
    const auto& found = objects.boxes[static_cast<size_t>(i)];
    const auto count = std::count_if(found.begin(), found.end(), [](const auto& b) { return b.score > 0.5; });
    right += count == static_cast<int64_t>(scene.objects.size());
    std::printf("%5lld  %7zu  %8lld\n", static_cast<long long>(i), scene.objects.size(), static_cast<long long>(count));
  }
  const auto boxes_png = fs::path(o.out) / "objects.png";
  save_boxed_grid(boxes_png, shown, {{&truth, {0.0f, 0.85f, 0.0f}}, {&objects.boxes, {1.0f, 0.3f, 0.2f}}});
  std::printf("counted right: %lld of %lld; objects drawn over the scenes (green: true ink boxes, red: inferred) "
              "in %s\n",
              static_cast<long long>(right), static_cast<long long>(o.scenes), boxes_png.string().c_str());

  // The trace of the first scene.
  const auto json_path = fs::path(o.out) / "trace.json", html_path = fs::path(o.out) / "trace.html";
  const double elbo = write_trace(run, images.narrow(0, 0, 1), {data, "test", 0, o.seed}, json_path, html_path).elbo;
  std::printf("scene 0: one guide draw has log p(x, z) - log q(z | x) = %.2f; trace in %s and %s\n", elbo,
              json_path.string().c_str(), html_path.string().c_str());

  // log p(x) by importance sampling with the guide as proposal.
  auto model = [&](const torch::Tensor& x) { return program.model(x); };
  auto guide = [&](const torch::Tensor& x) { return program.guide(x); };
  const auto x = images.narrow(0, 0, o.ll_n).to(run.device);
  const auto r =
      ppl::infer::log_marginal(model, guide, x, {.particles = o.particles, .vectorise = false});
  const auto ll = r.log_likelihood.to(torch::kDouble).cpu();
  const double mean = ll.mean().item<double>();
  const double se = o.ll_n > 1 ? ll.std().item<double>() / std::sqrt(static_cast<double>(o.ll_n)) : 0.0;
  const nlohmann::json summary = {{"model", o.model},         {"program", program.name()}, {"step", run.step},
                                  {"data", data},             {"split", "test"},           {"scenes", o.scenes},
                                  {"counted_right", right},   {"elbo_scene_0", elbo},      {"ll_n", o.ll_n},
                                  {"particles", o.particles}, {"log_likelihood", mean},    {"standard_error", se},
                                  {"seed", o.seed}};
  ppl::write_atomic(fs::path(o.out) / "summary.json", summary.dump(2));
  std::printf("log p(x) on %lld test scenes, K = %lld: %.1f +- %.1f nats (summary.json)\n",
              static_cast<long long>(o.ll_n), static_cast<long long>(o.particles), mean, se);
  std::printf("the AIR part took %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

ppl::cli::RegisterCommand register_demo{"demo", [](CLI::App& app) {
  auto opts = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand("demo", "Fit a Bayesian linear regression with SVI and compare with the exact posterior, "
                                         "then show a shipped AIR model's objects, trace and log-likelihood");
  cmd->add_option("--points", opts->points, "number of data points")->capture_default_str();
  cmd->add_option("--steps", opts->steps, "optimisation steps")->capture_default_str();
  cmd->add_option("--lr", opts->lr, "initial Adam learning rate (decays 100-fold over the steps)")->capture_default_str();
  cmd->add_option("--seed", opts->seed, "random seed")->capture_default_str();
  cmd->add_option("--model", opts->model,
                  "a trained model (or run) that infers objects, shown on its test scenes after the regression; "
                  "\"none\": the regression only")
      ->capture_default_str();
  cmd->add_option("--out", opts->out, "folder for the model's pictures, trace and summary")->capture_default_str();
  cmd->add_option("--scenes", opts->scenes, "test scenes whose objects are drawn")->capture_default_str();
  cmd->add_option("--ll-n", opts->ll_n, "test scenes scored by importance sampling")->capture_default_str();
  cmd->add_option("--particles", opts->particles, "importance samples per scene")->capture_default_str();
  cmd->callback([opts] {
    run(*opts);
    run_model(*opts);
  });
}};
}  // namespace
