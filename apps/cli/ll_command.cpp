// `ppl ll RUN --data NAME --particles K`: importance-sampling log-likelihood
// of a test split, mean and standard error, as JSON.
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>

#include "commands.hpp"
#include "progress.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {

struct LlArgs {
  std::string run;
  std::string data;
  std::string split = "test";
  std::string device;
  std::string data_dir;
  int64_t particles = 100;
  int64_t chunk = 25;
  int64_t n = 1000;
  int64_t batch = 50;
  uint64_t seed = 0;
};

void log_likelihood(const LlArgs& a) {
  auto run = open_run(a.run, a.device);
  const auto name = a.data.empty() ? run.train.data : a.data;
  auto data = load_image_data(name, a.split, a.data_dir.empty() ? run.train.data_dir : a.data_dir, a.n,
                              run.program->image_size());
  auto& program = *run.program;
  if (data.images.size(-1) != program.image_size())
    throw UsageError(fmt::format("ll: {} has {}x{} images but the run's program expects {}x{}", name,
                                 data.images.size(-2), data.images.size(-1), program.image_size(), program.image_size()));
  if (a.particles < 1 || a.chunk < 1 || a.batch < 1) throw UsageError("ll: --particles, --chunk and --batch must be positive");
  auto model = [&](const torch::Tensor& x) { return program.model(x); };
  auto guide = [&](const torch::Tensor& x) { return program.guide(x); };
  std::vector<torch::Tensor> lls, esss;
  const int64_t n = data.images.size(0);
  ProgressBar bar(fmt::format("ll K={}", a.particles), n);
  random::SeedScope seed(a.seed);
  for (int64_t i = 0; i < n; i += a.batch) {
    auto x = data.images.narrow(0, i, std::min(a.batch, n - i)).to(run.device);
    auto r = infer::log_marginal(model, guide, x, {.particles = a.particles, .chunk = a.chunk});
    lls.push_back(r.log_likelihood.cpu());
    esss.push_back(r.ess.cpu());
    bar.update(i + x.size(0));
  }
  bar.finish();
  auto ll = torch::cat(lls).to(torch::kDouble);
  const double mean = ll.mean().item<double>();
  const double se = n > 1 ? ll.std().item<double>() / std::sqrt(static_cast<double>(n)) : 0.0;
  nlohmann::json out = {{"run", a.run},       {"data", name},     {"split", a.split},
                        {"particles", a.particles}, {"n", n},     {"log_likelihood", mean},
                        {"standard_error", se}, {"mean_ess", torch::cat(esss).mean().item<double>()}};
  std::printf("%s\n", out.dump(2).c_str());
  write_atomic(run.dir / fmt::format("ll_{}_{}_K{}.json", name, a.split, a.particles), out.dump(2));
}

RegisterCommand reg{"ll", [](CLI::App& app) {
  auto a = std::make_shared<LlArgs>();
  auto* cmd = app.add_subcommand("ll", "Importance-sampling log-likelihood of a trained run on a test split");
  cmd->add_option("run", a->run, "run directory")->required();
  cmd->add_option("--data", a->data, "dataset (default: the run's)");
  cmd->add_option("--split", a->split, "train or test")->capture_default_str();
  cmd->add_option("--particles", a->particles, "importance samples K per image")->capture_default_str();
  cmd->add_option("--chunk", a->chunk, "particles held in memory at once")->capture_default_str();
  cmd->add_option("--n", a->n, "number of images (0: all)")->capture_default_str();
  cmd->add_option("--batch", a->batch, "images per batch")->capture_default_str();
  cmd->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  cmd->add_option("--data-dir", a->data_dir, "data root");
  cmd->add_option("--seed", a->seed, "random seed")->capture_default_str();
  cmd->callback([a] { log_likelihood(*a); });
}};

}  // namespace
}  // namespace ppl::cli
