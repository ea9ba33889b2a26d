// `ppl data`: list the datasets found, write a PNG grid of samples, generate
// a scene dataset (multi-MNIST, MNIST-4, MNIST-10, MNIST-4-10).
#include <cstdio>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include <ppl/runtime.hpp>

#include "commands.hpp"

namespace {
namespace fs = std::filesystem;
namespace rd = ppl::runtime::data;

struct DataOptions {
  std::string data_dir;
  // grid
  std::string name;
  std::string out;
  std::string split = "train";
  std::int64_t count = 64;
  std::int64_t size = 50;
  std::uint64_t seed = 0;
  // generate
  std::string kind;
  std::string digits = "mnist";
  std::int64_t scene_size = 0;
};

rd::DataRoots roots(const DataOptions& o) { return ppl::cli::data_roots(o.data_dir); }

void list(const DataOptions& o) {
  const auto r = roots(o);
  std::printf("data roots:");
  for (const auto& p : r.roots) std::printf(" %s", p.string().c_str());
  std::printf("%s\ncache: %s\n\n", r.roots.empty() ? " (none)" : "", r.cache.string().c_str());
  std::printf("%-18s %-8s %8s %8s  %s\n", "dataset", "present", "train", "test", "source");
  for (const auto& info : rd::list_datasets(r)) {
    std::printf("%-18s %-8s %8lld %8lld  %s%s%s\n", info.name.c_str(),
                info.broken ? "broken" : info.present ? "yes" : "no",
                static_cast<long long>(info.train), static_cast<long long>(info.test), info.note.c_str(),
                info.location.empty() ? "" : "\n                                             at ",
                info.location.c_str());
  }
}

void grid(const DataOptions& o) {
  if (o.count <= 0) throw ppl::cli::UsageError("data grid: --n must be positive");
  const auto r = roots(o);
  torch::Tensor images;
  std::optional<rd::SceneKind> scene_kind;
  try {
    scene_kind = rd::parse_scene_kind(o.name);
  } catch (const std::invalid_argument&) {
  }
  if (scene_kind) {
    // A scene kind: a grid of freshly generated scenes.
    const auto digits = rd::load_dataset(o.digits, r, rd::LoadOptions{}.with_split(rd::Split::train).with_size(0));
    rd::SceneGenerator gen(digits, rd::SceneOptions{}.with_kind(*scene_kind).with_seed(o.seed));
    std::vector<torch::Tensor> list;
    for (const auto& s : gen.scenes(0, o.count)) list.push_back(s.image);
    images = torch::stack(list);
  } else if (o.name == "omniglot-one-shot") {
    const auto runs = rd::read_one_shot_runs(rd::find_one_shot_runs(r));
    images = torch::cat({runs.front().support, runs.front().queries});
    if (o.size > 0) images = rd::resize_images(images, o.size, o.size).clamp(0.0, 1.0);
  } else {
    rd::Split split;
    try {
      split = rd::parse_split(o.split);
    } catch (const std::invalid_argument& e) {
      throw ppl::cli::UsageError(fmt::format("data grid: {}", e.what()));
    }
    rd::Loader loader(rd::load_dataset(o.name, r, rd::LoadOptions{}.with_split(split).with_size(0)),
                      rd::LoaderOptions{}.with_batch_size(o.count).with_seed(o.seed));
    auto batch = loader.next();
    if (!batch) throw ppl::cli::UsageError(fmt::format("data grid: {} has no images", loader.dataset().name));
    images = batch->images;
    if (o.size > 0) images = rd::resize_images(images, o.size, o.size).clamp(0.0, 1.0);
  }
  ppl::runtime::write_png_grid(o.out, images);
  std::printf("wrote %s: %lld images of %s\n", o.out.c_str(), static_cast<long long>(images.size(0)),
              o.name.c_str());
}

void generate(const DataOptions& o) {
  if (o.count < 0) throw ppl::cli::UsageError("data generate: --n must be >= 0");
  rd::SceneKind kind;
  try {
    kind = rd::parse_scene_kind(o.kind);
  } catch (const std::invalid_argument& e) {
    throw ppl::cli::UsageError(fmt::format("data generate: {}", e.what()));
  }
  const auto r = roots(o);
  // Digits from the train split at their original size (28 x 28).
  const auto digits = rd::load_dataset(o.digits, r, rd::LoadOptions{}.with_split(rd::Split::train).with_size(0));
  const auto size = o.scene_size > 0 ? o.scene_size : rd::default_scene_size(kind);
  rd::SceneGenerator gen(digits, rd::SceneOptions{}.with_kind(kind).with_size(size).with_seed(o.seed));
  rd::write_scenes(o.out, gen.scenes(0, o.count), gen.options());
  std::printf("wrote %lld %s scenes (%lld x %lld, seed %llu, digits from %s) to %s\n",
              static_cast<long long>(o.count), rd::to_string(kind).c_str(), static_cast<long long>(size),
              static_cast<long long>(size), static_cast<unsigned long long>(o.seed), digits.name.c_str(),
              o.out.c_str());
}

ppl::cli::RegisterCommand register_data{"data", [](CLI::App& app) {
  auto opts = std::make_shared<DataOptions>();
  auto* cmd = app.add_subcommand("data", "Datasets: list what is present, write sample grids, generate scene sets");
  cmd->require_subcommand(1);
  cmd->add_option("--data-dir", opts->data_dir, "folder searched first for datasets (then PPL_DATA, shared/data)");

  auto* ls = cmd->add_subcommand("list", "List the datasets found, their counts and where they come from");
  ls->add_option("--data-dir", opts->data_dir, "folder searched first for datasets");
  ls->callback([opts] { list(*opts); });

  auto* gr = cmd->add_subcommand("grid", "Write a PNG grid of shuffled samples from a dataset");
  gr->add_option("name", opts->name, "dataset name (see `ppl data list`) or scene kind (mnist-4, ...)")->required();
  gr->add_option("--out", opts->out, "output PNG file")->required();
  gr->add_option("--n", opts->count, "number of images")->capture_default_str();
  gr->add_option("--split", opts->split, "train, test or all")->capture_default_str();
  gr->add_option("--size", opts->size, "resize each image to size x size (0: original)")->capture_default_str();
  gr->add_option("--seed", opts->seed, "shuffle (or scene) seed")->capture_default_str();
  gr->add_option("--digits", opts->digits, "dataset the digits of scenes are drawn from")->capture_default_str();
  gr->add_option("--data-dir", opts->data_dir, "folder searched first for datasets");
  gr->callback([opts] { grid(*opts); });

  auto* gen = cmd->add_subcommand("generate", "Generate a seeded scene dataset: PNG images plus scenes.json");
  gen->add_option("kind", opts->kind, "multi-mnist, multi-mnist-overlap, multi-mnist-3, mnist-4, mnist-10 or mnist-4-10")->required();
  gen->add_option("--n", opts->count, "number of scenes")->capture_default_str();
  gen->add_option("--out", opts->out, "output folder")->required();
  gen->add_option("--seed", opts->seed, "random seed")->capture_default_str();
  gen->add_option("--size", opts->scene_size, "canvas side (default 50 for multi-MNIST, 128 for the GNM sets)");
  gen->add_option("--digits", opts->digits, "dataset the digits are drawn from")->capture_default_str();
  gen->add_option("--data-dir", opts->data_dir, "folder searched first for datasets");
  gen->callback([opts] { generate(*opts); });
}};

}  // namespace
