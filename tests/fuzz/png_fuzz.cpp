// The PNG reader (read_png_memory, as the Omniglot zips use it; read_png
// shares its checks) as gray and as RGB.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include <ppl/runtime/image.hpp>

#include "fuzz_input.hpp"

namespace rt = ppl::runtime;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  for (const auto color : {rt::PngColor::gray, rt::PngColor::rgb})
    ppl::fuzz::expect_clean<rt::ImageError>([&] {
      const auto image = rt::read_png_memory(bytes, "input.png", color);
      if (image.min().item<float>() < 0.0f || image.max().item<float>() > 1.0f)
        ppl::fuzz::finding("a PNG read to values outside [0, 1]");
    });
  return 0;
}
