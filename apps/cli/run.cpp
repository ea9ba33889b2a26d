#include "run.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <ppl/core/archive.hpp>

#include "commands.hpp"

namespace ppl::cli {

nlohmann::json train_options_to_json(const TrainOptions& t) {
  return {{"data", t.data},         {"steps", t.steps},           {"batch_size", t.batch_size},
          {"checkpoint_every", t.checkpoint_every}, {"eval_every", t.eval_every}, {"n_train", t.n_train},
          {"seed", t.seed},         {"device", t.device},         {"data_dir", t.data_dir},
          {"lr_decay", t.lr_decay}, {"lr_plateau", t.lr_plateau},   {"lr_factor", t.lr_factor},
          {"lr_threshold", t.lr_threshold}, {"min_lr", t.min_lr}, {"n_train_subset", "spread"}};
}

void check_train_options(const TrainOptions& t, const std::function<std::string(std::string_view key)>& name) {
  auto fail = [&](std::string_view key, const auto& value, std::string_view requirement) {
    throw UsageError(fmt::format("train: {} is {}, but must be {}", name(key), value, requirement));
  };
  if (t.steps < 1) fail("steps", t.steps, "at least 1");
  if (t.checkpoint_every < 1) fail("checkpoint_every", t.checkpoint_every, "at least 1");
  if (t.batch_size < 0) fail("batch_size", t.batch_size, "at least 0 (0: the program's batch size)");
  if (t.n_train < 0) fail("n_train", t.n_train, "at least 0 (0: every image)");
  if (t.eval_every < 0) fail("eval_every", t.eval_every, "at least 0 (0: no evaluations)");
  if (!(t.lr_decay > 0 && t.lr_decay <= 1)) fail("lr_decay", t.lr_decay, "in (0, 1]");
  if (t.lr_plateau < -1) fail("lr_plateau", t.lr_plateau, "a patience >= 0 (or -1: off)");
  if (!(t.lr_factor > 0 && t.lr_factor < 1)) fail("lr_factor", t.lr_factor, "in (0, 1)");
  if (!(t.lr_threshold >= 0 && std::isfinite(t.lr_threshold))) fail("lr_threshold", t.lr_threshold, "finite and nonnegative");
  if (!(t.min_lr >= 0 && std::isfinite(t.min_lr))) fail("min_lr", t.min_lr, "finite and nonnegative");
}

TrainOptions train_options_from_json(const nlohmann::json& train, const std::filesystem::path& config_path) {
  auto where = [&](std::string_view key) { return fmt::format("\"train.{}\" in {}", key, config_path.string()); };
  if (!train.is_object()) throw UsageError(fmt::format("{}: \"train\" must be an object", config_path.string()));
  // Each key's value when present (or the default when `required` is false),
  // with its JSON type checked.
  auto field = [&]<class T>(const char* key, T& out, bool required) {
    const auto it = train.find(key);
    if (it == train.end()) {
      if (required) throw UsageError(fmt::format("{} is missing", where(key)));
      return;
    }
    bool ok;
    if constexpr (std::is_same_v<T, std::string>) ok = it->is_string();
    else if constexpr (std::is_same_v<T, uint64_t>) ok = it->is_number_unsigned();
    else if constexpr (std::is_integral_v<T>) ok = it->is_number_integer();
    else ok = it->is_number();
    if (!ok)
      throw UsageError(fmt::format("{} is {}, but must be {}", where(key), it->dump(),
                                   std::is_same_v<T, std::string> ? "a string"
                                   : std::is_same_v<T, uint64_t>  ? "a whole number of at least 0"
                                   : std::is_integral_v<T>        ? "a whole number"
                                                                  : "a number"));
    out = it->get<T>();
  };
  TrainOptions t;
  field("data", t.data, true);
  field("steps", t.steps, true);
  field("batch_size", t.batch_size, true);
  field("checkpoint_every", t.checkpoint_every, true);
  field("eval_every", t.eval_every, true);
  field("n_train", t.n_train, true);
  field("seed", t.seed, true);
  field("device", t.device, false);
  field("data_dir", t.data_dir, false);
  field("lr_decay", t.lr_decay, false);
  field("lr_plateau", t.lr_plateau, false);
  field("lr_factor", t.lr_factor, false);
  field("lr_threshold", t.lr_threshold, false);
  field("min_lr", t.min_lr, false);
  check_train_options(t, where);
  return t;
}

nlohmann::json run_identity(const nlohmann::json& config) {
  nlohmann::json identity{{"program", config.at("program")}, {"options", config.at("options")}};
  const auto& t = config.at("train");
  for (const char* key : {"data", "batch_size", "n_train", "seed", "lr_decay", "lr_plateau", "lr_factor",
                          "lr_threshold", "min_lr"})
    if (t.contains(key)) identity["train"][key] = t.at(key);
  return identity;
}

void check_run_identity(const nlohmann::json& config, const std::filesystem::path& config_path,
                        const std::filesystem::path& checkpoint) {
  nlohmann::json metadata;
  try {
    metadata = read_archive_metadata(checkpoint);
  } catch (const Error& e) {
    throw UsageError(fmt::format("cannot load the checkpoint {}: {}", checkpoint.string(), e.what()));
  }
  const auto user = metadata.find("user");
  if (user == metadata.end() || !user->is_object() || !user->contains("run")) return;
  const auto& trained = user->at("run");
  const auto now = run_identity(config);
  const auto patch = nlohmann::json::diff(trained, now);
  if (patch.empty()) return;
  // The first difference, as "options.z_what_size" with both values.
  const auto pointer = nlohmann::json::json_pointer(patch.front().at("path").get<std::string>());
  std::string key = pointer.to_string().substr(1);
  std::replace(key.begin(), key.end(), '/', '.');
  auto value_at = [&](const nlohmann::json& j) {
    return j.contains(pointer) ? j.at(pointer).dump() : std::string("absent");
  };
  throw UsageError(fmt::format("{} was changed after training: \"{}\" is {} there, but the checkpoint {} was trained "
                               "with {}; restore it, or train a new run with the new setting",
                               config_path.string(), key, value_at(now), checkpoint.string(), value_at(trained)));
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("cannot read {} (no such file or not readable)", path.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("{} is not valid JSON: {}", path.string(), e.what()));
  }
}

nlohmann::json read_config(const std::filesystem::path& path) {
  auto config = read_json_file(path);
  auto require = [&](const char* key, bool ok, const char* what) {
    if (!ok) throw UsageError(fmt::format("{}: \"{}\" must be {}", path.string(), key, what));
  };
  require("(top level)", config.is_object(), "an object");
  require("program", config.contains("program") && config["program"].is_string(), "the program's name");
  require("options", config.contains("options") && config["options"].is_object(), "an object of program options");
  require("train", config.contains("train") && config["train"].is_object(), "an object of training settings");
  return config;
}

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
