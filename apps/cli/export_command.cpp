// `ppl export RUN --out models/NAME`: a released model from a run: its
// weights (float32, or float16 to halve the file) without optimiser state,
// its config.json and a card.
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include <ppl/core/archive.hpp>
#include <ppl/core/atomic_file.hpp>
#include <ppl/core/errors.hpp>

#include "commands.hpp"
#include "metrics.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {

struct ExportArgs {
  std::string run;
  std::string out;
  double max_mb = 25;  ///< the largest checkpoint a released model may hold, in MB (10^6 bytes)
  std::string dtype = "float32";  ///< how the parameters are stored: float32 or float16
};

/// The checkpoint of `archive` as a released model keeps it: every tensor but
/// the optimiser's moments and its learning-rate schedule ("adam/",
/// "schedule/"), the parameters ("param/") as `weights`, the other
/// floating-point tensors (the ELBO's baselines) as float32, and "released"
/// in the metadata (the step it was taken at, the weights' type and, when
/// the run's metrics.jsonl has it, its training time in seconds), which
/// `train --resume` reads. Loading widens float16 weights to float32.
TensorArchive released_archive(const TensorArchive& archive, int64_t step, torch::ScalarType weights,
                               std::optional<double> train_seconds) {
  TensorArchive out;
  out.metadata = archive.metadata;
  for (const auto& [name, t] : archive.tensors) {
    if (name.rfind("adam/", 0) == 0 || name.rfind("schedule/", 0) == 0) continue;
    auto v = t.detach().cpu();
    if (v.is_floating_point()) v = v.to(name.rfind("param/", 0) == 0 ? weights : torch::kFloat32);
    out.tensors.emplace_back(name, v.contiguous());
  }
  out.metadata["released"] = {{"step", step}, {"weights", weights == torch::kHalf ? "float16" : "float32"}};
  if (train_seconds) out.metadata["released"]["train_seconds"] = *train_seconds;
  return out;
}

/// `seconds` as "7 h 07 min" (or "42 min").
std::string hours_minutes(double seconds) {
  const auto minutes = static_cast<int64_t>(std::lround(seconds / 60));
  return minutes >= 60 ? fmt::format("{} h {:02} min", minutes / 60, minutes % 60) : fmt::format("{} min", minutes);
}

/// A card to fill in: what the model is and how it was trained, with the
/// figures and the commands that reproduce them left for the author.
std::string card(const std::string& name, const Run& run, double megabytes, const std::string& dtype,
                 std::optional<double> train_seconds) {
  const auto& t = run.train;
  const int64_t batch = t.batch_size > 0 ? t.batch_size : run.program->batch_size();
  const auto program = run.config.at("program").get<std::string>();
  return fmt::format(
      "# {name}\n\n"
      "- program: `{program}` (options in config.json)\n"
      "- data: `{data}`, train split{subset}; figures on the test split\n"
      "- steps: {steps} ({images} images seen, batch {batch} x {world} rank(s)), seed {seed}\n"
      "- machine and wall time: (fill in the machine){wall}\n"
      "- checkpoint: checkpoint.bin, {dtype} weights without optimiser state, {mb:.1f} MB\n\n"
      "## Trained with\n\n"
      "```sh\n"
      "ppl train {program} --data {data} --steps {steps} --seed {seed}{n_train} --config OPTIONS.json --out runs/{name}\n"
      "ppl export runs/{name} --out models/{name}{export_dtype}\n"
      "```\n\n"
      "OPTIONS.json holds the \"options\" object of config.json.\n\n"
      "## Figures\n\n"
      "| figure | value | tolerance | reproduce with |\n"
      "|---|---|---|---|\n"
      "| (fill in) | | | `ppl ll models/{name} --particles 100 --n 1000` |\n",
      fmt::arg("name", name), fmt::arg("program", program), fmt::arg("data", t.data),
      fmt::arg("subset", t.n_train > 0 ? fmt::format(" ({} images spread over it)", t.n_train) : std::string()),
      fmt::arg("wall", train_seconds ? fmt::format("; {} of training (metrics.jsonl's train_seconds)",
                                                   hours_minutes(*train_seconds))
                                     : std::string()),
      fmt::arg("steps", run.step), fmt::arg("images", run.step * batch * t.world_size), fmt::arg("batch", batch),
      fmt::arg("world", t.world_size), fmt::arg("seed", t.seed), fmt::arg("mb", megabytes), fmt::arg("dtype", dtype),
      fmt::arg("export_dtype", (dtype == "float32" ? std::string() : " --dtype " + dtype) +
                                   (megabytes > ExportArgs{}.max_mb
                                        ? fmt::format(" --max-mb {}", static_cast<int>(std::ceil(megabytes)))
                                        : std::string())),
      fmt::arg("n_train", t.n_train > 0 ? fmt::format(" --n-train {}", t.n_train) : std::string()));
}

