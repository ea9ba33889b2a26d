// A program linked like every ppl program, against ppl::runtime and a library
// that exports its own std::filesystem::remove_all (fs_copy.cpp): libstdc++'s
// definition must be the one called, as it must be when libtorch_cpu.so
// brings such copies along.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

int main() {
  namespace fs = std::filesystem;
  const auto dir = fs::temp_directory_path() / ("ppl-link-order-" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "sub" / "file") << "x";
  const std::uintmax_t removed = fs::remove_all(dir);
  const bool gone = !fs::exists(dir);
  if (removed != 3 || !gone) {
    std::fprintf(stderr,
                 "remove_all(%s) returned %ju and the folder is %s: the copy of std::filesystem "
                 "in libppl_fs_copy.so was called instead of libstdc++'s\n",
                 dir.c_str(), removed, gone ? "gone" : "still there");
    return 1;
  }
  std::printf("remove_all came from libstdc++ (3 entries removed)\n");
  return 0;
}
