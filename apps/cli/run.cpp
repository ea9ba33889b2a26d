#include "run.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <unistd.h>

#include <fmt/format.h>

#include "commands.hpp"

namespace ppl::cli {

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw UsageError("--device cuda: no CUDA device is available to this build of libtorch; use --device cpu");
    return torch::kCUDA;
  }
  throw UsageError(fmt::format("--device is \"{}\", but must be cpu or cuda", name));
}

infer::Adam adam_for(const programs::ImageProgram& program) {
  const auto groups = program.param_groups();
  double base = 1e-3;
  for (const auto& g : groups)
    if (g.prefix.empty()) base = g.lr;
  infer::Adam adam(base);
  for (const auto& g : groups)
    if (!g.prefix.empty()) adam.group(g.prefix, g.lr);
  adam.clip(program.clip_norm());
  return adam;
}

Run open_run(const std::filesystem::path& dir, const std::string& device_override) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir))
    throw UsageError(fmt::format("run directory {} does not exist; train one with `ppl train PROGRAM --out {}`",
                                 dir.string(), dir.string()));
  const auto config_path = dir / "config.json", checkpoint = dir / "checkpoint.bin";
  if (!fs::exists(config_path) || !fs::exists(checkpoint))
    throw UsageError(fmt::format("{} is not a finished or checkpointed run (config.json and checkpoint.bin expected)",
                                 dir.string()));
  Run run;
  run.dir = dir;
  try {
    run.config = nlohmann::json::parse(std::ifstream(config_path));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("{} is corrupt: {}", config_path.string(), e.what()));
  }
  const auto& t = run.config.at("train");
  run.train.data = t.value("data", "");
  run.train.device = device_override.empty() ? t.value("device", "cpu") : device_override;
  run.train.data_dir = t.value("data_dir", "");
  run.train.seed = t.value("seed", uint64_t{0});
  run.device = parse_device(run.train.device);
  param_store().clear();
  run.program = programs::find_program(run.config.at("program")).make(run.config.at("options"));
  run.program->to(run.device);
  infer::Elbo elbo;
  infer::Optimiser optimiser(adam_for(*run.program));
  int64_t step = 0;
  try {
    step = infer::load_checkpoint(checkpoint, elbo, optimiser);
  } catch (const Error& e) {
    throw UsageError(fmt::format("cannot load the checkpoint of {}: {}", dir.string(), e.what()));
  }
  // Schedules and warm-ups as training left them (e.g. GNM's temperature and
  // beta_g, AIR's z_pres warm-up), the training-only objective off.
  run.step = step;
  run.program->set_step(step);
  run.program->set_training(false);
  bind_checkpoint(*run.program, run.device, param_store().names(), checkpoint);
  return run;
}

void bind_checkpoint(programs::ImageProgram& program, const torch::Device& device,
                     const std::vector<std::string>& loaded, const std::filesystem::path& checkpoint) {
  // Module registration copies the loaded values into the networks; the
  // param sites of one guide and model pass name what the program uses.
  std::set<std::string> used;
  {
    torch::NoGradGuard no_grad;
    random::SeedScope seed(0);
    auto x = torch::zeros({1, 1, program.image_size(), program.image_size()}, torch::TensorOptions().device(device));
    auto guide_trace = ppl::trace([&] { return program.guide(x); });
    auto model_trace = ppl::trace(handlers::replay([&] { return program.model(x); }, guide_trace));
    for (const Trace* t : {&guide_trace, &model_trace})
      for (const auto& s : *t)
        if (s.kind == SiteKind::param) used.insert(s.name);
  }
  const std::set<std::string> have(loaded.begin(), loaded.end());
  std::vector<std::string> missing, unused;
  std::set_difference(used.begin(), used.end(), have.begin(), have.end(), std::back_inserter(missing));
  std::set_difference(have.begin(), have.end(), used.begin(), used.end(), std::back_inserter(unused));
  if (missing.empty() && unused.empty()) return;
  auto first = [](const std::vector<std::string>& v) { return v.empty() ? std::string("none") : fmt::format("\"{}\"", v[0]); };
  throw UsageError(fmt::format("checkpoint {} does not match the program as built now: {} of its parameters are missing "
                               "(first {}) and {} unused (first {}); it was written by another version or configuration "
                               "of the program, so train a new run",
                               checkpoint.string(), missing.size(), first(missing), unused.size(), first(unused)));
}

}  // namespace ppl::cli
