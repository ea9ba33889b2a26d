// `ppl train PROGRAM --data NAME ...`: stochastic variational inference with
// checkpoints, resume, metrics, progress and pictures of the result.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ppl/core/archive.hpp>
#include <ppl/core/atomic_file.hpp>
#include <ppl/infer/distributed.hpp>
#include <ppl/runtime/data/registry.hpp>

#include "commands.hpp"
#include "metrics.hpp"
#include "profile.hpp"
#include "progress.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {

struct TrainArgs {
  std::string program;
  std::string out = "runs/latest";
  std::string config;
  bool resume = false;
  std::string init_from;           ///< a run whose checkpoint a new run starts from ("": none)
  std::vector<std::string> reinit;  ///< with init_from: parameters (by prefix) that start afresh
  int nproc = 1;                   ///< local worker processes (data-parallel)
  std::string backend = "gloo";    ///< c10d backend of a group
  double rendezvous_timeout = 60;  ///< seconds the ranks wait for each other to join
  std::string profile;             ///< Chrome trace of a window of steps ("": no profiling)
  int64_t profile_steps = 20;      ///< steps in that window
  int64_t profile_after = 3;       ///< steps before it (first-step allocations and kernel choices)
  double max_minutes = 0;          ///< stop once the run has trained this long in all (0: no limit)
  TrainOptions train;
  std::set<std::string> given;  ///< the flags given on the command line ("--eval-every", ...)
};

