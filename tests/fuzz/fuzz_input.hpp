#pragma once
/// What every libFuzzer target shares: the input written to a file (for the
/// readers that take a path), and the rule the targets check. A reader of
/// outside bytes returns, or throws the project's error type with a message;
/// any other exception, a crash or a sanitizer report is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <typeinfo>

#include <unistd.h>

namespace ppl::fuzz {

/// The scratch folder of this process, removed at exit.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("ppl-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch(), ec);
    });
    return d;
  }();
  return dir;
}

/// Writes `size` bytes to `name` in the scratch folder and returns its path.
inline std::filesystem::path write_input(const std::uint8_t* data, std::size_t size, const std::string& name) {
  const auto path = scratch() / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

/// A finding that is no crash: says what and aborts, so libFuzzer keeps the input.
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz finding: %s\n", what.c_str());
  std::abort();
}

/// An exception other than the project's errors escaped a reader.
[[noreturn]] inline void unexpected(const std::exception& e) {
  finding(std::string("unexpected exception ") + typeid(e).name() + ": " + e.what());
}

/// Runs `read`, for which exceptions of type `Clean` are the expected way to
/// refuse an input; any other exception is a finding.
template <class Clean, class F>
void expect_clean(F&& read) {
  try {
    read();
  } catch (const Clean&) {
  } catch (const std::exception& e) {
    unexpected(e);
  } catch (...) {
    finding("a non-std exception escaped");
  }
}

}  // namespace ppl::fuzz
