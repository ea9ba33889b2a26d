// The IDX reader (read_idx, read_idx_shape, count_idx_dataset) on raw bytes,
// or, built with PPL_FUZZ_GZIP, on the input gzip-compressed first (so the
// header and size checks behind a valid stream are reached).
#include <cstdint>

#include <torch/torch.h>
#include <zlib.h>

#include <ppl/runtime/data/formats.hpp>
#include <ppl/runtime/data/transforms.hpp>

#include "fuzz_input.hpp"

namespace rd = ppl::runtime::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
#ifdef PPL_FUZZ_GZIP
  const auto path = ppl::fuzz::scratch() / "input-idx3-ubyte.gz";
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, data, static_cast<unsigned>(size));
  gzclose(f);
#else
  const auto path = ppl::fuzz::write_input(data, size, "input-idx3-ubyte");
#endif
  ppl::fuzz::expect_clean<rd::DataError>([&] {
    const auto shape = rd::read_idx_shape(path);
    const auto t = rd::read_idx(path);
    if (t.sizes().vec() != shape) ppl::fuzz::finding("read_idx's shape differs from read_idx_shape's");
  });
  ppl::fuzz::expect_clean<rd::DataError>([&] {
    // The same file as images and as labels: the header checks of a data set.
    rd::count_idx_dataset(path, path);
  });
  // What a data set does next with images that were read: resizing to 50 x 50.
  ppl::fuzz::expect_clean<std::invalid_argument>([&] {
    try {
      const auto t = rd::read_idx(path);
      if (t.dim() >= 2 && t.numel() <= (1 << 16)) rd::resize_images(t.to(torch::kFloat32), 50, 50);
    } catch (const rd::DataError&) {
    }
  });
  return 0;
}
