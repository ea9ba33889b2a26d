// `ppl sample RUN --n N --out FILE.png`: unconditional samples as a PNG grid;
// with --reconstruct, test images and their reconstructions.
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

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
  std::string data;
};

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
  cmd->add_option("--data", a->data, "with --reconstruct: data set (default: the run's)");
  cmd->callback([a] {
    if (a->n < 1) throw UsageError("sample: --n must be at least 1");
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