/// How a training setting is named in messages about the command line: its flag.
std::string flag_name(std::string_view key) {
  if (key == "world_size") return "--nproc";
  std::string flag = "--" + std::string(key);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

/// The program's optimiser with the run's learning-rate schedule, clipping
/// the gradient of a loss summed over `batch` images.
infer::Adam scheduled_adam(const programs::ImageProgram& program, const TrainOptions& t, int64_t batch) {
  auto adam = adam_for(program).decay_by(t.lr_decay).floor(t.min_lr).clip(program.clip_bound(batch));
  if (t.lr_plateau >= 0)
    adam.reduce_on_plateau({.factor = t.lr_factor, .patience = t.lr_plateau, .threshold = t.lr_threshold, .relative = false});
  return adam;
}

/// Renders the loss curve (moving average) as a 480 x 320 RGB image.
torch::Tensor plot_curve(const std::vector<std::pair<int64_t, double>>& points) {
  const int64_t w = 480, h = 320, margin = 20;
  auto img = torch::ones({3, h, w});
  // Axes.
  img.index_put_({torch::indexing::Slice(), h - margin, torch::indexing::Slice(margin, w - margin)}, 0.0);
  img.index_put_({torch::indexing::Slice(), torch::indexing::Slice(margin, h - margin), margin}, 0.0);
  if (points.size() < 2) return img;
  double lo = points.front().second, hi = lo;
  for (auto& [s, v] : points) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (hi - lo < 1e-12) hi = lo + 1;
  const double s0 = static_cast<double>(points.front().first), s1 = static_cast<double>(points.back().first);
  auto px = [&](double s) { return margin + (s - s0) / std::max(s1 - s0, 1.0) * (w - 2 * margin - 1); };
  auto py = [&](double v) { return (h - margin - 1) - (v - lo) / (hi - lo) * (h - 2 * margin - 1); };
  auto acc = img.accessor<float, 3>();
  for (size_t i = 1; i < points.size(); ++i) {
    const double x0 = px(static_cast<double>(points[i - 1].first)), y0 = py(points[i - 1].second);
    const double x1 = px(static_cast<double>(points[i].first)), y1 = py(points[i].second);
    const int n = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    for (int k = 0; k <= n; ++k) {
      const auto x = static_cast<int64_t>(std::lround(x0 + (x1 - x0) * k / n));
      const auto y = static_cast<int64_t>(std::lround(y0 + (y1 - y0) * k / n));
      if (x < 0 || x >= w || y < 0 || y >= h) continue;
      acc[0][y][x] = 0.1f;
      acc[1][y][x] = 0.3f;
      acc[2][y][x] = 0.8f;
    }
  }
  return img;
}

/// The seed of training step `step`'s draws.
uint64_t step_seed(uint64_t seed, int64_t step) { return seed * 1000003 + static_cast<uint64_t>(step); }

/// The seed of the evaluation (and pictures) after `step`: a stream apart
/// from the training steps'.
uint64_t evaluation_seed(uint64_t seed, int64_t step) { return step_seed(seed, step) + 0x9E3779B97F4A7C15ull; }

/// The training settings of a resumed run: the stored ones, with --steps
/// (extends the run; never shortens it), --eval-every, --checkpoint-every,
/// --checkpoint-minutes, --data-dir and
/// --device taken from the command line when given. A flag that would
/// change what the run computes (its data, batches, seed or schedule) is a
/// UsageError naming it, unless it repeats the stored value.
TrainOptions resumed_settings(const TrainArgs& args, const nlohmann::json& stored_json,
                             const std::filesystem::path& config_path) {
  const auto dir = config_path.parent_path();
  const TrainOptions& given = args.train;
  const TrainOptions stored = train_options_from_json(stored_json, config_path);
  TrainOptions t = given;
  t.data = stored.data;
  t.batch_size = stored.batch_size;
  t.n_train = stored.n_train;
  // Runs written before --n-train spread its subset over a stored split
  // (they have no n_train_subset) trained on the split's first images.
  const auto stored_sets = runtime::data::dataset_names();
  if (t.n_train > 0 && !stored_json.contains("n_train_subset") &&
      std::find(stored_sets.begin(), stored_sets.end(), t.data) != stored_sets.end())
    fmt::print(stderr,
               "train: warning: the run in {0} took its --n-train {1} images as the first {1} of {2}'s training "
               "split; from this resume on it trains on {1} images spread over the split\n",
               dir.string(), t.n_train, t.data);
  // Runs written before multi-mnist followed AIR's published recipe (they
  // have no multi_mnist_recipe) trained on full-size digits that overlap,
  // the scenes now called multi-mnist-overlap.
  if (t.data == "multi-mnist" && !stored_json.contains("multi_mnist_recipe"))
    fmt::print(stderr,
               "train: warning: the run in {} trained on multi-mnist's earlier scenes (full-size digits that may "
               "overlap, now multi-mnist-overlap); from this resume on it trains on the published recipe's scenes\n",
               dir.string());
  t.seed = stored.seed;
  t.lr_decay = stored.lr_decay;
  t.lr_plateau = stored.lr_plateau;
  t.lr_factor = stored.lr_factor;
  t.lr_threshold = stored.lr_threshold;
  t.min_lr = stored.min_lr;
  auto keep = [&](const char* flag, const auto& stored_value, const auto& value, const char* note = "") {
    if (args.given.count(flag) && !(value == stored_value))
      throw UsageError(fmt::format("train: {} is {}, but the run in {} was trained with {}{}; a resumed run keeps it "
                                   "(start a new run, another --out, to change it)",
                                   flag, nlohmann::json(value).dump(), dir.string(), nlohmann::json(stored_value).dump(),
                                   note));
  };
  keep("--data", t.data, given.data);
  keep("--batch-size", t.batch_size, given.batch_size, t.batch_size == 0 ? " (the program's own)" : "");
  keep("--n-train", t.n_train, given.n_train);
  keep("--seed", t.seed, given.seed);
  keep("--lr-decay", t.lr_decay, given.lr_decay);
  keep("--lr-plateau", t.lr_plateau, given.lr_plateau);
  keep("--lr-factor", t.lr_factor, given.lr_factor);
  keep("--lr-threshold", t.lr_threshold, given.lr_threshold);
  keep("--min-lr", t.min_lr, given.min_lr);
  // Settings that change neither the batches nor the draws.
  if (!args.given.count("--eval-every")) t.eval_every = stored.eval_every;
  if (!args.given.count("--checkpoint-every")) t.checkpoint_every = stored.checkpoint_every;
  if (!args.given.count("--checkpoint-minutes")) t.checkpoint_minutes = stored.checkpoint_minutes;
  if (!args.given.count("--data-dir")) t.data_dir = stored.data_dir;
  if (!args.given.count("--device")) t.device = stored.device;
  t.steps = args.given.count("--steps") ? std::max(given.steps, stored.steps) : stored.steps;
  return t;
}

/// The program options of --config `file`: a JSON object, or a UsageError
/// naming the file.
nlohmann::json read_options_file(const std::string& file) {
  auto user = read_json_file(file);
  if (!user.is_object())
    throw UsageError(fmt::format("train: --config {} must hold a JSON object of program options", file));
  return user;
}

/// The --config of a resumed run: it may repeat the run's options (so the
/// command that started a run also continues it) but not change them; a key
/// the run does not have or a value other than the stored one is a
/// UsageError naming the key and both values.
void check_resume_config(const std::string& file, const nlohmann::json& stored,
                         const std::filesystem::path& dir) {
  const auto user = read_options_file(file);
  for (const auto& [key, value] : user.items()) {
    if (!stored.contains(key))
      throw UsageError(fmt::format("train: --config {} sets \"{}\", which the run in {} does not have; a resumed run "
                                   "keeps its options (start a new run, another --out, to change them)",
                                   file, key, dir.string()));
    if (stored.at(key) != value)
      throw UsageError(fmt::format("train: --config {} sets \"{}\" to {}, but the run in {} was trained with {}; a "
                                   "resumed run keeps its options (start a new run, another --out, to change them)",
                                   file, key, value.dump(), dir.string(), stored.at(key).dump()));
  }
}

/// Removes what a killed writer left in the run directory `dir`: the
/// temporary files of write_atomic ("checkpoint.bin.tmp1234"). Called with
/// the run's lock held, so no live writer owns them.
void remove_stale_temporaries(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename().string();
    for (const char* file : {"checkpoint.bin", "config.json", "metrics.jsonl"}) {
      const auto prefix = std::string(file) + ".tmp";
      if (name.size() > prefix.size() && name.starts_with(prefix) &&
          std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(), ::isdigit))
        std::filesystem::remove(entry.path(), ec);
    }
  }
}

