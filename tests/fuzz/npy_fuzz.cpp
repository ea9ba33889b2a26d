// The QuickDraw .npy reader (count_npy_bitmaps, read_npy_bitmaps).
#include <cstdint>

#include <torch/torch.h>

#include <ppl/runtime/data/formats.hpp>

#include "fuzz_input.hpp"

namespace rd = ppl::runtime::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = ppl::fuzz::write_input(data, size, "input.npy");
  ppl::fuzz::expect_clean<rd::DataError>([&] {
    const auto n = rd::count_npy_bitmaps(path);
    const auto all = rd::read_npy_bitmaps(path);
    const auto two = rd::read_npy_bitmaps(path, 2);
    if (all.size(0) != n || two.size(0) != std::min<std::int64_t>(n, 2))
      ppl::fuzz::finding("read_npy_bitmaps read another count than count_npy_bitmaps");
  });
  return 0;
}
