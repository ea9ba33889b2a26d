// Multi-object scene generators (multi-MNIST, MNIST-4, MNIST-10, MNIST-4-10)
// and the MNIST-4 / MNIST-10 structure checker.
#include <ppl/runtime/data/scenes.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/runtime/data/transforms.hpp>
#include <ppl/runtime/image.hpp>

namespace ppl::runtime::data {
namespace fs = std::filesystem;
namespace {

/// splitmix64: a small generator that gives the same stream everywhere.
struct Rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform integer in [lo, hi].
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  bool coin() { return (next() >> 63) != 0; }
  /// Uniform in (0, 1): 53 random bits, never 0.
  double unit() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  /// Standard normal (Box-Muller).
  double normal() {
    const double u = unit(), v = unit();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * v);
  }
};

/// multi-mnist (Pyro's multi_mnist.py): the digit shrink factor's mean and
/// standard deviation, and the draws of a scene's digits tried before giving up.
constexpr double kScaleMean = 1.3, kScaleSd = 0.1;
constexpr int kMaxSceneDraws = 10000;

// Quadrants clockwise from top-left.
enum Quadrant { kTopLeft = 0, kTopRight = 1, kBottomRight = 2, kBottomLeft = 3 };

std::array<double, 2> quadrant_origin(int q, double size) {
  const double h = size / 2;
  switch (q) {
    case kTopRight: return {h, 0};
    case kBottomRight: return {h, h};
    case kBottomLeft: return {0, h};
    default: return {0, 0};
  }
}

/// k top-left corners of d x d boxes inside a q x q square, not overlapping
/// where the space allows (rejection sampling), else the last draw.
std::vector<std::array<std::int64_t, 2>> spread(Rng& rng, int k, std::int64_t q, std::int64_t d) {
  std::vector<std::array<std::int64_t, 2>> pos(k);
  for (int attempt = 0; attempt < 200; ++attempt) {
    for (auto& p : pos) p = {rng.uniform(0, q - d), rng.uniform(0, q - d)};
    bool overlap = false;
    for (int i = 0; i < k && !overlap; ++i)
      for (int j = i + 1; j < k && !overlap; ++j)
        overlap = std::abs(pos[i][0] - pos[j][0]) < d && std::abs(pos[i][1] - pos[j][1]) < d;
    if (!overlap) break;
  }
  return pos;
}

const std::array<std::vector<std::int64_t>, 4> kMnist10Sets = {
    std::vector<std::int64_t>{0, 1}, {2, 3, 4}, {8, 9}, {5, 6, 7}};

SceneCheck fail(const char* rule, std::string detail) { return {false, rule, std::move(detail), {rule}}; }

/// Records one more broken rule; the first one stays the verdict's rule.
void also_broken(SceneCheck& check, const char* rule, std::string detail) {
  if (check.ok) check = fail(rule, std::move(detail));
  else check.broken.push_back(rule);
}

/// The tight box of the pixels of `glyph` [h, w] of at least kInkLevel, in
/// the scene's pixels (the glyph's top-left corner at (x, y)); width 0 when
/// the glyph has no ink.
PixelBox ink_extent(const torch::Tensor& glyph, double x, double y) {
  const auto ink = glyph >= kInkLevel;
  const auto rows = torch::nonzero(ink.any(1)), cols = torch::nonzero(ink.any(0));
  if (rows.numel() == 0) return {};
  const auto top = rows.min().item<std::int64_t>(), bottom = rows.max().item<std::int64_t>();
  const auto left = cols.min().item<std::int64_t>(), right = cols.max().item<std::int64_t>();
  return {x + double(left), y + double(top), double(right - left + 1), double(bottom - top + 1)};
}

}  // namespace

int quadrant_of(double x, double y, double size) {
  const bool right = x >= size / 2, bottom = y >= size / 2;
  if (!bottom) return right ? kTopRight : kTopLeft;
  return right ? kBottomRight : kBottomLeft;
}

