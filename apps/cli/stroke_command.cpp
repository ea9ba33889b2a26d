// `ppl strokes RUN`: the strokes DooD's guide infers on Omniglot drawings
// against the human pen strokes: stroke-count agreement and the symmetric
// Chamfer distance, as JSON, and an overlay picture.
#include <array>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <numeric>
#include <random>

#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/programs/dood/stroke_fidelity.hpp>
#include <ppl/runtime/data/registry.hpp>
#include <ppl/runtime/image.hpp>

#include "commands.hpp"
#include "progress.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {
namespace fs = std::filesystem;
namespace rd = ppl::runtime::data;
namespace dood = ppl::programs::dood;

/// Side of the Omniglot images the human strokes are drawn in.
constexpr int64_t kOmniglotSize = 105;
/// Largest gap between compared human points, in pixels of the program's frame.
constexpr double kSpacing = 0.25;

struct StrokeArgs {
  std::string run;
  std::string images;
  std::string strokes;
  int64_t n = 200;
  int64_t samples = 100;
  int64_t batch = 50;
  int64_t overlay = 8;
  std::string device;
  std::string data_dir;
  uint64_t seed = 0;
};

/// `file` given, or found under the data roots' omniglot folders.
fs::path locate(const std::string& given, const std::string& file, const std::string& flag, const std::string& data_dir) {
  if (!given.empty()) {
    if (!fs::exists(given)) throw UsageError(fmt::format("strokes: {} {} does not exist", flag, given));
    return given;
  }
  const auto roots = data_roots(data_dir);
  std::string looked;
  for (const auto& root : roots.roots)
    for (const auto& dir : {root / "omniglot", root / "Omniglot", root}) {
      if (fs::exists(dir / file)) return dir / file;
      looked += (looked.empty() ? "" : ", ") + dir.string();
    }
  throw UsageError(fmt::format("strokes: {} not found (looked in {}); pass {} or set PPL_DATA", file,
                               looked.empty() ? std::string("no data root") : looked, flag));
}

/// The inverted images of `keys` ("alphabet/character/id") from an Omniglot image zip or folder.
torch::Tensor read_images(const fs::path& source, const std::vector<std::string>& keys) {
  std::map<std::string, std::function<std::vector<std::uint8_t>()>> by_key;
  auto key_of = [](const fs::path& p) {
    return (p.parent_path().parent_path().filename() / p.parent_path().filename() / p.stem()).generic_string();
  };
  if (fs::is_directory(source)) {
    for (const auto& e : fs::recursive_directory_iterator(source))
      if (e.is_regular_file() && e.path().extension() == ".png") {
        const auto p = e.path();
        by_key[key_of(p)] = [p] {
          std::ifstream in(p, std::ios::binary);
          return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
        };
      }
  } else {
    auto zip = std::make_shared<rd::ZipArchive>(source);
    for (const auto& entry : zip->entries())
      if (entry.name.size() > 4 && entry.name.substr(entry.name.size() - 4) == ".png")
        by_key[key_of(entry.name)] = [zip, entry] { return zip->read(entry); };
  }
  std::vector<torch::Tensor> images;
  for (const auto& key : keys) {
    const auto it = by_key.find(key);
    if (it == by_key.end())
      throw UsageError(fmt::format("strokes: {} has no image {}.png for the drawing of that name", source.string(), key));
    images.push_back(1.0 - runtime::read_png_memory(it->second(), source.string() + ":" + key + ".png"));
  }
  return torch::stack(images);
}

/// Human points [M, 2] in pixel indices of the 105 x 105 frame to the
/// H x H frame of the program, pixel centres matched (area resize).
torch::Tensor to_frame(const torch::Tensor& points, int64_t size) {
  return (points + 0.5) * (static_cast<double>(size) / kOmniglotSize) - 0.5;
}

/// Draws points [M, 2] (x, y in pixels of a size x size frame) into an RGB
/// canvas [3, size * zoom, size * zoom] in `colour`.
void plot(torch::Tensor& canvas, const torch::Tensor& points, int64_t zoom, const std::array<float, 3>& colour) {
  const int64_t side = canvas.size(1);
  auto p = ((points + 0.5) * static_cast<double>(zoom)).floor().to(torch::kLong);
  auto acc = canvas.accessor<float, 3>();
  auto pa = p.accessor<int64_t, 2>();
  for (int64_t i = 0; i < p.size(0); ++i) {
    const auto x = pa[i][0], y = pa[i][1];
    if (x < 0 || y < 0 || x >= side || y >= side) continue;
    for (int ch = 0; ch < 3; ++ch) acc[ch][y][x] = colour[ch];
  }
}

