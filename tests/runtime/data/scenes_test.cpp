#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/runtime/data/scenes.hpp>
#include <ppl/runtime/image.hpp>

namespace fs = std::filesystem;
namespace rd = ppl::runtime::data;

namespace {

/// Synthetic digits: three 28 x 28 images per class, each a bar whose
/// position encodes the class.
rd::Dataset synthetic_digits() {
  rd::Dataset d;
  d.images = torch::zeros({30, 28, 28});
  d.labels = torch::arange(30) % 10;
  for (int i = 0; i < 30; ++i) d.images[i].narrow(0, 4 + (i % 10) * 2, 3).narrow(1, 4 + i / 10, 18).fill_(1.0);
  return d;
}

rd::SceneGenerator generator(rd::SceneKind kind, std::int64_t size, std::uint64_t seed) {
  return rd::SceneGenerator(synthetic_digits(), rd::SceneOptions{}.with_kind(kind).with_size(size).with_seed(seed));
}

/// Digits that are ink everywhere (solid 28 x 28 squares): two of them
/// overlap in ink exactly when their boxes intersect.
rd::Dataset solid_digits() {
  rd::Dataset d;
  d.images = torch::ones({10, 28, 28});
  d.labels = torch::arange(10);
  return d;
}

bool boxes_meet(const rd::PixelBox& a, const rd::PixelBox& b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

int quadrant(const rd::DigitPlacement& p, double size) {
  return (p.y >= size / 2 ? 2 : 0) + (p.x >= size / 2 ? 1 : 0);
}

}  // namespace

TEST_CASE("scenes: MNIST-4 scenes satisfy the structure rules at 128 and 64", "[runtime][data][scenes]") {
  for (std::int64_t size : {128, 64}) {
    auto gen = generator(rd::SceneKind::mnist4, size, 3);
    std::set<std::int64_t> first_classes;
    for (const auto& s : gen.scenes(0, 60)) {
      REQUIRE(s.image.sizes() == torch::IntArrayRef({size, size}));
      CHECK(s.objects.size() == 4);
      const auto check = rd::check_mnist4(rd::placements(s), size);
      INFO(check.rule << ": " << check.detail);
      CHECK(check.ok);
      CHECK(s.image.min().item<double>() >= 0.0);
      CHECK(s.image.max().item<double>() == Approx(1.0));
      first_classes.insert(s.objects.front().label);
      for (const auto& o : s.objects) {
        CHECK(o.x >= 0);
        CHECK(o.x + o.width <= size);
      }
    }
    CHECK(first_classes.size() == 7);  // classes 0..6 on the top-left all occur
  }
}

TEST_CASE("scenes: each object's ink box is the tight box of its pixels of at least kInkLevel", "[runtime][data][scenes]") {
  for (std::int64_t size : {128, 64}) {
    auto gen = generator(rd::SceneKind::mnist4, size, 5);
    for (const auto& s : gen.scenes(0, 10)) {
      const auto img = s.image.accessor<float, 2>();
      for (const auto& o : s.objects) {
        // MNIST-4's digits sit in different quadrants: the glyph's square holds its ink alone.
        std::int64_t left = size, right = -1, top = size, bottom = -1;
        for (auto y = std::int64_t(o.y); y < std::int64_t(o.y + o.height); ++y)
          for (auto x = std::int64_t(o.x); x < std::int64_t(o.x + o.width); ++x)
            if (img[y][x] >= rd::kInkLevel) {
              left = std::min(left, x), right = std::max(right, x);
              top = std::min(top, y), bottom = std::max(bottom, y);
            }
        REQUIRE(right >= 0);
        const auto ink = o.ink();
        CHECK(ink.x == double(left));
        CHECK(ink.y == double(top));
        CHECK(ink.width == double(right - left + 1));
        CHECK(ink.height == double(bottom - top + 1));
        // The synthetic digits are bars: 18 of 28 columns wide, 3 rows tall.
        CHECK(ink.width < o.width);
        CHECK(ink.height < o.height / 2);
      }
    }
  }
  // Without a known ink box, ink() is the glyph's square.
  const rd::SceneObject bare{3, 1, 2, 10, 12, {}};
  CHECK(bare.ink().x == 1);
  CHECK(bare.ink().height == 12);
}

TEST_CASE("scenes: MNIST-10 scenes satisfy the structure rules and both swaps occur", "[runtime][data][scenes]") {
  for (std::int64_t size : {128, 64}) {
    auto gen = generator(rd::SceneKind::mnist10, size, 4);
    std::set<std::pair<bool, bool>> swaps;
    for (const auto& s : gen.scenes(0, 60)) {
      REQUIRE(s.objects.size() == 10);
      const auto p = rd::placements(s);
      const auto check = rd::check_mnist10(p, size);
      INFO(check.rule << ": " << check.detail);
      CHECK(check.ok);
      std::set<std::int64_t> classes;
      bool zero_top_left = false, two_top_right = false;
      for (const auto& d : p) {
        classes.insert(d.label);
        if (d.label == 0) zero_top_left = quadrant(d, size) == 0;
        if (d.label == 2) two_top_right = quadrant(d, size) == 1;
      }
      CHECK(classes.size() == 10);
      swaps.insert({zero_top_left, two_top_right});
    }
    CHECK(swaps.size() == 4);
  }
}

TEST_CASE("scenes: MNIST-4-10 mixes both kinds", "[runtime][data][scenes]") {
  auto gen = generator(rd::SceneKind::mnist4_10, 64, 5);
  int four = 0, ten = 0;
  for (const auto& s : gen.scenes(0, 40)) {
    const auto check = rd::check_mnist4_10(rd::placements(s), 64);
    INFO(check.rule << ": " << check.detail);
    CHECK(check.ok);
    (s.objects.size() == 4 ? four : ten)++;
    CHECK(s.kind == (s.objects.size() == 4 ? rd::SceneKind::mnist4 : rd::SceneKind::mnist10));
  }
  CHECK(four > 5);
  CHECK(ten > 5);
}

TEST_CASE("scenes: generation is deterministic under a seed", "[runtime][data][scenes]") {
  for (auto kind : {rd::SceneKind::multi_mnist, rd::SceneKind::multi_mnist_overlap, rd::SceneKind::mnist4,
                    rd::SceneKind::mnist10}) {
    auto a = generator(kind, 0, 11).scene(7), b = generator(kind, 0, 11).scene(7);
    auto c = generator(kind, 0, 12).scene(7);
    CHECK(torch::equal(a.image, b.image));
    CHECK(a.objects.size() == b.objects.size());
    CHECK_FALSE((torch::equal(a.image, c.image) && a.objects.size() == c.objects.size() && !a.objects.empty() &&
                 a.objects[0].x == c.objects[0].x));
    // Scene i does not depend on which scenes were drawn before it.
    auto gen = generator(kind, 0, 11);
    CHECK(torch::equal(gen.scenes(5, 3)[2].image, a.image));
  }
}

TEST_CASE("scenes: multi-MNIST-overlap has 0-2 (0-3) digits of 28 x 28 inside a 50 x 50 canvas", "[runtime][data][scenes]") {
  for (auto [kind, most] : {std::pair{rd::SceneKind::multi_mnist_overlap, 2}, std::pair{rd::SceneKind::multi_mnist_3, 3}}) {
    auto gen = generator(kind, 0, 1);
    CHECK(gen.options().size == 50);
    std::set<std::size_t> counts;
    for (const auto& s : gen.scenes(0, 80)) {
      counts.insert(s.objects.size());
      CHECK(s.image.sizes() == torch::IntArrayRef({50, 50}));
      for (const auto& o : s.objects) {
        CHECK(o.width == 28);
        CHECK(o.x >= 0);
        CHECK(o.y + o.height <= 50);
      }
      if (s.objects.empty()) CHECK(s.image.sum().item<double>() == 0.0);
    }
    CHECK(counts.size() == static_cast<std::size_t>(most + 1));
  }
}

TEST_CASE("scenes: quadrant_of numbers quadrants clockwise from top-left", "[runtime][data][scenes]") {
  const double size = 64;
  CHECK(rd::quadrant_of(10, 10, size) == 0);
  CHECK(rd::quadrant_of(50, 10, size) == 1);
  CHECK(rd::quadrant_of(50, 50, size) == 2);
  CHECK(rd::quadrant_of(10, 50, size) == 3);
  // The centre lines belong to the right and bottom quadrants.
  CHECK(rd::quadrant_of(32, 31.9, size) == 1);
  CHECK(rd::quadrant_of(31.9, 32, size) == 3);
  CHECK(rd::quadrant_of(32, 32, size) == 2);
  // Each generated MNIST-4 object (top-left, top-right, bottom-right, bottom-left) in its own quadrant.
  const auto scene = generator(rd::SceneKind::mnist4, 64, 3).scene(0);
  for (int q = 0; q < 4; ++q) {
    const auto& o = scene.objects[static_cast<std::size_t>(q)];
    CHECK(rd::quadrant_of(o.cx(), o.cy(), size) == q);
  }
}

TEST_CASE("scenes: the checker rejects scenes that break each MNIST-4 rule", "[runtime][data][scenes]") {
  const double size = 128;
  const auto good = rd::placements(generator(rd::SceneKind::mnist4, 128, 9).scene(0));
  REQUIRE(rd::check_mnist4(good, size).ok);
  // Order of the generated objects: top-left, top-right, bottom-right, bottom-left.
  auto count = good;
  count.pop_back();
  CHECK(rd::check_mnist4(count, size).rule == "count");
  auto quad = good;
  quad[1].x = size - quad[1].x;  // top-right digit moved into the top-left quadrant
  CHECK(rd::check_mnist4(quad, size).rule == "quadrant");
  auto cls = good;
  cls[2].label = (cls[2].label + 5) % 10;
  CHECK(rd::check_mnist4(cls, size).rule == "class");
  auto top = good;
  for (int q = 0; q < 4; ++q) top[q].label = 7 + q;  // top-left class 7 would need 10
  CHECK(rd::check_mnist4(top, size).rule == "class");
  auto pos = good;
  pos[3].x += (pos[3].x < 32 ? 10 : -10);  // still in its quadrant, no longer mirrored
  CHECK(quadrant(pos[3], size) == 2);
  CHECK(rd::check_mnist4(pos, size).rule == "position");
  // Every rule that can still be checked is listed; the first names the verdict.
  using Rules = std::vector<std::string>;
  CHECK(rd::check_mnist4(count, size).broken == Rules{"count"});
  CHECK(rd::check_mnist4(quad, size).broken == Rules{"quadrant"});
  CHECK(rd::check_mnist4(cls, size).broken == Rules{"class"});
  CHECK(rd::check_mnist4(pos, size).broken == Rules{"position"});
  auto both = pos;
  both[2].label = (both[2].label + 5) % 10;
  const auto verdict = rd::check_mnist4(both, size);
  CHECK_FALSE(verdict.ok);
  CHECK(verdict.rule == "class");
  CHECK(verdict.broken == Rules{"class", "position"});
  CHECK(rd::check_mnist4(good, size).broken.empty());
}

TEST_CASE("scenes: the checker rejects scenes that break each MNIST-10 rule", "[runtime][data][scenes]") {
  const double size = 128;
  const auto good = rd::placements(generator(rd::SceneKind::mnist10, 128, 9).scene(1));
  REQUIRE(rd::check_mnist10(good, size).ok);
  auto find = [](std::vector<rd::DigitPlacement>& v, std::int64_t label) -> rd::DigitPlacement& {
    for (auto& d : v)
      if (d.label == label) return d;
    throw std::logic_error("no such class");
  };
  auto count = good;
  count.erase(count.begin());
  CHECK(rd::check_mnist10(count, size).rule == "count");
  auto quad = good;
  auto& two = find(quad, 2);
  two.x = size - two.x;  // moved horizontally into the neighbouring quadrant
  CHECK(rd::check_mnist10(quad, size).rule == "quadrant");
  auto cls = good;
  auto& d2 = find(cls, 2);
  auto& d5 = find(cls, 5);
  std::swap(d2.label, d5.label);  // the {2,3,4} and {5,6,7} quadrants exchange one digit
  CHECK(rd::check_mnist10(cls, size).rule == "class");
  auto pos = good;
  auto& eight = find(pos, 8);
  const double within = std::fmod(eight.x, size / 2);
  eight.x += within < size / 4 ? 12 : -12;  // stays in its quadrant
  CHECK(rd::check_mnist10(pos, size).rule == "position");
  using Rules = std::vector<std::string>;
  CHECK(rd::check_mnist10(cls, size).broken == Rules{"class"});
  CHECK(rd::check_mnist10(pos, size).broken == Rules{"position"});
  auto both = pos;
  std::swap(find(both, 2).label, find(both, 5).label);
  CHECK(rd::check_mnist10(both, size).broken == Rules{"class", "position"});
  // A class failure that loses digit 8 leaves no pair to compare: only "class".
  auto lost = good;
  find(lost, 8).label = 4;
  CHECK(rd::check_mnist10(lost, size).broken == Rules{"class"});
  // The tolerance accepts small deviations.
  auto near = good;
  find(near, 9).y += 1.0;
  CHECK(rd::check_mnist10(near, size).ok);
}

TEST_CASE("scenes: written as PNG images plus JSON ground truth", "[runtime][data][scenes]") {
  const auto dir = fs::temp_directory_path() / fmt::format("ppl-scenes-test-{}", ::getpid());
  fs::remove_all(dir);
  auto gen = generator(rd::SceneKind::mnist4, 64, 2);
  const auto scenes = gen.scenes(0, 3);
  rd::write_scenes(dir, scenes, gen.options());
  std::ifstream in(dir / "scenes.json");
  const auto j = nlohmann::json::parse(in);
  CHECK(j["kind"] == "mnist-4");
  CHECK(j["size"] == 64);
  REQUIRE(j["scenes"].size() == 3);
  const auto& first = j["scenes"][0];
  CHECK(first["objects"].size() == 4);
  CHECK(first["objects"][1]["class"] == scenes[0].objects[1].label);
  CHECK(first["objects"][1]["box"][0].get<double>() == scenes[0].objects[1].x);
  CHECK(first["objects"][1]["ink_box"][3].get<double>() == scenes[0].objects[1].ink().height);
  auto image = ppl::runtime::read_png(dir / first["file"].get<std::string>());
  CHECK(torch::allclose(image, scenes[0].image, 0.0, 0.5 / 255 + 1e-6));
  fs::remove_all(dir);
  CHECK_THROWS_AS(rd::parse_scene_kind("mnist-5"), std::invalid_argument);
  CHECK(rd::parse_scene_kind("mnist4_10") == rd::SceneKind::mnist4_10);
  CHECK(rd::parse_scene_kind("MNIST-10") == rd::SceneKind::mnist10);
  // Options round-trip through JSON.
  const auto opts = rd::SceneOptions{}.with_kind(rd::SceneKind::mnist4_10).with_size(64).with_seed(9);
  const nlohmann::json oj = opts;
  CHECK(oj["kind"] == "mnist-4-10");
  const auto back = oj.get<rd::SceneOptions>();
  CHECK(back.kind == opts.kind);
  CHECK(back.size == 64);
  CHECK(back.seed == 9);
}

TEST_CASE("scenes: multi-MNIST counts 0, 1 and 2 digits equally often", "[runtime][data][scenes]") {
  const int n = 1500;
  const auto scenes = generator(rd::SceneKind::multi_mnist, 0, 21).scenes(0, n);
  std::array<int, 3> counts{};
  for (const auto& s : scenes) {
    REQUIRE(s.objects.size() <= 2);
    ++counts[s.objects.size()];
  }
  // Each share is binomial(n, 1/3): within 4 standard errors.
  const double p = 1.0 / 3, se = std::sqrt(p * (1 - p) / n);
  for (int c = 0; c < 3; ++c) CHECK(std::abs(counts[c] / double(n) - p) < 4 * se);
}

TEST_CASE("scenes: multi-MNIST digits never overlap in ink, multi-MNIST-overlap's do", "[runtime][data][scenes]") {
  // With solid digits, ink overlaps exactly where the boxes meet.
  rd::SceneGenerator gen(solid_digits(), rd::SceneOptions{}.with_kind(rd::SceneKind::multi_mnist).with_seed(4));
  rd::SceneGenerator old(solid_digits(), rd::SceneOptions{}.with_kind(rd::SceneKind::multi_mnist_overlap).with_seed(4));
  int pairs = 0, old_overlaps = 0;
  for (std::int64_t i = 0; i < 300; ++i) {
    const auto s = gen.scene(i);
    for (const auto& o : s.objects) {
      CHECK(o.x >= 0);
      CHECK(o.y >= 0);
      CHECK(o.x + o.width <= 50);
      CHECK(o.y + o.height <= 50);
    }
    if (s.objects.size() == 2) {
      ++pairs;
      CHECK_FALSE(boxes_meet(s.objects[0].ink(), s.objects[1].ink()));
      // The canvas holds exactly the two squares' ink.
      const double area = s.objects[0].width * s.objects[0].height + s.objects[1].width * s.objects[1].height;
      CHECK(s.image.sum().item<double>() == Approx(area).epsilon(1e-5));
    }
    const auto o = old.scene(i);
    if (o.objects.size() == 2 && boxes_meet(o.objects[0].ink(), o.objects[1].ink())) ++old_overlaps;
  }
  CHECK(pairs > 50);
  CHECK(old_overlaps > 20);  // the rejection is what keeps the new scenes apart
}

TEST_CASE("scenes: multi-MNIST shrinks digits by a factor from N(1.3, 0.1)", "[runtime][data][scenes]") {
  // Scenes of one digit: no rejection, so their factors are the prior's draws.
  const auto scenes = generator(rd::SceneKind::multi_mnist, 0, 8).scenes(0, 1500);
  std::vector<double> scales;
  for (const auto& s : scenes) {
    for (const auto& o : s.objects) {
      CHECK(o.width == std::floor(28.0 / o.scale));
      CHECK(o.height == o.width);
    }
    if (s.objects.size() == 1) scales.push_back(s.objects[0].scale);
  }
  const double n = static_cast<double>(scales.size());
  REQUIRE(n > 400);
  double mean = 0, var = 0;
  for (double v : scales) mean += v / n;
  for (double v : scales) var += (v - mean) * (v - mean) / (n - 1);
  // Within 4 standard errors: of the mean sd / sqrt(n), of the sd about sd / sqrt(2 (n - 1)).
  CHECK(std::abs(mean - 1.3) < 4 * 0.1 / std::sqrt(n));
  CHECK(std::abs(std::sqrt(var) - 0.1) < 4 * 0.1 / std::sqrt(2 * (n - 1)));
}

TEST_CASE("scenes: multi-mnist names the published recipe, multi-mnist-2 the overlapping one", "[runtime][data][scenes]") {
  CHECK(rd::parse_scene_kind("multi-mnist") == rd::SceneKind::multi_mnist);
  CHECK(rd::parse_scene_kind("multi_mnist_overlap") == rd::SceneKind::multi_mnist_overlap);
  CHECK(rd::parse_scene_kind("multi-mnist-2") == rd::SceneKind::multi_mnist_overlap);
  CHECK(rd::to_string(rd::SceneKind::multi_mnist_overlap) == "multi-mnist-overlap");
  CHECK(rd::default_scene_size(rd::SceneKind::multi_mnist) == 50);
  const auto opts = rd::SceneOptions{}.with_kind(rd::SceneKind::multi_mnist).with_seed(3);
  nlohmann::json j = opts;
  CHECK(j.get<rd::SceneOptions>().kind == rd::SceneKind::multi_mnist);
}
