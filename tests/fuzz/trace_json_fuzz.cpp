// The trace JSON reader (ppl::Trace::from_json) on any JSON document, then
// what a reader of a trace does with it: the shapes table (log-densities
// computed where the file has none) and JSON again.
#include <cstdint>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/errors.hpp>
#include <ppl/core/trace.hpp>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Malformed JSON is nlohmann's to refuse; the documents it parses are ours.
  const auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  ppl::fuzz::expect_clean<ppl::Error>([&] {
    const auto trace = ppl::Trace::from_json(j);
    (void)trace.format_shapes();
    (void)trace.to_json();
  });
  return 0;
}