std::string to_string(SceneKind kind) {
  switch (kind) {
    case SceneKind::multi_mnist: return "multi-mnist";
    case SceneKind::multi_mnist_overlap: return "multi-mnist-overlap";
    case SceneKind::multi_mnist_3: return "multi-mnist-3";
    case SceneKind::mnist4: return "mnist-4";
    case SceneKind::mnist10: return "mnist-10";
    case SceneKind::mnist4_10: return "mnist-4-10";
  }
  return "?";
}

SceneKind parse_scene_kind(const std::string& text) {
  auto squash = [](std::string v) {
    v.erase(std::remove(v.begin(), v.end(), '-'), v.end());
    return v;
  };
  auto t = text;
  std::replace(t.begin(), t.end(), '_', '-');
  std::transform(t.begin(), t.end(), t.begin(), ::tolower);
  for (auto k : {SceneKind::multi_mnist, SceneKind::multi_mnist_overlap, SceneKind::multi_mnist_3, SceneKind::mnist4,
                 SceneKind::mnist10, SceneKind::mnist4_10})
    if (t == to_string(k) || squash(t) == squash(to_string(k))) return k;
  if (t == "multi-mnist-2" || t == "multimnist2") return SceneKind::multi_mnist_overlap;
  throw std::invalid_argument(fmt::format("scene kind is \"{}\", but must be one of multi-mnist, multi-mnist-overlap, "
                                          "multi-mnist-3, mnist-4, mnist-10, mnist-4-10",
                                          text));
}

std::int64_t default_scene_size(SceneKind kind) {
  return kind == SceneKind::multi_mnist || kind == SceneKind::multi_mnist_overlap || kind == SceneKind::multi_mnist_3
             ? 50
             : 128;
}

void to_json(nlohmann::json& j, const SceneOptions& o) {
  j = {{"kind", to_string(o.kind)}, {"size", o.size}, {"seed", o.seed}};
}

void from_json(const nlohmann::json& j, SceneOptions& o) {
  if (j.contains("kind")) o.kind = parse_scene_kind(j.at("kind").get<std::string>());
  o.size = j.value("size", o.size);
  o.seed = j.value("seed", o.seed);
}

SceneGenerator::SceneGenerator(Dataset digits, SceneOptions options)
    : digits_(std::move(digits)), options_(options), by_class_(10) {
  if (options_.size == 0) options_.size = default_scene_size(options_.kind);
  if (options_.size < 16)
    throw std::invalid_argument(fmt::format("SceneGenerator: size is {}, but must be at least 16", options_.size));
  if (!digits_.images.defined() || digits_.images.dim() != 3 || !digits_.labels.defined() ||
      digits_.labels.size(0) != digits_.images.size(0) || digits_.size() == 0)
    throw std::invalid_argument("SceneGenerator: digits must hold images [N, H, W] (N > 0) and labels [N]");
  digits_.images = digits_.images.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto labels = digits_.labels.to(torch::kCPU, torch::kInt64).contiguous();
  for (std::int64_t i = 0; i < labels.size(0); ++i) {
    const auto y = labels[i].item<std::int64_t>();
    if (y >= 0 && y < 10) by_class_[y].push_back(i);
  }
  const bool structured = options_.kind == SceneKind::mnist4 || options_.kind == SceneKind::mnist10 ||
                          options_.kind == SceneKind::mnist4_10;
  if (structured)
    for (int c = 0; c < 10; ++c)
      if (by_class_[c].empty())
        throw std::invalid_argument(fmt::format("SceneGenerator: {} needs digits of every class 0-9, but class {} has "
                                                "none", to_string(options_.kind), c));
}

