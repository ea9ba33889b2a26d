#pragma once
/// A small, self-describing binary file of named tensors (parameters,
/// checkpoints): "PPLTENS1", a little-endian u64 header length, a JSON header
/// (names, dtypes, shapes, byte offsets, user metadata), then raw bytes.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace ppl {

/// Named tensors plus free-form metadata.
struct TensorArchive {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  nlohmann::json metadata = nlohmann::json::object();

  /// The tensor named `name`; throws ppl::Error when absent.
  const torch::Tensor& at(const std::string& name) const;
};

/// Writes `archive` to `path` atomically: a temporary file in the same
/// folder, flushed, then renamed over `path`, so a crash never leaves a
/// half-written file. Throws ppl::Error naming the path on I/O failure.
void save_archive(const TensorArchive& archive, const std::filesystem::path& path);
/// Reads an archive; throws ppl::Error naming the path and what was wrong
/// (missing, not an archive, truncated, bad header).
TensorArchive load_archive(const std::filesystem::path& path);

}  // namespace ppl
