#pragma once
/// `ppl eval`: one file per subcommand (eval_scenes_command.cpp,
/// eval_boxes_command.cpp, eval_traverse_command.cpp), each adding itself to
/// the `eval` command that eval_command.cpp registers.
#include <CLI/CLI.hpp>

namespace ppl::cli {

/// `ppl eval scenes`: S-Acc and D-Steps (GNM's Table 1), and the judge on real scenes.
void add_eval_scenes(CLI::App& eval);
/// `ppl eval boxes`: the average precision of inferred boxes (Table 4).
void add_eval_boxes(CLI::App& eval);
/// `ppl eval traverse`: latent traversals of a GNM run (Fig. 5).
void add_eval_traverse(CLI::App& eval);

}  // namespace ppl::cli