Scene SceneGenerator::scene(std::int64_t index) const {
  Rng rng{options_.seed * 0xd1342543de82ef95ULL + static_cast<std::uint64_t>(index) * 0x9e3779b97f4a7c15ULL + 7};
  rng.next();
  const auto size = options_.size;
  Scene s;
  s.kind = options_.kind;
  s.image = torch::zeros({size, size});
  auto draw = [&](std::int64_t item, std::int64_t x, std::int64_t y, std::int64_t d) {
    auto glyph = resize_images(digits_.images[item], d, d).clamp(0.0, 1.0);
    const auto w = std::min(d, size - x), h = std::min(d, size - y);
    auto region = s.image.narrow(0, y, h).narrow(1, x, w);
    region.copy_(torch::maximum(region, glyph.narrow(0, 0, h).narrow(1, 0, w)));
    const auto label = digits_.labels[item].item<std::int64_t>();
    s.objects.push_back(SceneObject{label, double(x), double(y), double(d), double(d),
                                    ink_extent(glyph.narrow(0, 0, h).narrow(1, 0, w), double(x), double(y))});
  };
  auto pick = [&](std::int64_t c) {
    const auto& pool = by_class_[c];
    return pool[rng.uniform(0, static_cast<std::int64_t>(pool.size()) - 1)];
  };
  auto kind = options_.kind;
  if (kind == SceneKind::mnist4_10) kind = rng.coin() ? SceneKind::mnist10 : SceneKind::mnist4;
  s.kind = kind;
  const auto q = size / 2;
  if (kind == SceneKind::multi_mnist) {
    // Pyro's multi_mnist.py: the count first, then the digits, all of them
    // drawn again while two digits' ink overlaps.
    const int count = static_cast<int>(rng.uniform(0, 2));
    struct Drawn {
      std::int64_t item, x, y, d;
      double scale;
      torch::Tensor glyph;
    };
    std::vector<Drawn> drawn;
    for (int attempt = 0;; ++attempt) {
      if (attempt == kMaxSceneDraws)
        throw std::runtime_error(fmt::format("SceneGenerator: multi-mnist scene {} found no {} digits without "
                                             "overlapping ink in {} draws (canvas {} x {})",
                                             index, count, kMaxSceneDraws, size, size));
      drawn.clear();
      auto ink = torch::zeros({size, size}, torch::kBool);
      bool overlap = false;
      for (int k = 0; k < count && !overlap; ++k) {
        const auto item = rng.uniform(0, digits_.size() - 1);
        const double scale = kScaleMean + kScaleSd * rng.normal();
        const auto d = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor(28.0 * size / 50.0 / scale)), 1,
                                                size);
        const auto x = rng.uniform(0, size - d), y = rng.uniform(0, size - d);
        auto glyph = resize_images(digits_.images[item], d, d).clamp(0.0, 1.0);
        auto region = ink.narrow(0, y, d).narrow(1, x, d);
        const auto mine = glyph >= kInkLevel;
        overlap = (region & mine).any().item<bool>();
        region.logical_or_(mine);
        drawn.push_back({item, x, y, d, scale, glyph});
      }
      if (!overlap) break;
    }
    for (const auto& g : drawn) {
      s.image.narrow(0, g.y, g.d).narrow(1, g.x, g.d).add_(g.glyph);
      const auto label = digits_.labels[g.item].item<std::int64_t>();
      SceneObject o{label, double(g.x), double(g.y), double(g.d), double(g.d), ink_extent(g.glyph, double(g.x), double(g.y))};
      o.scale = g.scale;
      s.objects.push_back(o);
    }
    s.image.clamp_(0.0, 1.0);
  } else if (kind == SceneKind::multi_mnist_overlap || kind == SceneKind::multi_mnist_3) {
    const auto d = std::max<std::int64_t>(1, std::llround(28.0 * size / 50.0));
    const int count = static_cast<int>(rng.uniform(0, kind == SceneKind::multi_mnist_overlap ? 2 : 3));
    for (int k = 0; k < count; ++k) {
      const auto item = rng.uniform(0, digits_.size() - 1);
      const auto x = rng.uniform(0, size - d), y = rng.uniform(0, size - d);
      draw(item, x, y, d);
    }
  } else if (kind == SceneKind::mnist4) {
    const auto d = size / 4;
    const auto c = rng.uniform(0, 6);
    const auto x = rng.uniform(0, q - d), y = rng.uniform(0, q - d);
    // Clockwise from top-left; each box mirrored about the centre lines.
    draw(pick(c), x, y, d);
    draw(pick(c + 1), size - x - d, y, d);
    draw(pick(c + 2), size - x - d, size - y - d, d);
    draw(pick(c + 3), x, size - y - d, d);
  } else {
    const auto d = std::llround(size * 3.0 / 16.0);
    std::array<int, 4> where = {kTopLeft, kTopRight, kBottomRight, kBottomLeft};  // set index -> quadrant
    if (rng.coin()) std::swap(where[0], where[2]);
    if (rng.coin()) std::swap(where[1], where[3]);
    const auto shared = spread(rng, 2, q, d);  // Q1 and Q3 share within-quadrant positions
    for (int set = 0; set < 4; ++set) {
      const auto& classes = kMnist10Sets[set];
      const auto pos = set % 2 == 0 ? shared : spread(rng, static_cast<int>(classes.size()), q, d);
      const auto origin = quadrant_origin(where[set], static_cast<double>(size));
      for (std::size_t k = 0; k < classes.size(); ++k)
        draw(pick(classes[k]), static_cast<std::int64_t>(origin[0]) + pos[k][0],
             static_cast<std::int64_t>(origin[1]) + pos[k][1], d);
    }
  }
  return s;
}

