// `ppl sample RUN --n N --out FILE.png`: unconditional samples as a PNG grid;
// with --reconstruct, test images and their reconstructions; with --tokens K
// (DooD), test images each followed by K new tokens of its character.
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include <ppl/programs/dood/one_shot.hpp>

#include "commands.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {

struct SampleArgs {
  std::string run;
  int64_t n = 64;
  std::string out;
  std::string device;
  uint64_t seed = 0;
  double temperature = 1.0;
  bool reconstruct = false;
  int tokens = 0;
  std::string data;
};

void sample_tokens(const SampleArgs& a) {
  if (a.tokens < 1) throw UsageError(fmt::format("sample: --tokens must be at least 1, got {}", a.tokens));
  auto run = open_run(a.run, a.device);
  auto* program = dynamic_cast<programs::dood::Dood*>(run.program.get());
  if (!program)
    throw UsageError(fmt::format("sample: {} is a run of {}, but --tokens needs a dood run", a.run,
                                 run.program->name()));
  const auto name = a.data.empty() ? run.train.data : a.data;
  auto test = load_image_data(name, "test", run.train.data_dir, 0, program->image_size());
  random::SeedScope seed(a.seed);
  auto supports = runtime::data::spread_rows(test.images, a.n).to(run.device);
  // B.4's token model (the supplement's ranges, motor sd 1e-3, renderer
  // parameters from (l, s')); each type the best of 20 guide draws by the
  // joint, as the authors pick their parses.
  auto options = programs::dood::OneShotOptions::preset(programs::dood::OneShotProtocol::supplement).with_draws(20);
  auto tokens = programs::dood::generate_tokens(*program, supports, a.tokens, options);
  const int64_t n = supports.size(0);
  auto rows = torch::cat({supports.view({n, 1, 1, supports.size(-2), supports.size(-1)}).cpu(), tokens.cpu()}, 1);
  const auto out = a.out.empty() ? run.dir / fmt::format("tokens_{}_{}x{}.png", name, n, a.tokens)
                                 : std::filesystem::path(a.out);
  save_image_grid(out, rows.flatten(0, 1), a.tokens + 1);
  std::printf("wrote %lld test images of %s, each followed by %d new tokens of its character, to %s\n",
              static_cast<long long>(n), name.c_str(), a.tokens, out.string().c_str());
}

RegisterCommand register_sample{"sample", [](CLI::App& app) {
  auto a = std::make_shared<SampleArgs>();
  auto* cmd = app.add_subcommand("sample", "Unconditional samples of a trained run as a PNG grid");
  cmd->add_option("run", a->run, "run directory")->required();
  cmd->add_option("--n", a->n, "number of samples")->capture_default_str();
  cmd->add_option("--out", a->out, "PNG file (default: RUN/samples_N.png)");
  cmd->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  cmd->add_option("--seed", a->seed, "random seed")->capture_default_str();
  cmd->add_option("--temperature", a->temperature,
                  "scale of the prior's spread (below 1: more typical samples; programs that support it)")
      ->capture_default_str();
  cmd->add_flag("--reconstruct", a->reconstruct,
                "reconstruct N test images spread over the test split instead (each followed by its "
                "reconstruction, 8 per row)");
  auto* tokens_flag = cmd->add_option("--tokens", a->tokens,
                  "DooD: N test images spread over the test split instead, each followed by this many new tokens "
                  "of its character (the guide's type, then the token model; one row per image)");
  cmd->add_option("--data", a->data, "with --reconstruct or --tokens: data set (default: the run's)");
  cmd->callback([a, tokens_flag] {
    if (a->n < 1) throw UsageError("sample: --n must be at least 1");
    if (tokens_flag->count() > 0) {
      if (a->reconstruct) throw UsageError("sample: --tokens and --reconstruct cannot be combined");
      sample_tokens(*a);
      return;
    }
    if (a->reconstruct) {
      auto run = open_run(a->run, a->device);
      const auto name = a->data.empty() ? run.train.data : a->data;
      auto test = load_image_data(name, "test", run.train.data_dir, 0, run.program->image_size());
      random::SeedScope seed(a->seed);
      auto x = runtime::data::spread_rows(test.images, a->n).to(run.device);
      const auto out = a->out.empty() ? run.dir / fmt::format("reconstructions_{}_{}.png", name, a->n)
                                      : std::filesystem::path(a->out);
      save_reconstructions(out, x, run.program->reconstruct(x));
      std::printf("wrote %lld test images of %s, each followed by its reconstruction, to %s\n",
                  static_cast<long long>(x.size(0)), name.c_str(), out.string().c_str());
      return;
    }
    if (!(a->temperature > 0))
      throw UsageError(fmt::format("sample: --temperature must be positive, got {}", a->temperature));
    auto run = open_run(a->run, a->device);
    random::SeedScope seed(a->seed);
    torch::Tensor images;
    try {
      images = run.program->sample_tempered(a->n, a->temperature).cpu();
    } catch (const ArgumentError& e) {
      throw UsageError(fmt::format("sample: {}", e.what()));
    }
    const auto out = a->out.empty() ? run.dir / fmt::format("samples_{}.png", a->n) : std::filesystem::path(a->out);
    save_image_grid(out, images, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(a->n)))));
    std::printf("wrote %lld samples to %s\n", static_cast<long long>(a->n), out.string().c_str());
  });
}};

}  // namespace
}  // namespace ppl::cli
