#pragma once
/// Subcommands of the `ppl` tool. Each lives in its own `*_command.cpp` and
/// registers itself with a static `RegisterCommand`, so adding a command
/// touches no shared file.
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace ppl::runtime::data {
struct DataRoots;
}

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

/// The roots searched for data: `data_dir` first when given (a command's
/// `--data-dir`, or the one a run was trained with), then PPL_DATA and
/// shared/data. Throws UsageError when `data_dir` is given but is not a
/// folder, rather than quietly reading another copy of the data.
runtime::data::DataRoots data_roots(const std::string& data_dir);

}  // namespace ppl::cli
