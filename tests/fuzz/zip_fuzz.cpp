// The zip reader (ZipArchive) and the readers of a tree in a zip: Omniglot
// images, one-shot runs and strokes.
#include <cstdint>

#include <torch/torch.h>

#include <ppl/runtime/data/formats.hpp>

#include "fuzz_input.hpp"

namespace rd = ppl::runtime::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = ppl::fuzz::write_input(data, size, "input.zip");
  ppl::fuzz::expect_clean<rd::DataError>([&] {
    const rd::ZipArchive zip(path);
    for (const auto& entry : zip.entries()) {
      try {
        if (zip.read(entry).size() != entry.size) ppl::fuzz::finding("a zip entry read to another size than declared");
      } catch (const rd::DataError&) {
      }
    }
  });
  ppl::fuzz::expect_clean<rd::DataError>([&] { rd::count_omniglot(path); });
  ppl::fuzz::expect_clean<rd::DataError>([&] { rd::read_omniglot(path); });
  ppl::fuzz::expect_clean<rd::DataError>([&] { rd::read_one_shot_runs(path); });
  ppl::fuzz::expect_clean<rd::DataError>([&] { rd::read_omniglot_strokes(path); });
  return 0;
}