std::vector<Scene> SceneGenerator::scenes(std::int64_t first, std::int64_t n) const {
  std::vector<Scene> out;
  out.reserve(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  for (std::int64_t i = 0; i < n; ++i) out.push_back(scene(first + i));
  return out;
}

void write_scenes(const fs::path& dir, const std::vector<Scene>& scenes, const SceneOptions& options) {
  std::error_code ec;
  fs::create_directories(dir / "images", ec);
  if (ec) throw DataError(fmt::format("{}: expected a writable folder, found {}", dir.string(), ec.message()));
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t i = 0; i < scenes.size(); ++i) {
    const auto file = fmt::format("images/{:06d}.png", i);
    write_png(dir / file, scenes[i].image);
    nlohmann::json objects = nlohmann::json::array();
    for (const auto& o : scenes[i].objects) {
      const auto ink = o.ink();
      objects.push_back({{"class", o.label},
                         {"box", {o.x, o.y, o.width, o.height}},
                         {"ink_box", {ink.x, ink.y, ink.width, ink.height}}});
    }
    list.push_back({{"file", file}, {"kind", to_string(scenes[i].kind)}, {"objects", objects}});
  }
  // One scene per line: readable and diff-friendly for large sets.
  std::ofstream out(dir / "scenes.json");
  out << fmt::format("{{\"kind\": \"{}\", \"size\": {}, \"seed\": {}, \"count\": {}, \"scenes\": [\n",
                     to_string(options.kind), options.size, options.seed, scenes.size());
  for (std::size_t i = 0; i < list.size(); ++i) out << " " << list[i].dump() << (i + 1 < list.size() ? ",\n" : "\n");
  out << "]}\n";
  if (!out) throw DataError(fmt::format("{}: expected to write scenes.json, found a write error", dir.string()));
}

std::vector<DigitPlacement> placements(const Scene& scene) {
  std::vector<DigitPlacement> out;
  for (const auto& o : scene.objects) out.push_back({o.label, o.cx(), o.cy()});
  return out;
}

SceneCheck check_mnist4(const std::vector<DigitPlacement>& digits, double size, double tolerance) {
  if (tolerance < 0) tolerance = size / 32;
  if (digits.size() != 4) return fail("count", fmt::format("{} digits, but MNIST-4 has 4", digits.size()));
  std::array<const DigitPlacement*, 4> at{};
  for (const auto& d : digits) {
    const int q = quadrant_of(d.x, d.y, size);
    if (at[q]) return fail("quadrant", fmt::format("two digits in quadrant {} (clockwise from top-left)", q));
    at[q] = &d;
  }
  SceneCheck check;
  const auto c = at[kTopLeft]->label;
  if (c < 0 || c > 6) also_broken(check, "class", fmt::format("top-left class is {}, but must be 0-6", c));
  for (int q = 1; q < 4 && check.ok; ++q)
    if (at[q]->label != c + q)
      also_broken(check, "class", fmt::format("quadrant {} holds class {}, but must hold {} (top-left {} plus {})", q,
                                              at[q]->label, c + q, c, q));
  const double x = at[kTopLeft]->x, y = at[kTopLeft]->y;
  const std::array<std::array<double, 2>, 4> expect = {
      std::array<double, 2>{x, y}, {size - x, y}, {size - x, size - y}, {x, size - y}};
  for (int q = 1; q < 4; ++q)
    if (std::abs(at[q]->x - expect[q][0]) > tolerance || std::abs(at[q]->y - expect[q][1]) > tolerance) {
      also_broken(check, "position",
                  fmt::format("quadrant {} digit at ({:.1f}, {:.1f}), but the mirror of the top-left one is at "
                              "({:.1f}, {:.1f})", q, at[q]->x, at[q]->y, expect[q][0], expect[q][1]));
      break;
    }
  return check;
}

