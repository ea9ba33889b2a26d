#include "run_config.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <type_traits>

#include <fmt/format.h>

#include <ppl/core/archive.hpp>
#include <ppl/core/errors.hpp>

#include "commands.hpp"

namespace ppl::cli {

nlohmann::json train_options_to_json(const TrainOptions& t) {
  return {{"data", t.data},         {"steps", t.steps},           {"batch_size", t.batch_size},
          {"checkpoint_every", t.checkpoint_every}, {"checkpoint_minutes", t.checkpoint_minutes},
          {"eval_every", t.eval_every}, {"n_train", t.n_train},
          {"seed", t.seed},         {"device", t.device},         {"data_dir", t.data_dir},
          {"lr_decay", t.lr_decay}, {"lr_plateau", t.lr_plateau},   {"lr_factor", t.lr_factor},
          {"lr_threshold", t.lr_threshold}, {"min_lr", t.min_lr}, {"n_train_subset", "spread"}, {"multi_mnist_recipe", "air"},
          {"world_size", t.world_size}, {"backend", t.backend}};
}

void check_train_options(const TrainOptions& t, const std::function<std::string(std::string_view key)>& name) {
  auto fail = [&](std::string_view key, const auto& value, std::string_view requirement) {
    throw UsageError(fmt::format("train: {} is {}, but must be {}", name(key), value, requirement));
  };
  if (t.steps < 1) fail("steps", t.steps, "at least 1");
  if (t.checkpoint_every < 1) fail("checkpoint_every", t.checkpoint_every, "at least 1");
  if (!(t.checkpoint_minutes >= 0 && std::isfinite(t.checkpoint_minutes)))
    fail("checkpoint_minutes", t.checkpoint_minutes, "a finite number of minutes of at least 0 (0: off)");
  if (t.batch_size < 0) fail("batch_size", t.batch_size, "at least 0 (0: the program's batch size)");
  if (t.n_train < 0) fail("n_train", t.n_train, "at least 0 (0: every image)");
  if (t.eval_every < 0) fail("eval_every", t.eval_every, "at least 0 (0: no evaluations)");
  if (!(t.lr_decay > 0 && t.lr_decay <= 1)) fail("lr_decay", t.lr_decay, "in (0, 1]");
  if (t.lr_plateau < -1) fail("lr_plateau", t.lr_plateau, "a patience >= 0 (or -1: off)");
  if (!(t.lr_factor > 0 && t.lr_factor < 1)) fail("lr_factor", t.lr_factor, "in (0, 1)");
  if (!(t.lr_threshold >= 0 && std::isfinite(t.lr_threshold))) fail("lr_threshold", t.lr_threshold, "finite and nonnegative");
  if (!(t.min_lr >= 0 && std::isfinite(t.min_lr))) fail("min_lr", t.min_lr, "finite and nonnegative");
  if (t.world_size < 1) fail("world_size", t.world_size, "at least 1");
  if (t.backend != "gloo" && t.backend != "nccl") fail("backend", t.backend, "gloo or nccl");
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
  field("checkpoint_minutes", t.checkpoint_minutes, false);
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
  field("world_size", t.world_size, false);
  field("backend", t.backend, false);
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

}  // namespace ppl::cli