/// Appends `lines` to `path` and flushes them to disk.
void append_lines(const std::filesystem::path& path, std::vector<std::string>& lines) {
  {
    std::ofstream out(path, std::ios::app);
    for (const auto& l : lines) out << l << "\n";
    out.flush();
    if (!out) throw UsageError(fmt::format("train: cannot append to {} (disk full?)", path.string()));
  }
  if (!sync_file(path)) throw UsageError(fmt::format("train: cannot flush {} to disk", path.string()));
  lines.clear();
}

/// The seed of rank `rank`'s draws at `step` (rank 0: step_seed's stream, so
/// that a run on one process is what it always was).
uint64_t rank_seed(uint64_t seed, int64_t step, int rank) {
  return step_seed(seed, step) ^ (static_cast<uint64_t>(rank) * 0xD1B54A32D192ED03ull);
}

/// Starts `nproc` local workers of this same command (over Gloo on the
/// loopback interface, a TCPStore on a free port) and waits for them; when one
/// fails, stops the others and names it.
void launch_workers(const TrainArgs& args);

/// Training, alone or as one rank of a group (the torchrun environment).
void train(const TrainArgs& args) {
  namespace fs = std::filesystem;
  const auto environment = infer::distributed_from_environment();
  if (!environment && args.nproc > 1) return launch_workers(args);
  if (args.nproc < 1) throw UsageError(fmt::format("train: --nproc is {}, but must be at least 1", args.nproc));
  if (args.resume && !args.init_from.empty())
    throw UsageError("train: --resume continues the run in --out, --init-from starts a new one; pass one of them");
  if (!args.reinit.empty() && args.init_from.empty())
    throw UsageError(fmt::format("train: --reinit {} chooses which parameters of an --init-from run start afresh; "
                                 "pass --init-from too",
                                 args.reinit.front()));
  if (!(args.max_minutes >= 0))
    throw UsageError(fmt::format("train: --max-minutes is {}, but must be at least 0 (0: no limit)", args.max_minutes));
  if (args.profile_steps < 1 || args.profile_after < 0)
    throw UsageError(fmt::format("train: --profile-steps is {} and --profile-after {}, but they must be at least 1 "
                                 "and 0",
                                 args.profile_steps, args.profile_after));
  std::shared_ptr<infer::ProcessGroup> group;
  if (environment && environment->world_size > 1) {
    auto o = *environment;
    o.backend = infer::backend_from(args.backend);
    o.rendezvous_timeout = std::chrono::milliseconds(static_cast<int64_t>(args.rendezvous_timeout * 1000));
    group = infer::init_process_group(o);
  }
  const int rank = group ? group->rank() : 0, world = group ? group->size() : 1;
  const bool lead = rank == 0;  // writes the run: config, checkpoints, metrics, pictures

  const fs::path dir = args.out;
  const auto config_path = dir / "config.json", checkpoint = dir / "checkpoint.bin";
  nlohmann::json config;
  TrainOptions t = args.train;
  if (lead) {
    if (args.resume) {
      if (!fs::exists(config_path) || !fs::exists(checkpoint))
        throw UsageError(fmt::format("train: --resume needs a run in {} (config.json and checkpoint.bin); none found",
                                     dir.string()));
      config = read_config(config_path);
      if (config.at("program") != args.program)
        throw UsageError(fmt::format("train: {} holds a run of \"{}\", not \"{}\"", dir.string(),
                                     config.at("program").get<std::string>(), args.program));
      if (args.given.count("--config")) check_resume_config(args.config, config.at("options"), dir);
      check_run_identity(config, config_path, checkpoint);
      t = resumed_settings(args, config.at("train"), config_path);
    } else {
      if (fs::exists(checkpoint))
        throw UsageError(fmt::format("train: {} already holds a run; pass --resume to continue it or choose another "
                                     "--out",
                                     dir.string()));
      const auto& info = programs::find_program(args.program);
      nlohmann::json options = info.default_options();
      if (!args.init_from.empty()) {
        // The source run's options, then --config's changes on top.
        const fs::path source = args.init_from;
        if (!fs::exists(source / "config.json") || !fs::exists(source / "checkpoint.bin"))
          throw UsageError(fmt::format("train: --init-from needs a run in {} (config.json and checkpoint.bin); none "
                                       "found",
                                       source.string()));
        const auto source_config = read_config(source / "config.json");
        if (source_config.at("program") != args.program)
          throw UsageError(fmt::format("train: --init-from {} holds a run of \"{}\", not \"{}\"", source.string(),
                                       source_config.at("program").get<std::string>(), args.program));
        check_run_identity(source_config, source / "config.json", source / "checkpoint.bin");
        options = source_config.at("options");
      }
      if (!args.config.empty()) {
        const auto user = read_options_file(args.config);
        for (const auto& [k, v] : user.items()) options[k] = v;
      }
      config = {{"program", args.program}, {"options", options}};
      if (!args.init_from.empty()) config["init_from"] = {{"run", args.init_from}};
    }
    t.world_size = world;
    t.backend = group ? group->backend() : t.backend;
    check_train_options(t, flag_name);
    config["train"] = train_options_to_json(t);
  }
  if (group) {
    // Every rank trains what rank 0 settled on.
    std::string text = lead ? config.dump() : std::string();
    infer::broadcast_bytes(*group, text);
    if (!lead) {
      config = nlohmann::json::parse(text);
      t = train_options_from_json(config.at("train"), "the configuration rank 0 sent");
      if (args.given.count("--device")) t.device = args.train.device;
    }
  }

  const auto device = parse_device(t.device);
  param_store().clear();
  manual_seed(t.seed);  // network initialisation
  auto program = make_program(config, args.config.empty() || args.resume ? config_path : fs::path(args.config));
  program->to(device);
  const int64_t batch = t.batch_size > 0 ? t.batch_size : program->batch_size();

  // A scene set without --n-train is an endless seeded stream: step s takes
  // the scenes (s - 1) * global_batch onwards, drawn when needed. Otherwise
  // the images are loaded once and shuffled per epoch.
  const int64_t global_batch = batch * world;
  const auto stream = t.n_train == 0 ? training_scene_stream(t.data, t.data_dir, program->image_size(), t.seed)
                                     : std::nullopt;
  ImageData data = stream ? scene_batch(*stream, 0, 1)
                          : load_image_data(t.data, "train", t.data_dir, t.n_train, program->image_size(), "--n-train");
  if (data.images.size(-1) != program->image_size() || data.images.size(-2) != program->image_size())
    throw UsageError(fmt::format("train: {} has {}x{} images but the program expects {}x{}; set image_size in --config",
                                 t.data, data.images.size(-2), data.images.size(-1), program->image_size(),
                                 program->image_size()));
  const int64_t n = data.images.size(0);
  if (!stream && n < global_batch)
    throw UsageError(fmt::format("train: {} has {} images, fewer than the batch size {}{}", t.data, n, global_batch,
                                 world > 1 ? fmt::format(" ({} on each of {} ranks)", batch, world) : ""));
  ImageData test;
  if (lead) test = load_image_data(t.data, "test", t.data_dir, 1000, program->image_size());

  // From here on the run directory is written: one process at a time.
  std::optional<RunLock> lock;
  if (lead) {
    fs::create_directories(dir);
    lock.emplace(dir);
    if (!args.resume && fs::exists(checkpoint))
      throw UsageError(fmt::format("train: {} already holds a run; pass --resume to continue it or choose another "
                                   "--out",
                                   dir.string()));
    remove_stale_temporaries(dir);
  }

  auto* prog = program.get();
  auto model = [prog](const torch::Tensor& x) { return prog->model(x); };
  auto guide = [prog](const torch::Tensor& x) { return prog->guide(x); };
  infer::Svi svi(model, guide, infer::Elbo(program->elbo_options()), scheduled_adam(*program, t, batch));
  svi.schedule_by_caller();  // with the loss per image, below
  if (group) svi.distribute(group);
  const bool scheduled = t.lr_decay != 1.0 || t.lr_plateau >= 0;
  int64_t start = 0;
  bool released = false;  // a released model (`ppl export`): weights without optimiser state
  double released_seconds = 0;  // the training time it records (its run's train_seconds)
  // A resumed run continues from its own checkpoint, an --init-from run from
  // the source run's (weights, optimiser state and step).
  const fs::path start_checkpoint = args.resume ? checkpoint : fs::path(args.init_from) / "checkpoint.bin";
  std::vector<std::string> fresh;  // the parameters --reinit starts afresh
  if (args.resume || !args.init_from.empty()) {  // every rank runs the same command line
    // Rank 0 reads the checkpoint and sends it: every rank starts from its state.
    std::string bytes;
    if (lead) {
      std::ifstream in(start_checkpoint, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (group) infer::broadcast_bytes(*group, bytes);
    try {
      std::istringstream in(bytes);
      auto archive = read_archive(in, bytes.size(), start_checkpoint.string());
      if (!args.reinit.empty()) fresh = infer::drop_parameters(archive, args.reinit, start_checkpoint.string());
      svi.set_steps(infer::load_checkpoint(archive, start_checkpoint.string(), svi.elbo(), svi.optimiser()));
      released = archive.metadata.contains("released");
      released_seconds = released_train_seconds(archive.metadata).value_or(0);
    } catch (const Error& e) {
      throw UsageError(fmt::format("train: cannot load the checkpoint of {}: {}",
                                   args.resume ? dir.string() : args.init_from, e.what()));
    }
    try {
      // The parameters --reinit left out take their values from the networks
      // as built now, when the first trace registers them.
      auto expected = param_store().names();
      expected.insert(expected.end(), fresh.begin(), fresh.end());
      bind_checkpoint(*program, device, expected, start_checkpoint);
    } catch (const Error& e) {
      if (args.resume) throw;
      throw UsageError(fmt::format("train: --init-from {}: its networks do not fit these options: {}", args.init_from,
                                   e.what()));
    }
    start = svi.steps();
    if (!args.resume) {
      config["init_from"]["step"] = start;
      if (!args.reinit.empty()) config["init_from"]["reinit"] = args.reinit;
      if (start >= t.steps)
        throw UsageError(fmt::format("train: --init-from {} is at step {}, so --steps {} leaves nothing to train",
                                     args.init_from, start, t.steps));
    }
    const auto afresh =
        fresh.empty() ? std::string()
                      : fmt::format("; {} parameters start afresh ({})", fresh.size(), fmt::join(args.reinit, ", "));
    if (lead && released)
      std::fprintf(stderr,
                   "train: %s holds a released model (weights without optimiser state): continuing its weights at "
                   "step %lld with a fresh Adam state, so the steps from here differ from the original run's%s\n",
                   args.resume ? dir.string().c_str() : args.init_from.c_str(), static_cast<long long>(start),
                   afresh.c_str());
    else if (lead && !args.resume)
      std::fprintf(stderr, "train: starting %s from %s at step %lld%s%s\n", dir.string().c_str(),
                   args.init_from.c_str(), static_cast<long long>(start),
                   world > 1 ? fmt::format(" on {} ranks", world).c_str() : "", afresh.c_str());
    else if (lead)
      std::fprintf(stderr, "train: resuming %s at step %lld%s\n", dir.string().c_str(), static_cast<long long>(start),
                   world > 1 ? fmt::format(" on {} ranks", world).c_str() : "");
  }

  const auto metrics_path = dir / "metrics.jsonl";
  double trained_before = 0;  // seconds of training before this segment (lead only)
  std::vector<std::pair<int64_t, double>> curve;
  std::vector<std::string> pending_metrics;
  nlohmann::json identity;
  if (lead) {
    // Written once the run is known to load: a resumed run records its
    // extended step count and any changed evaluation, checkpoint, data-directory,
    // device or world-size setting.
    write_atomic(config_path, config.dump(2));
    identity = nlohmann::json{{"run", run_identity(config)}};
    // metrics.jsonl holds exactly the steps up to the checkpoint's: records
    // are flushed before each checkpoint, and a resume drops those of the
    // steps after it (a kill came between the two), which it trains again.
    if (!args.init_from.empty() && !args.resume) {
      // The source run's records up to its checkpoint open the new run's
      // metrics, so its curves start at step 1.
      std::string inherited;
      for (const auto& j : kept_metrics(fs::path(args.init_from) / "metrics.jsonl", start, false))
        inherited += j.dump() + "\n";
      write_atomic(metrics_path, inherited);
    }
    const auto records = kept_metrics(metrics_path, start);
    for (const auto& j : records)
      if (j.contains("loss") && j["loss"].is_number()) curve.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
    // A released model's copy has no records of its training, but its
    // checkpoint carries their time.
    trained_before = trained_seconds(records).value_or(released_seconds);
  }
  auto last_checkpoint = std::chrono::steady_clock::now();
  auto flush = [&] {
    if (!lead) return;
    append_lines(metrics_path, pending_metrics);
    infer::save_checkpoint(checkpoint, svi, identity);
    last_checkpoint = std::chrono::steady_clock::now();
  };
  // A checkpoint is due every checkpoint_every steps, and when
  // checkpoint_minutes (> 0) have passed since the last one.
  auto checkpoint_due = [&](int64_t at) {
    if (at % t.checkpoint_every == 0) return true;
    return t.checkpoint_minutes > 0 &&
           std::chrono::duration<double>(std::chrono::steady_clock::now() - last_checkpoint).count() >=
               t.checkpoint_minutes * 60;
  };

  program->set_training(true);
  install_interrupt_handler();
  // --max-minutes: the run's training time in all, this segment's included.
  const auto begin = std::chrono::steady_clock::now();
  auto seconds_in_all = [&] {
    return trained_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  };
  bool out_of_time = false;
  // Every rank stops at the same step: a Ctrl-C seen by any of them stops
  // all, and so does the lead's clock.
  auto stop_requested = [&] {
    out_of_time = lead && args.max_minutes > 0 && seconds_in_all() >= args.max_minutes * 60;
    const bool stop = interrupted() || out_of_time;
    return group ? infer::sum_over_ranks(*group, stop ? 1.0 : 0.0) > 0 : stop;
  };

  std::optional<ProgressBar> bar;
  if (lead) bar.emplace(fmt::format("train {}{}", args.program, world > 1 ? fmt::format(" x{}", world) : ""), t.steps, start);
  double smoothed = NAN;
  int64_t step = start;
  bool stopped = args.max_minutes > 0 && stop_requested();  // the budget may be spent already
  // --profile: steps (start + after, start + after + steps] on rank 0.
  std::optional<StepProfiler> profiler;
  if (lead && !args.profile.empty()) profiler.emplace(args.profile);
  const int64_t profile_begin = start + args.profile_after, profile_end = profile_begin + args.profile_steps;
  std::chrono::steady_clock::time_point profile_clock;
  auto finish_profile = [&] {
    const double wall_us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - profile_clock).count();
    const auto costs = profiler->stop();
    const int64_t recorded = step - profile_begin;
    std::fprintf(stderr, "\ntrain: profiled steps %lld to %lld (%.1f ms a step); Chrome trace in %s\n%s",
                 static_cast<long long>(profile_begin + 1), static_cast<long long>(step),
                 wall_us * 1e-3 / static_cast<double>(recorded), args.profile.c_str(),
                 format_operator_costs(costs, recorded, wall_us).c_str());
  };
  while (step < t.steps && !stopped) {
    if (profiler && step == profile_begin) {
      profiler->start();
      profile_clock = std::chrono::steady_clock::now();
    }
    ++step;
    program->set_step(step);
    // Each step's batch and noise depend only on (seed, step, rank): resuming
    // is exact. The ranks share one permutation of the data per epoch and
    // take consecutive slices of the step's global batch.
    torch::Tensor x;
    if (stream) {
      x = scene_batch(*stream, (step - 1) * global_batch + rank * batch, batch).images.to(device);
    } else {
      const int64_t epoch = (step - 1) * global_batch / n;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(t.seed * 7919 + static_cast<uint64_t>(epoch));
      auto perm = torch::randperm(n, gen, torch::kLong);
      const int64_t offset = ((step - 1) * global_batch) % n;
      auto idx = perm.narrow(0, std::min(offset, n - global_batch), global_batch).narrow(0, rank * batch, batch);
      x = data.images.index_select(0, idx).to(device);
    }
    double loss;
    {
      random::SeedScope seed(rank_seed(t.seed, step, rank));
      loss = svi.step(x) / static_cast<double>(batch);  // the ranks' mean loss, per image
    }
    if (scheduled) svi.optimiser().step_schedule(loss);
    if (profiler && profiler->running() && step == profile_end) finish_profile();
    stopped = stop_requested();
    if (!lead) continue;
    smoothed = std::isnan(smoothed) ? loss : 0.98 * smoothed + 0.02 * loss;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    nlohmann::json record{
        {"step", step}, {"loss", loss}, {"elapsed", elapsed}, {"train_seconds", trained_before + elapsed}};
    if (scheduled) record["lr_scale"] = svi.optimiser().lr_scale();
    pending_metrics.push_back(record.dump());
    curve.emplace_back(step, loss);
    if (t.eval_every > 0 && (step % t.eval_every == 0 || step == t.steps)) {
      // The evaluation's draws come from their own stream: its figures depend
      // only on (seed, step), and training does not depend on how often it runs.
      random::SeedScope seed(evaluation_seed(t.seed, step));
      auto eval = program->evaluate(test.images.to(device), test.labels);
      if (!eval.empty()) {  // programs without test figures (the VAE) write no record
        eval["step"] = step;
        eval["split"] = "test";
        pending_metrics.push_back(eval.dump());
      }
    }
    bar->update(step, scheduled ? fmt::format("loss {:.2f} lr x{:.3g}", smoothed, svi.optimiser().lr_scale())
                                : fmt::format("loss {:.2f}", smoothed));
    if (checkpoint_due(step)) flush();
  }
  if (!lead) return;
  if (stopped && out_of_time && step == start && !interrupted()) {
    std::fprintf(stderr,
                 "train: the run in %s has trained %.2f minutes in all, at or over --max-minutes %g; nothing to train "
                 "(pass a larger --max-minutes)\n",
                 dir.string().c_str(), seconds_in_all() / 60, args.max_minutes);
    return;
  }
  if (profiler && profiler->running()) finish_profile();  // the run ended inside the window
  flush();
  bar->finish(fmt::format("loss {:.2f}", smoothed));
  if (stopped && out_of_time && !interrupted()) {
    std::fprintf(stderr,
                 "train: --max-minutes %g: the run has trained %.2f minutes in all; stopped at step %lld, checkpoint "
                 "saved in %s (continue with --resume and a larger --max-minutes)\n",
                 args.max_minutes, seconds_in_all() / 60, static_cast<long long>(step), dir.string().c_str());
    return;
  }
  if (stopped) {
    std::fprintf(stderr, "train: interrupted at step %lld; checkpoint saved in %s (continue with --resume)\n",
                 static_cast<long long>(step), dir.string().c_str());
    return;
  }

  // Pictures of the result.
  {
    torch::NoGradGuard no_grad;
    random::SeedScope seed(evaluation_seed(t.seed, step));
    save_image_grid(dir / "samples.png", program->sample(64).cpu(), 8);
    auto x = runtime::data::spread_rows(test.images, 32).to(device);
    save_reconstructions(dir / "reconstructions.png", x, program->reconstruct(x));
    std::vector<std::pair<int64_t, double>> smooth;
    double ema = NAN;
    for (auto& [s, v] : curve) {
      ema = std::isnan(ema) ? v : 0.95 * ema + 0.05 * v;
      smooth.emplace_back(s, ema);
    }
    save_png(dir / "curve.png", plot_curve(smooth));
  }
  std::printf("trained %s for %lld steps; run in %s (samples.png, reconstructions.png, curve.png, metrics.jsonl)\n",
              args.program.c_str(), static_cast<long long>(step), dir.string().c_str());
}

/// This process's command line, from /proc/self/cmdline.
std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> out;
  std::string arg;
  while (std::getline(in, arg, '\0')) out.push_back(arg);
  return out;
}

