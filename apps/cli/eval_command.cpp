// `ppl eval`: evaluations of trained runs, one subcommand per file
// (eval_command.hpp).
#include "commands.hpp"
#include "eval_command.hpp"

namespace ppl::cli {
namespace {

RegisterCommand register_eval{"eval", [](CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluations of trained runs");
  cmd->require_subcommand(1);
  add_eval_scenes(*cmd);
  add_eval_boxes(*cmd);
  add_eval_traverse(*cmd);
}};

}  // namespace
}  // namespace ppl::cli
