#pragma once
/// Subcommands of the `ppl` tool. Each lives in its own `*_command.cpp` and
/// registers itself with a static `RegisterCommand`, so adding a command
/// touches no shared file.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace ppl::cli {

/// A subcommand: its name (for ordering in --help) and the function that adds
/// it (options and callback) to the top-level app.
struct Command {
  std::string name;
  std::function<void(CLI::App&)> add;
};

/// All registered subcommands.
std::vector<Command>& commands();

/// Registers a subcommand at static-initialisation time.
struct RegisterCommand {
  RegisterCommand(std::string name, std::function<void(CLI::App&)> add) {
    commands().push_back({std::move(name), std::move(add)});
  }
};

/// Thrown by a command for a user error (bad argument, missing file): printed
/// as one line, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace ppl::cli
