// The tensor archive reader (ppl::load_archive: parameters, checkpoints).
#include <cstdint>

#include <torch/torch.h>

#include <ppl/core/archive.hpp>
#include <ppl/core/errors.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = ppl::fuzz::write_input(data, size, "input.bin");
  ppl::fuzz::expect_clean<ppl::Error>([&] {
    const auto archive = ppl::load_archive(path);
    for (const auto& [name, t] : archive.tensors) (void)archive.at(name);
  });
  return 0;
}