/// "exited with status 2" / "was killed by signal 9".
std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

void launch_workers(const TrainArgs& args) {
  // The same command line for every worker, without --nproc: each one reads
  // its rank from the environment.
  auto argv = own_arguments();
  if (argv.empty()) throw UsageError("train: cannot read this process's command line to start the workers");
  std::vector<std::string> worker_args;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--nproc") {
      ++i;
      continue;
    }
    if (argv[i].rfind("--nproc=", 0) == 0) continue;
    worker_args.push_back(argv[i]);
  }
  const int port = infer::free_port();
  install_interrupt_handler();  // Ctrl-C reaches the workers too; they save and stop together
  std::vector<pid_t> workers;
  for (int r = 0; r < args.nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) throw UsageError(fmt::format("train: cannot start worker {}: {}", r, std::strerror(errno)));
    if (pid == 0) {
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(args.nproc).c_str(), 1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      std::vector<char*> cargs;
      for (auto& a : worker_args) cargs.push_back(a.data());
      cargs.push_back(nullptr);
      ::execv("/proc/self/exe", cargs.data());
      std::fprintf(stderr, "ppl: error: cannot start worker %d: %s\n", r, std::strerror(errno));
      std::_Exit(127);
    }
    workers.push_back(pid);
  }
  // Wait for all, polling: a signal to this process alone (SIGTERM) is
  // passed on to the workers, and the first worker that fails stops the others.
  std::string failure;
  bool forwarded = false;
  size_t running = workers.size();
  auto reap = [&](bool block) -> std::pair<int, int> {  // (rank, status), or (-1, 0) when none ended
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, block ? 0 : WNOHANG);
    if (pid <= 0) return {-1, 0};
    const auto it = std::find(workers.begin(), workers.end(), pid);
    if (it == workers.end()) return {-1, 0};
    *it = -1;
    --running;
    return {static_cast<int>(it - workers.begin()), status};
  };
  while (running > 0) {
    if (interrupted() && !forwarded) {
      for (pid_t w : workers)
        if (w > 0) ::kill(w, SIGINT);
      forwarded = true;
    }
    const auto [r, status] = reap(false);
    if (r < 0) {
      ::usleep(50'000);
      continue;
    }
    // A worker that saved and stopped on Ctrl-C exits with 128 + the signal.
    const bool ok = WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) > 128);
    if (ok) continue;
    failure = fmt::format("rank {} {}", r, describe_exit(status));
    for (pid_t other : workers)
      if (other > 0) ::kill(other, SIGTERM);
    // Those still in a collective leave it when their peer's connection
    // closes; any that do not are killed after 10 s.
    for (int waited = 0; waited < 200 && running > 0; ++waited)
      if (reap(false).first < 0) ::usleep(50'000);
    for (pid_t other : workers)
      if (other > 0) ::kill(other, SIGKILL);
    while (running > 0 && reap(true).first >= 0) {
    }
    break;
  }
  if (!failure.empty())
    throw UsageError(fmt::format("train: {}, so the other ranks were stopped; the last checkpoint in {} is kept "
                                 "(continue with --resume, with any --nproc)",
                                 failure, args.out));
}

