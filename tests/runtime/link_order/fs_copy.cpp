// Stands in for a shared library that carries and exports its own copy of
// part of libstdc++, as PyTorch's pip wheels do with std::filesystem. Its
// remove_all removes nothing and returns a count no real call returns here,
// so a program that ends up calling it is easy to tell.
#include <cstdint>
#include <filesystem>

namespace std::filesystem {
std::uintmax_t remove_all(const path&) { return 424242; }
}  // namespace std::filesystem