void strokes(const StrokeArgs& a) {
  auto run = open_run(a.run, a.device);
  auto* program = dynamic_cast<dood::Dood*>(run.program.get());
  if (!program)
    throw UsageError(fmt::format("strokes: {} is a run of {}, but stroke inference needs a dood run", a.run,
                                 run.program->name()));
  if (a.n < 1 || a.samples < 2 || a.batch < 1 || a.overlay < 0)
    throw UsageError(fmt::format("strokes: --n ({}), --batch ({}) must be at least 1, --samples ({}) at least 2, "
                                 "--overlay ({}) at least 0", a.n, a.batch, a.samples, a.overlay));
  const auto images_path = locate(a.images, "images_background_small1.zip", "--images", a.data_dir);
  const auto strokes_path = locate(a.strokes, "strokes_background_small1.zip", "--strokes", a.data_dir);
  std::vector<rd::OmniglotDrawing> drawings;
  try {
    drawings = rd::read_omniglot_strokes(strokes_path);
  } catch (const rd::DataError& e) {
    throw UsageError(fmt::format("strokes: {}", e.what()));
  }
  // A seeded sample of the drawings.
  std::vector<std::size_t> order(drawings.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(a.seed);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(std::min<std::size_t>(order.size(), a.n));
  std::vector<std::string> keys;
  for (auto i : order) keys.push_back(drawings[i].key);
  const int64_t size = program->image_size(), n = static_cast<int64_t>(keys.size());
  auto x = rd::resize_images(read_images(images_path, keys), size, size).clamp(0, 1).unsqueeze(1);

  random::SeedScope seed(a.seed);
  ProgressBar bar("strokes", n);
  std::vector<std::vector<torch::Tensor>> inferred;
  for (int64_t i = 0; i < n; i += a.batch) {
    auto part = dood::infer_control_points(*program, x.narrow(0, i, std::min(a.batch, n - i)).to(run.device));
    inferred.insert(inferred.end(), part.begin(), part.end());
    bar.update(i + std::min(a.batch, n - i));
  }
  bar.finish();

  nlohmann::json rows = nlohmann::json::array();
  int64_t exact = 0, compared = 0;
  double abs_diff = 0, chamfer_sum = 0;
  std::vector<double> chamfers;
  const int64_t zoom = 4;
  std::vector<torch::Tensor> overlays;
  for (int64_t i = 0; i < n; ++i) {
    const auto& human = drawings[order[i]].strokes;
    const auto& mine = inferred[i];
    const auto human_count = static_cast<int64_t>(human.size()), count = static_cast<int64_t>(mine.size());
    exact += human_count == count;
    abs_diff += std::abs(static_cast<double>(human_count - count));
    std::vector<torch::Tensor> human_points, curve_points;
    for (const auto& s : human) human_points.push_back(dood::densify_polyline(to_frame(s, size), kSpacing));
    for (const auto& cp : mine) curve_points.push_back(dood::bezier_curve(cp.to(torch::kFloat), a.samples));
    nlohmann::json row = {{"key", keys[i]}, {"human_strokes", human_count}, {"inferred_strokes", count}};
    if (!human_points.empty() && !curve_points.empty()) {
      const double c = dood::chamfer_distance(torch::cat(curve_points), torch::cat(human_points));
      row["chamfer"] = c;
      chamfers.push_back(c);
      chamfer_sum += c;
      ++compared;
    }
    rows.push_back(row);
    if (static_cast<int64_t>(overlays.size()) < a.overlay) {
      auto canvas = (x[i][0].cpu().repeat_interleave(zoom, 0).repeat_interleave(zoom, 1) * 0.35).expand({3, -1, -1});
      canvas = canvas.contiguous().clone();
      for (const auto& p : human_points) plot(canvas, p, zoom, {0.2f, 0.9f, 0.2f});
      for (const auto& p : curve_points) plot(canvas, p, zoom, {1.0f, 0.2f, 0.8f});
      overlays.push_back(canvas);
    }
  }
  std::sort(chamfers.begin(), chamfers.end());
  const auto png = run.dir / "strokes.png";
  if (!overlays.empty()) save_image_grid(png, torch::stack(overlays), std::min<int64_t>(4, overlays.size()));
  nlohmann::json out = {
      {"run", a.run},
      {"images", images_path.string()},
      {"strokes", strokes_path.string()},
      {"drawings", n},
      {"seed", a.seed},
      {"frame", fmt::format("{}x{} pixels", size, size)},
      {"count_exact_match", static_cast<double>(exact) / n},
      {"count_mean_abs_diff", abs_diff / n},
      {"chamfer_mean", compared > 0 ? chamfer_sum / compared : 0.0},
      {"chamfer_median", chamfers.empty() ? 0.0 : chamfers[chamfers.size() / 2]},
      {"chamfer_drawings", compared},
      {"png", overlays.empty() ? std::string() : png.filename().string()},
      {"per_drawing", rows}};
  nlohmann::json summary = out;
  summary.erase("per_drawing");
  std::printf("%s\n", summary.dump(2).c_str());
  write_atomic(run.dir / "strokes.json", out.dump(2));
}

RegisterCommand register_stroke{"strokes", [](CLI::App& app) {
  auto a = std::make_shared<StrokeArgs>();
  auto* cmd = app.add_subcommand(
      "strokes", "DooD's inferred strokes against Omniglot's human strokes: count agreement and Chamfer distance");
  cmd->add_option("run", a->run, "run directory of a trained dood")->required();
  cmd->add_option("--images", a->images, "Omniglot image zip or folder (default: images_background_small1.zip "
                                         "under the data roots)");
  cmd->add_option("--strokes", a->strokes, "the matching strokes zip or folder (default: strokes_background_small1.zip)");
  cmd->add_option("--n", a->n, "drawings evaluated (a seeded sample)")->capture_default_str();
  cmd->add_option("--samples", a->samples, "points per inferred Bezier curve")->capture_default_str();
  cmd->add_option("--batch", a->batch, "images per guide run")->capture_default_str();
  cmd->add_option("--overlay", a->overlay, "drawings shown in RUN/strokes.png")->capture_default_str();
  cmd->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  cmd->add_option("--data-dir", a->data_dir, "data root searched first");
  cmd->add_option("--seed", a->seed, "random seed (sample of drawings and guide draws)")->capture_default_str();
  cmd->callback([a] { strokes(*a); });
}};

}  // namespace
}  // namespace ppl::cli
