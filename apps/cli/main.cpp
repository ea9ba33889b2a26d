// The `ppl` command-line tool: one binary, subcommands registered by the
// *_command.cpp files beside this one.
#include <algorithm>
#include <exception>
#include <iostream>

#include <fmt/format.h>

#include <ppl/config.hpp>

#include "commands.hpp"

namespace ppl::cli {
std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace ppl::cli

int main(int argc, char** argv) {
  CLI::App app{"ppl: probabilistic programming on libtorch"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ppl ") + PPL_VERSION);
  auto& all = ppl::cli::commands();
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& command : all) command.add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "ppl: error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
