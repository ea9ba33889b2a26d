#pragma once
/// A small, self-describing binary file of named tensors (parameters,
/// checkpoints). Version 2 (written now): "PPLTENS2", a little-endian u64
/// header length, the u32 CRC-32 of the header and four zero bytes, a JSON
/// header (names, dtypes, shapes, byte offsets, each tensor's CRC-32, user
/// metadata), then the raw bytes. Version 1 ("PPLTENS1", no checksums and a
/// 16-byte prefix) is still read.
#include <cstdint>
#include <filesystem>
#include <istream>
#include <ostream>
#include <string>
#include <string_view>
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
/// folder, flushed to disk, then renamed over `path`, so a crash never leaves
/// a half-written file. Throws ppl::Error naming the path on I/O failure.
void save_archive(const TensorArchive& archive, const std::filesystem::path& path);

/// Writes `archive` in the format above to `out` (e.g. a std::ostringstream,
/// to send it elsewhere).
void write_archive(const TensorArchive& archive, std::ostream& out);

/// Reads an archive; throws ppl::Error naming the path and what was wrong
/// (missing, not an archive, truncated, a bad header or key, a checksum that
/// does not match: the file was damaged after it was written). Every
/// declared size is checked against the file's length before anything is
/// allocated.
TensorArchive load_archive(const std::filesystem::path& path);

/// The same from `size` bytes of `in`; `source` names the input in errors.
TensorArchive read_archive(std::istream& in, std::uint64_t size, const std::string& source);

/// Only the metadata of the archive at `path` (its header is read and
/// checked, the tensors are not).
nlohmann::json read_archive_metadata(const std::filesystem::path& path);

}  // namespace ppl
