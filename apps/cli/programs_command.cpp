// `ppl programs`: the registered programs with their options and defaults.
#include <cstdio>

#include <ppl/programs/program.hpp>

#include "commands.hpp"

namespace {

ppl::cli::RegisterCommand register_programs{"programs", [](CLI::App& app) {
  auto* cmd = app.add_subcommand("programs", "List the registered programs with their options and defaults");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "print as JSON");
  cmd->callback([json] {
    nlohmann::json all = nlohmann::json::object();
    for (const auto& p : ppl::programs::registry()) {
      if (*json) {
        all[p.name] = {{"description", p.description}, {"options", p.default_options()}};
        continue;
      }
      std::printf("%s\n  %s\n  options (defaults; pass a JSON file with --config to change them):\n", p.name.c_str(),
                  p.description.c_str());
      const auto options = p.default_options();
      for (const auto& [key, value] : options.items())
        std::printf("    %-24s %s\n", key.c_str(), value.dump().c_str());
    }
    if (*json) std::printf("%s\n", all.dump(2).c_str());
  });
}};

}  // namespace
