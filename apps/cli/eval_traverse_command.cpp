// `ppl eval traverse RUN`: Fig. 5-style latent traversals of a GNM run.
#include <algorithm>
#include <array>
#include <cstdio>
#include <map>

#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/programs/gnm/gnm.hpp>

#include "commands.hpp"
#include "eval_command.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {
namespace gnm = ppl::programs::gnm;

struct EvalTraverseArgs {
  std::string run;
  int64_t index = 0;
  int64_t dims = 4;
  double span = 3.0;
  int64_t columns = 7;
  std::string device;
  std::string data_dir;
  uint64_t seed = 0;
};

/// Fig. 5-style traversals of a GNM run on one test scene: rows that move one
/// dimension of the inferred z_g (generation from the changed global latent,
/// D.1), of the inferred z_what and of z_where of the most present cell
/// (rendering with the other latents as inferred), across offsets in
/// [-span, span]. Writes RUN/traverse.png and RUN/traverse.json.
void evaluate_traverse(const EvalTraverseArgs& a) {
  if (a.dims < 1 || a.columns < 2 || !(a.span > 0))
    throw UsageError(fmt::format("eval traverse: --dims ({}) must be at least 1, --columns ({}) at least 2 and "
                                 "--span ({}) positive", a.dims, a.columns, a.span));
  auto run = open_run(a.run, a.device);
  auto* program = dynamic_cast<gnm::Gnm*>(run.program.get());
  if (!program)
    throw UsageError(fmt::format("eval traverse: run {} holds a \"{}\" program, but traversals need GNM's latents "
                                 "(program \"gnm\")", a.run, run.program->name()));
  const auto data = load_image_at("eval traverse", run.train.data, "test",
                                  a.data_dir.empty() ? run.train.data_dir : a.data_dir, a.index, program->image_size());
  torch::NoGradGuard no_grad;
  const auto x = data.images.to(run.device);
  random::SeedScope seed(a.seed);
  const auto guide = ppl::trace([&] { return program->guide(x); });
  const auto offsets = torch::linspace(-a.span, a.span, a.columns, x.options());
  const int64_t cols = a.columns;
  std::vector<torch::Tensor> rows;
  nlohmann::json labels = nlohmann::json::array();
  // z_g: every global site, its first `dims` dimensions.
  std::map<std::string, torch::Tensor> z_g;
  for (const auto& site : guide)
    if (site.name == "z_g" || site.name.rfind("z_g/", 0) == 0) z_g[site.name] = site.value;
  auto batched = [&](const torch::Tensor& v) {
    if (!v.defined()) return v;
    auto sizes = v.sizes().vec();
    sizes[0] = cols;
    return v.expand(sizes).contiguous();
  };
  for (const auto& [name, value] : z_g) {
    for (int64_t d = 0; d < std::min<int64_t>(a.dims, value[0].numel()); ++d) {
      std::map<std::string, torch::Tensor> batch;
      for (const auto& [other, v] : z_g) batch[other] = batched(v);
      auto moved = batch[name].reshape({cols, -1}).clone();
      moved.select(1, d).add_(offsets);
      batch[name] = moved.view(batch[name].sizes());
      rows.push_back(program->sample_given(batch));
      labels.push_back(fmt::format("{}[{}]", name, d));
    }
  }
  // z_s of the cell most likely present.
  gnm::StructureLatents z;
  z.z_pres = guide.site("z_pres").value;
  z.z_where = guide.site("z_where").value;
  z.z_depth = guide.site("z_depth").value;
  z.z_what = guide.site("z_what").value;
  if (guide.contains("z_b")) z.z_b = guide.site("z_b").value;  // "overlap" composition only
  const auto cell = z.z_pres[0].argmax().item<int64_t>();
  auto traverse = [&](bool what, int64_t dim, const std::string& label) {
    gnm::StructureLatents zs{batched(z.z_pres), batched(z.z_where), batched(z.z_depth), batched(z.z_what),
                             batched(z.z_b)};
    (what ? zs.z_what : zs.z_where).select(1, cell).select(1, dim).add_(offsets);
    rows.push_back(program->render(zs).clamp(0, 1));
    labels.push_back(label);
  };
  for (int64_t d = 0; d < std::min<int64_t>(a.dims, z.z_what.size(2)); ++d)
    traverse(true, d, fmt::format("z_what[cell {}][{}]", cell, d));
  const std::array<const char*, 4> where_names = {"scale x", "scale y", "shift x", "shift y"};
  for (int64_t d = 0; d < 4; ++d) traverse(false, d, fmt::format("z_where[cell {}] {}", cell, where_names[d]));
  // One grid: each row starts with the input scene.
  std::vector<torch::Tensor> tiles;
  for (const auto& r : rows) {
    tiles.push_back(x.cpu());
    tiles.push_back(r.cpu());
  }
  save_image_grid(run.dir / "traverse.png", torch::cat(tiles), cols + 1);
  const auto offs = offsets.to(torch::kDouble).cpu();
  const nlohmann::json out = {{"run", a.run},
                              {"index", a.index},
                              {"offsets", std::vector<double>(offs.data_ptr<double>(), offs.data_ptr<double>() + cols)},
                              {"rows", labels},
                              {"present_cell", cell}};
  write_atomic(run.dir / "traverse.json", out.dump(2));
  std::printf("%s\nwrote %s (%zu rows: the input, then %lld offsets)\n", out.dump(2).c_str(),
              (run.dir / "traverse.png").string().c_str(), static_cast<size_t>(labels.size()),
              static_cast<long long>(cols));
}

}  // namespace

void add_eval_traverse(CLI::App& eval) {
  auto t = std::make_shared<EvalTraverseArgs>();
  auto* tr =
      eval.add_subcommand("traverse", "z_g, z_what and z_where traversals of a GNM run on one test scene (Fig. 5)");
  tr->add_option("run", t->run, "run directory of a GNM")->required();
  tr->add_option("--index", t->index, "test scene")->capture_default_str();
  tr->add_option("--dims", t->dims, "dimensions traversed per latent")->capture_default_str();
  tr->add_option("--span", t->span, "offsets run over [-span, span]")->capture_default_str();
  tr->add_option("--columns", t->columns, "offsets per row")->capture_default_str();
  tr->add_option("--device", t->device, "cpu or cuda (default: the run's)");
  tr->add_option("--data-dir", t->data_dir, "data root");
  tr->add_option("--seed", t->seed, "random seed of the guide's draw")->capture_default_str();
  tr->callback([t] { evaluate_traverse(*t); });
}

}  // namespace ppl::cli
