// A run's config.json as `ppl` reads it (apps/cli/run_config.cpp): the file
// read and checked for its three parts, the training options read key by
// key with their types and ranges, the run's identity, and the options
// written back, which must read back as the same options.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "../../apps/cli/commands.hpp"
#include "../../apps/cli/run_config.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = ppl::fuzz::write_input(data, size, "run/config.json");
  ppl::fuzz::expect_clean<ppl::cli::UsageError>([&] {
    const auto config = ppl::cli::read_config(path);
    const auto options = ppl::cli::train_options_from_json(config.at("train"), path);
    (void)ppl::cli::run_identity(config).dump();
    const auto again = ppl::cli::train_options_from_json(ppl::cli::train_options_to_json(options), path);
    if (ppl::cli::train_options_to_json(again) != ppl::cli::train_options_to_json(options))
      ppl::fuzz::finding("training options do not read back as written");
  });
  return 0;
}
