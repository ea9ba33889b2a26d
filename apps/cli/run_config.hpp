#pragma once
/// A run's config.json: its training options, their checks, and what a
/// checkpoint records of it (free of the programs, so that the fuzzing
/// target of config.json can build it alone).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ppl::cli {

/// Training options of a run (stored in config.json).
struct TrainOptions {
  std::string data = "multi-mnist";
  int64_t steps = 1000;
  int64_t batch_size = 0;  ///< 0: the program's own
  int64_t checkpoint_every = 500;
  double checkpoint_minutes = 10;  ///< also a checkpoint when this many minutes passed since the last; 0: off
  int64_t eval_every = 500;
  int64_t n_train = 0;     ///< 0: all training images
  uint64_t seed = 0;
  std::string device = "cpu";
  std::string data_dir;
  // Learning-rate schedule (infer::Adam's decay, plateau and min_lr),
  // advanced once a step with that step's loss per image.
  double lr_decay = 1.0;      ///< rates multiplied by this every step
  int64_t lr_plateau = -1;    ///< plateau patience in steps; -1: no plateau rule
  double lr_factor = 0.1;     ///< plateau reduction factor
  double lr_threshold = 0.0;  ///< improvement in nats per image the plateau rule asks for
  double min_lr = 0.0;        ///< floor of every scheduled rate
  // Data-parallel training (recorded; a resume may change them).
  int64_t world_size = 1;      ///< ranks that trained the last stretch (each `batch_size` images a step)
  std::string backend = "gloo";  ///< their c10d backend
};

/// The JSON of `t` as config.json stores it under "train".
nlohmann::json train_options_to_json(const TrainOptions& t);

/// The training options stored under "train" in `config_path`, each key
/// checked for its type and range: UsageError naming the file and the key
/// ("train.steps") for a missing required key, a value of the wrong type or
/// one out of range. Keys a run of an older version lacks take their defaults.
TrainOptions train_options_from_json(const nlohmann::json& train, const std::filesystem::path& config_path);

/// Range checks of training options (steps and checkpoint interval at least
/// 1, checkpoint minutes finite and at least 0, counts at least 0, the schedule's values in range); `name(key)` says
/// in messages where the value came from, given its config key ("steps" ->
/// "--steps" for a command line). Throws UsageError.
void check_train_options(const TrainOptions& t, const std::function<std::string(std::string_view key)>& name);

/// What a checkpoint's numbers depend on, out of a run's config.json: the
/// program, its options, and the training settings that choose the data,
/// batches, draws and schedule (not steps, intervals, data folder or device).
/// `train` records it in every checkpoint.
nlohmann::json run_identity(const nlohmann::json& config);

/// UsageError when config.json (`config`, read from `config_path`) no longer
/// matches the identity recorded in `checkpoint` (edited after training):
/// names the first key that differs, with both values. Checkpoints written
/// before identities were recorded are not checked.
void check_run_identity(const nlohmann::json& config, const std::filesystem::path& config_path,
                        const std::filesystem::path& checkpoint);

/// The JSON file `path`; UsageError naming it when it is missing or is not
/// valid JSON (with the parser's position).
nlohmann::json read_json_file(const std::filesystem::path& path);

/// A run's config.json: an object with "program" (a string), "options" and
/// "train" (objects); UsageError naming the file and the key otherwise.
nlohmann::json read_config(const std::filesystem::path& path);

}  // namespace ppl::cli