void export_model(const ExportArgs& a) {
  namespace fs = std::filesystem;
  if (a.out.empty()) throw UsageError("export: --out is empty; name the model folder, e.g. --out models/NAME");
  if (!(a.max_mb > 0)) throw UsageError(fmt::format("export: --max-mb is {}, but must be positive", a.max_mb));
  if (a.dtype != "float32" && a.dtype != "float16")
    throw UsageError(fmt::format("export: --dtype is \"{}\", but must be float32 or float16", a.dtype));
  const auto weights = a.dtype == "float16" ? torch::kHalf : torch::kFloat32;
  const fs::path dir = a.run, out = a.out;
  if (fs::exists(out / "checkpoint.bin"))
    throw UsageError(fmt::format("export: {} already holds a model; remove it or choose another --out", out.string()));
  // Opening the run checks that its checkpoint loads and fits its program.
  const auto run = open_run(dir, "cpu");
  TensorArchive archive;
  try {
    archive = load_archive(dir / "checkpoint.bin");
  } catch (const Error& e) {
    throw UsageError(fmt::format("export: cannot read the checkpoint of {}: {}", dir.string(), e.what()));
  }
  std::ostringstream bytes;
  // Its training time goes with it, so that a copy resumed with
  // --max-minutes counts on from there (a model folder not trained since
  // its release has no records: its own release says).
  auto train_seconds = trained_seconds(kept_metrics(dir / "metrics.jsonl", run.step, false));
  if (!train_seconds) train_seconds = released_train_seconds(archive.metadata);
  write_archive(released_archive(archive, run.step, weights, train_seconds), bytes);
  const double megabytes = static_cast<double>(bytes.str().size()) / 1e6;
  if (megabytes > a.max_mb)
    throw UsageError(fmt::format("export: the weights of {} take {:.1f} MB, over the --max-mb {} a released model may "
                                 "hold",
                                 dir.string(), megabytes, a.max_mb));
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw UsageError(fmt::format("export: cannot create {}: {}", out.string(), ec.message()));
  // The model reads data from the default roots and runs on the CPU unless
  // told otherwise (neither is part of what its numbers depend on).
  auto config = run.config;
  config["train"]["data_dir"] = "";
  config["train"]["device"] = "cpu";
  // A run started with --init-from names its source as the user gave it,
  // maybe as a path of this machine; the card's commands name runs
  // runs/NAME, so the model names the source the same way.
  if (config.contains("init_from") && config["init_from"].contains("run")) {
    auto source = fs::path(config["init_from"]["run"].get<std::string>()).lexically_normal();
    if (source.filename().empty()) source = source.parent_path();
    config["init_from"]["run"] = (fs::path("runs") / source.filename()).string();
  }
  write_atomic(out / "config.json", config.dump(2));
  write_atomic(out / "checkpoint.bin", bytes.str());
  const auto readme = out / "README.md";
  auto name = fs::absolute(out).lexically_normal();
  if (name.filename().empty()) name = name.parent_path();  // "models/NAME/"
  if (!fs::exists(readme))
    write_atomic(readme, card(name.filename().string(), run, megabytes, a.dtype, train_seconds));
  std::printf("exported %s at step %lld to %s (checkpoint.bin %.1f MB of %s weights, config.json, README.md)\n",
              dir.string().c_str(), static_cast<long long>(run.step), out.string().c_str(), megabytes,
              a.dtype.c_str());
}

RegisterCommand register_export{"export", [](CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "Write a released model (weights, config.json, README.md card) from a run");
  cmd->add_option("run", a->run, "run directory")->required();
  cmd->add_option("--out", a->out, "model folder, e.g. models/NAME")->required();
  cmd->add_option("--max-mb", a->max_mb, "refuse a checkpoint larger than this many MB")->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "how the weights are stored: float32, or float16 (half the size)")
      ->capture_default_str();
  cmd->callback([a] { export_model(*a); });
}};

}  // namespace
}  // namespace ppl::cli
