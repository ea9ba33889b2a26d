#include <ppl/core/atomic_file.hpp>

#include <fcntl.h>
#include <fstream>
#include <unistd.h>

#include <fmt/format.h>

#include <ppl/core/errors.hpp>

namespace ppl {

bool sync_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

void write_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write) {
  const auto dir = path.parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  auto tmp = path;
  tmp += fmt::format(".tmp{}", ::getpid());
  auto fail = [&](const std::string& what) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw Error(fmt::format("cannot write {}: {}", path.string(), what));
  };
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(fmt::format("cannot create {}", tmp.string()));
    try {
      write(out);
    } catch (...) {
      out.close();
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw;
    }
    out.flush();
    if (!out) fail("writing failed (disk full?)");
  }
  // On disk before the rename, so a power cut cannot leave `path` renamed
  // over a file whose blocks were never written.
  if (!sync_file(tmp)) fail(fmt::format("cannot flush {} to disk (disk full?)", tmp.string()));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) fail(fmt::format("cannot rename {} over it: {}", tmp.string(), ec.message()));
  sync_file(dir.empty() ? std::filesystem::path(".") : dir);  // the rename itself; best effort
}

void write_atomic(const std::filesystem::path& path, std::string_view bytes) {
  write_atomic(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

}  // namespace ppl
