#include "run.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "commands.hpp"

namespace ppl::cli {

std::unique_ptr<programs::ImageProgram> make_program(const nlohmann::json& config, const std::filesystem::path& path) {
  const auto name = config.at("program").get<std::string>();
  try {
    return programs::find_program(name).make(config.at("options"));
  } catch (const Error& e) {
    throw UsageError(fmt::format("{}: the options of program \"{}\": {}", path.string(), name, e.what()));
  }
}

RunLock::RunLock(const std::filesystem::path& dir) {
  const auto path = dir / "train.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw UsageError(fmt::format("train: cannot create {}: {}", path.string(), std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    const auto n = ::pread(fd_, pid, sizeof pid - 1, 0);
    ::close(fd_);
    fd_ = -1;
    throw UsageError(fmt::format("train: the run in {} is being trained by another process{}; wait for it to end or "
                                 "stop it first",
                                 dir.string(), n > 0 ? fmt::format(" (pid {})", std::string(pid, static_cast<size_t>(n))) : ""));
  }
  const auto text = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, text.data(), text.size(), 0) < 0) {
    // The pid is only for the message above; the lock holds without it.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

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
  if (program.optimiser() == "rmsprop") adam.rmsprop();
  return adam;
}

Run open_run(const std::filesystem::path& dir, const std::string& device_override) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir))
    throw UsageError(fmt::format("run directory {} does not exist; train one with `ppl train PROGRAM --out {}`",
                                 dir.string(), dir.string()));
  const auto config_path = dir / "config.json", checkpoint = dir / "checkpoint.bin";
  if (!fs::exists(config_path) || !fs::exists(checkpoint))
    throw UsageError(fmt::format("{} is not a finished or checkpointed run or a model folder (config.json and "
                                 "checkpoint.bin expected)",
                                 dir.string()));
  Run run;
  run.dir = dir;
  run.config = read_config(config_path);
  run.train = train_options_from_json(run.config.at("train"), config_path);
  check_run_identity(run.config, config_path, checkpoint);
  if (!device_override.empty()) run.train.device = device_override;
  run.device = parse_device(run.train.device);
  param_store().clear();
  run.program = make_program(run.config, config_path);
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