SceneCheck check_mnist10(const std::vector<DigitPlacement>& digits, double size, double tolerance) {
  if (tolerance < 0) tolerance = size / 32;
  if (digits.size() != 10) return fail("count", fmt::format("{} digits, but MNIST-10 has 10", digits.size()));
  std::array<std::set<std::int64_t>, 4> classes;
  std::array<int, 4> counts{};
  std::map<std::int64_t, const DigitPlacement*> by_class;
  for (const auto& d : digits) {
    const int q = quadrant_of(d.x, d.y, size);
    ++counts[q];
    classes[q].insert(d.label);
    by_class[d.label] = &d;
  }
  if (counts[kTopLeft] != 2 || counts[kBottomRight] != 2 || counts[kTopRight] != 3 || counts[kBottomLeft] != 3)
    return fail("quadrant", fmt::format("quadrants hold {}, {}, {}, {} digits clockwise from top-left, but must hold "
                                        "2, 3, 2, 3", counts[0], counts[1], counts[2], counts[3]));
  auto is = [&](int q, int set) {
    return classes[q] == std::set<std::int64_t>(kMnist10Sets[set].begin(), kMnist10Sets[set].end());
  };
  const bool diag_a = (is(kTopLeft, 0) && is(kBottomRight, 2)) || (is(kTopLeft, 2) && is(kBottomRight, 0));
  const bool diag_b = (is(kTopRight, 1) && is(kBottomLeft, 3)) || (is(kTopRight, 3) && is(kBottomLeft, 1));
  SceneCheck check;
  if (!diag_a || !diag_b)
    also_broken(check, "class",
                fmt::format("quadrant classes {{{}}}, {{{}}}, {{{}}}, {{{}}} clockwise from top-left, but must be "
                            "{{0,1}} / {{8,9}} on one diagonal and {{2,3,4}} / {{5,6,7}} on the other",
                            fmt::join(classes[0], ","), fmt::join(classes[1], ","), fmt::join(classes[2], ","),
                            fmt::join(classes[3], ",")));
  for (auto [a, b] : {std::pair<std::int64_t, std::int64_t>{0, 8}, {1, 9}}) {
    // Without both digits of the pair (a class failure) there is no position to compare.
    if (!by_class.count(a) || !by_class.count(b)) continue;
    const auto* p = by_class.at(a);
    const auto* r = by_class.at(b);
    const auto op = quadrant_origin(quadrant_of(p->x, p->y, size), size);
    const auto orr = quadrant_origin(quadrant_of(r->x, r->y, size), size);
    const double dx = (p->x - op[0]) - (r->x - orr[0]), dy = (p->y - op[1]) - (r->y - orr[1]);
    if (std::abs(dx) > tolerance || std::abs(dy) > tolerance) {
      also_broken(check, "position", fmt::format("digits {} and {} differ by ({:.1f}, {:.1f}) within their quadrants, "
                                                 "but must share a position", a, b, dx, dy));
      break;
    }
  }
  return check;
}

SceneCheck check_mnist4_10(const std::vector<DigitPlacement>& digits, double size, double tolerance) {
  if (digits.size() == 4) return check_mnist4(digits, size, tolerance);
  if (digits.size() == 10) return check_mnist10(digits, size, tolerance);
  return fail("count", fmt::format("{} digits, but MNIST-4-10 scenes have 4 or 10", digits.size()));
}

}  // namespace ppl::runtime::data