RegisterCommand register_train{"train", [](CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train a program by stochastic variational inference");
  cmd->add_option("program", a->program, "program name (see `ppl programs`)")->required();
  cmd->add_option("--data", a->train.data, "dataset (see `ppl data list`)")->capture_default_str();
  cmd->add_option("--steps", a->train.steps, "total optimisation steps")->capture_default_str();
  cmd->add_option("--out", a->out, "run directory")->capture_default_str();
  cmd->add_option("--device", a->train.device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--config", a->config, "JSON file of program options");
  cmd->add_flag("--resume", a->resume, "continue the run in --out from its checkpoint");
  cmd->add_option("--init-from", a->init_from,
                  "start a new run from another run's checkpoint (weights, optimiser state, step) and options, "
                  "with --config's changes; its metrics up to that step open the new run's");
  cmd->add_option("--reinit", a->reinit,
                  "with --init-from: parameters whose names start with this (repeatable, e.g. dood.q_o) keep the "
                  "initialisation of the options now, with a fresh optimiser state, instead of the source's values");
  cmd->add_option("--batch-size", a->train.batch_size, "batch size (0: the program's)")->capture_default_str();
  cmd->add_option("--checkpoint-every", a->train.checkpoint_every, "steps between checkpoints")->capture_default_str();
  cmd->add_option("--checkpoint-minutes", a->train.checkpoint_minutes,
                  "also checkpoint when this many minutes have passed since the last checkpoint (0: off)")
      ->capture_default_str();
  cmd->add_option("--eval-every", a->train.eval_every, "steps between evaluations (0: never)")->capture_default_str();
  cmd->add_option("--n-train", a->train.n_train, "use only this many training images (0: all)")->capture_default_str();
  cmd->add_option("--seed", a->train.seed, "random seed")->capture_default_str();
  cmd->add_option("--data-dir", a->train.data_dir, "data root (else $PPL_DATA, then the defaults)");
  cmd->add_option("--lr-decay", a->train.lr_decay, "multiply every learning rate by this each step")->capture_default_str();
  cmd->add_option("--lr-plateau", a->train.lr_plateau,
                  "reduce the learning rates when the loss has not improved for more than this many steps (-1: never)")
      ->capture_default_str();
  cmd->add_option("--lr-factor", a->train.lr_factor, "reduction factor of --lr-plateau")->capture_default_str();
  cmd->add_option("--lr-threshold", a->train.lr_threshold,
                  "improvement (nats per image) --lr-plateau counts as one")->capture_default_str();
  cmd->add_option("--min-lr", a->train.min_lr, "no schedule takes a learning rate below this")->capture_default_str();
  cmd->add_option("--nproc", a->nproc,
                  "data-parallel worker processes on this machine (Gloo over loopback; each --batch-size images a "
                  "step, --threads threads)")
      ->capture_default_str();
  cmd->add_option("--backend", a->backend, "gloo or nccl, for a group from the torchrun environment (WORLD_SIZE, ...)")
      ->capture_default_str();
  cmd->add_option("--rendezvous-timeout", a->rendezvous_timeout,
                  "seconds the ranks of a group wait for each other to join")
      ->capture_default_str();
  cmd->add_option("--max-minutes", a->max_minutes,
                  "stop, with a checkpoint, once the run has trained this many minutes in all, over its resumes "
                  "(metrics.jsonl's train_seconds; 0: no limit)")
      ->capture_default_str();
  cmd->add_option("--profile", a->profile,
                  "record libtorch's operators over --profile-steps steps into this Chrome trace (JSON) and print "
                  "the costliest operators");
  cmd->add_option("--profile-steps", a->profile_steps, "steps --profile records")->capture_default_str();
  cmd->add_option("--profile-after", a->profile_after, "steps before --profile starts recording")
      ->capture_default_str();
  cmd->callback([a, cmd] {
    a->given.clear();
    for (const auto* opt : cmd->get_options())
      if (opt->count() > 0) a->given.insert(opt->get_name());
    train(*a);
  });
}};

}  // namespace
}  // namespace ppl::cli
