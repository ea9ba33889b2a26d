#pragma once
/// Writing a file so that a crash or a full disk never leaves it half-written.
#include <filesystem>
#include <functional>
#include <ostream>
#include <string_view>

namespace ppl {

/// Writes `path` atomically: `write` fills a temporary file in the same
/// folder (created if missing), which is flushed to disk and then renamed over
/// `path`. On failure the temporary file is removed, `path` is left as it
/// was, and ppl::Error names the file and what went wrong.
void write_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write);

/// Flushes the file or folder `path` to disk (fsync); false when it cannot be
/// opened or flushed.
bool sync_file(const std::filesystem::path& path);

/// `write_atomic` of the given bytes.
void write_atomic(const std::filesystem::path& path, std::string_view bytes);

}  // namespace ppl
