#pragma once
/// metrics.jsonl, a run's log: one JSON object per logged step (its "step",
/// and for training steps "loss", "elapsed" and "train_seconds"), appended
/// before each checkpoint.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

namespace ppl::cli {

/// The records of `path` (metrics.jsonl) that belong to steps up to `step`,
/// the checkpoint's: records of later steps were written before a kill that
/// came before their checkpoint, and will be written again. A line that is
/// not a JSON object with a step (the torn end of an append) is dropped with
/// a warning naming the file and line. The file is rewritten (atomically)
/// when anything was dropped, unless `rewrite` is false (another run's file,
/// or a reader that must not change the run). No file: no records.
std::vector<nlohmann::json> kept_metrics(const std::filesystem::path& path, int64_t step, bool rewrite = true);

/// The seconds a run has trained up to its last record, over all its
/// segments (a resume starts a new one), from metrics.jsonl's records:
/// their train_seconds, or, in records written before it existed, the sum
/// of each segment's last "elapsed" (which restarts at every resume).
/// nullopt when no record holds an "elapsed".
std::optional<double> trained_seconds(const std::vector<nlohmann::json>& records);

/// The training time a released model (`ppl export`) records in its
/// checkpoint's `metadata` ("released"."train_seconds"): its run's
/// train_seconds when exported; nullopt when it records none.
std::optional<double> released_train_seconds(const nlohmann::json& metadata);

}  // namespace ppl::cli
