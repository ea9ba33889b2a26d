// S-Acc's scene reader, the structure check on what it reads, and broken
// scenes to validate it.
#include <ppl/programs/gnm/scene_reader.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include <boost/hana.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ppl/core/reflect.hpp>
#include <ppl/runtime/image.hpp>
#include <ppl/runtime/data/transforms.hpp>

BOOST_HANA_ADAPT_STRUCT(ppl::programs::gnm::SceneReaderOptions, threshold, dilation, min_area, min_confidence);

namespace ppl::programs::gnm {
namespace rd = ppl::runtime::data;

namespace {

/// Grows a mask [H, W] (bool) by `pixels` in the 8-neighbourhood.
torch::Tensor dilate(const torch::Tensor& mask, int64_t pixels) {
  if (pixels <= 0) return mask;
  auto m = mask.to(torch::kFloat32).unsqueeze(0).unsqueeze(0);
  const auto k = 2 * pixels + 1;
  return torch::max_pool2d(m, {k, k}, {1, 1}, {pixels, pixels}).squeeze(0).squeeze(0) > 0.5;
}

/// Classifies each crop (normalised as the classifier's training digits) and
/// writes label and confidence to the digit where[j] = (image, digit) of out.
void label_crops(const std::vector<torch::Tensor>& crops, const std::vector<std::pair<size_t, size_t>>& where,
                 std::vector<std::vector<DetectedDigit>>& out, DigitClassifier& classifier) {
  if (crops.empty()) return;
  std::vector<torch::Tensor> normal;
  normal.reserve(crops.size());
  for (const auto& c : crops) normal.push_back(normalise_digits(c)[0]);
  torch::NoGradGuard no_grad;
  classifier->eval();
  const auto probs = torch::softmax(classifier->forward(torch::stack(normal)), 1);
  const auto [best, label] = probs.max(1);
  for (size_t j = 0; j < where.size(); ++j) {
    auto& d = out[where[j].first][where[j].second];
    d.label = label[static_cast<int64_t>(j)].item<int64_t>();
    d.confidence = best[static_cast<int64_t>(j)].item<double>();
  }
}

/// Scenes [N, 1, H, W] or [N, H, W] as CPU float [N, H, W]; `who` names the caller in the error.
torch::Tensor scene_stack(const torch::Tensor& images, const char* who) {
  if (!images.defined() || (images.dim() != 4 && images.dim() != 3) || (images.dim() == 4 && images.size(1) != 1))
    throw std::invalid_argument(fmt::format("{}: images must be [N, 1, H, W] or [N, H, W]", who));
  auto x = images.to(torch::kCPU, torch::kFloat32).contiguous();
  return x.dim() == 4 ? x.squeeze(1) : x;
}

/// read_scenes' smallest digit, min_area given at 64 x 64, for an h x w canvas.
int64_t scaled_min_area(const SceneReaderOptions& options, int64_t h, int64_t w) {
  const auto area = static_cast<double>(options.min_area) * static_cast<double>(h * w) / 4096.0;
  return std::max<int64_t>(1, std::llround(area));
}

/// One digit's sums while its pixels are visited: the centre of mass of the
/// pixels weighed, and the area and box of the ink pixels among them.
class DigitSums {
 public:
  DigitSums(int64_t h, int64_t w) { digit_.x0 = w, digit_.y0 = h, digit_.x1 = -1, digit_.y1 = -1; }

  void weigh(double v, int64_t x, int64_t y) {
    mass_ += v;
    digit_.x += v * (static_cast<double>(x) + 0.5);
    digit_.y += v * (static_cast<double>(y) + 0.5);
  }

  void ink(int64_t x, int64_t y) {
    ++digit_.area;
    digit_.x0 = std::min(digit_.x0, x), digit_.x1 = std::max(digit_.x1, x);
    digit_.y0 = std::min(digit_.y0, y), digit_.y1 = std::max(digit_.y1, y);
  }

  int64_t area() const { return digit_.area; }

  /// The digit found: centre divided out, box half-open. Call only with area() > 0.
  DetectedDigit digit() const {
    auto d = digit_;
    d.x /= mass_, d.y /= mass_;
    d.x1 += 1, d.y1 += 1;
    return d;
  }

 private:
  DetectedDigit digit_;
  double mass_ = 0;
};

void check_min_confidence(double v) {
  if (!(v >= 0 && v <= 1))
    throw std::invalid_argument(fmt::format("scene reader: min_confidence is {}, but must be in [0, 1]", v));
}

/// The pixels of `image` [H, W] covering `box`, rounded outwards and clipped.
torch::Tensor region(const torch::Tensor& image, const rd::PixelBox& box) {
  const auto h = image.size(0), w = image.size(1);
  const auto x0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(box.x)), 0, w);
  const auto y0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(box.y)), 0, h);
  const auto x1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(box.x + box.width)), x0, w);
  const auto y1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(box.y + box.height)), y0, h);
  return image.narrow(0, y0, y1 - y0).narrow(1, x0, x1 - x0);
}

/// Paints on `image` [H, W] (CPU float, contiguous) the ellipse inscribed in
/// `box`, smooth: peak * (1 - r^2) at normalised radius r < 1, kept where
/// the image is brighter.
void paint_blob(torch::Tensor& image, const rd::PixelBox& box, double peak) {
  auto px = image.accessor<float, 2>();
  const double a = std::max(box.width / 2, 0.5), b = std::max(box.height / 2, 0.5);
  const double cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  for (int64_t y = 0; y < image.size(0); ++y)
    for (int64_t x = 0; x < image.size(1); ++x) {
      const double u = (static_cast<double>(x) + 0.5 - cx) / a, v = (static_cast<double>(y) + 0.5 - cy) / b;
      const double r2 = u * u + v * v;
      if (r2 < 1) px[y][x] = std::max(px[y][x], static_cast<float>(peak * (1 - r2)));
    }
}

/// The spelling of each SceneBreak, the one table to_string and
/// parse_scene_break read.
constexpr std::array<std::pair<SceneBreak, const char*>, 5> kBreakNames = {{
    {SceneBreak::swap_quadrants, "swap-quadrants"},
    {SceneBreak::wrong_class, "wrong-class"},
    {SceneBreak::remove_digit, "remove-digit"},
    {SceneBreak::blurred, "blurred"},
    {SceneBreak::blob, "blob"},
}};

}  // namespace

void check_reader_options(const SceneReaderOptions& o) {
  if (!(o.threshold > 0 && o.threshold < 1))
    throw std::invalid_argument(fmt::format("scene reader: threshold is {}, but must be in (0, 1)", o.threshold));
  if (o.dilation < 0)
    throw std::invalid_argument(fmt::format("scene reader: dilation is {}, but must be at least 0", o.dilation));
  if (o.min_area < 1)
    throw std::invalid_argument(fmt::format("scene reader: min_area is {}, but must be at least 1", o.min_area));
  check_min_confidence(o.min_confidence);
}

void to_json(nlohmann::json& j, const SceneReaderOptions& options) { j = options_to_json(options); }

void from_json(const nlohmann::json& j, SceneReaderOptions& options) {
  options = options_from_json<SceneReaderOptions>(j);
  check_reader_options(options);
}

std::pair<torch::Tensor, int64_t> connected_components(const torch::Tensor& mask) {
  if (!mask.defined() || mask.dim() != 2)
    throw std::invalid_argument("connected_components: mask must be [H, W]");
  const auto m = mask.to(torch::kCPU, torch::kBool).contiguous();
  const auto h = m.size(0), w = m.size(1);
  auto labels = torch::zeros({h, w}, torch::kInt64);
  auto in = m.accessor<bool, 2>();
  auto lab = labels.accessor<int64_t, 2>();
  int64_t count = 0;
  std::vector<std::pair<int64_t, int64_t>> stack;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      if (!in[y][x] || lab[y][x] != 0) continue;
      lab[y][x] = ++count;
      stack.assign(1, {y, x});
      while (!stack.empty()) {
        const auto [cy, cx] = stack.back();
        stack.pop_back();
        for (int64_t dy = -1; dy <= 1; ++dy)
          for (int64_t dx = -1; dx <= 1; ++dx) {
            const auto ny = cy + dy, nx = cx + dx;
            if (ny < 0 || nx < 0 || ny >= h || nx >= w || !in[ny][nx] || lab[ny][nx] != 0) continue;
            lab[ny][nx] = count;
            stack.emplace_back(ny, nx);
          }
      }
    }
  return {labels, count};
}

std::vector<std::vector<DetectedDigit>> read_scenes(const torch::Tensor& images, DigitClassifier& classifier,
                                                    const SceneReaderOptions& options) {
  check_reader_options(options);
  const auto x = scene_stack(images, "read_scenes");
  const auto h = x.size(1), w = x.size(2);
  const auto min_area = scaled_min_area(options, h, w);
  const auto dilation =
      std::llround(static_cast<double>(options.dilation) * static_cast<double>(std::max(h, w)) / 64.0);
  std::vector<std::vector<DetectedDigit>> out(static_cast<size_t>(x.size(0)));
  std::vector<torch::Tensor> crops;
  std::vector<std::pair<size_t, size_t>> where;  // (image, digit) of each crop
  for (int64_t i = 0; i < x.size(0); ++i) {
    const auto image = x[i];
    const auto ink = image > options.threshold;
    const auto [labels, count] = connected_components(dilate(ink, dilation));
    if (count == 0) continue;
    auto lab = labels.accessor<int64_t, 2>();
    auto px = image.accessor<float, 2>();
    auto is_ink = ink.accessor<bool, 2>();
    std::vector<DigitSums> found(static_cast<size_t>(count), DigitSums(h, w));
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx) {
        const auto k = lab[y][xx];
        if (k == 0) continue;
        auto& sums = found[static_cast<size_t>(k - 1)];
        sums.weigh(px[y][xx], xx, y);  // every pixel of the dilated component
        if (is_ink[y][xx]) sums.ink(xx, y);
      }
    for (int64_t k = 0; k < count; ++k) {
      const auto& sums = found[static_cast<size_t>(k)];
      if (sums.area() < min_area) continue;
      const auto d = sums.digit();
      // The crop holds this component's pixels only, so that a neighbour's
      // strokes reaching into the box do not confuse the classifier.
      const auto own = (labels == k + 1).to(torch::kFloat32);
      crops.push_back((image * own).narrow(0, d.y0, d.y1 - d.y0).narrow(1, d.x0, d.x1 - d.x0));
      where.emplace_back(static_cast<size_t>(i), out[static_cast<size_t>(i)].size());
      out[static_cast<size_t>(i)].push_back(d);
    }
  }
  label_crops(crops, where, out, classifier);
  return out;
}

std::vector<std::vector<DetectedDigit>> read_boxes(const torch::Tensor& images,
                                                   const std::vector<std::vector<ScoredBox>>& boxes,
                                                   DigitClassifier& classifier, const SceneReaderOptions& options,
                                                   double min_score) {
  check_reader_options(options);
  const auto x = scene_stack(images, "read_boxes");
  if (boxes.size() != static_cast<size_t>(x.size(0)))
    throw std::invalid_argument(
        fmt::format("read_boxes: {} box lists for {} images; one list per image is needed", boxes.size(), x.size(0)));
  const auto h = x.size(1), w = x.size(2);
  const auto min_area = scaled_min_area(options, h, w);
  std::vector<std::vector<DetectedDigit>> out(boxes.size());
  std::vector<torch::Tensor> crops;
  std::vector<std::pair<size_t, size_t>> where;
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto image = x[static_cast<int64_t>(i)];
    auto px = image.accessor<float, 2>();
    for (const auto& b : boxes[i]) {
      if (!(b.score > min_score)) continue;
      const auto x0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(b.x)), 0, w);
      const auto y0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(b.y)), 0, h);
      const auto x1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(b.x + b.width)), 0, w);
      const auto y1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(b.y + b.height)), 0, h);
      DigitSums sums(h, w);
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t xx = x0; xx < x1; ++xx) {
          const double v = px[y][xx];
          if (v <= options.threshold) continue;  // ink pixels only
          sums.weigh(v, xx, y);
          sums.ink(xx, y);
        }
      if (sums.area() < min_area) continue;  // an object that drew (next to) nothing
      const auto d = sums.digit();
      crops.push_back(image.narrow(0, d.y0, d.y1 - d.y0).narrow(1, d.x0, d.x1 - d.x0));
      where.emplace_back(i, out[i].size());
      out[i].push_back(d);
    }
  }
  label_crops(crops, where, out, classifier);
  return out;
}

rd::SceneCheck check_scene(rd::SceneKind kind, const std::vector<DetectedDigit>& digits, double size,
                           double tolerance, double min_confidence) {
  check_min_confidence(min_confidence);
  std::vector<rd::DigitPlacement> placed;
  placed.reserve(digits.size());
  for (const auto& d : digits) placed.push_back({d.label, d.x, d.y});
  rd::SceneCheck check;
  switch (kind) {
    case rd::SceneKind::mnist4: check = rd::check_mnist4(placed, size, tolerance); break;
    case rd::SceneKind::mnist10: check = rd::check_mnist10(placed, size, tolerance); break;
    case rd::SceneKind::mnist4_10: check = rd::check_mnist4_10(placed, size, tolerance); break;
    default:
      throw std::invalid_argument(fmt::format("check_scene: {} has no structure rules; use mnist-4, mnist-10 or "
                                              "mnist-4-10", rd::to_string(kind)));
  }
  // Legibility comes first: a digit a person would not read fails the scene whatever its structure.
  const auto first = std::find_if(digits.begin(), digits.end(),
                                  [&](const DetectedDigit& d) { return d.confidence < min_confidence; });
  if (first == digits.end()) return check;
  const auto illegible = std::count_if(digits.begin(), digits.end(),
                                       [&](const DetectedDigit& d) { return d.confidence < min_confidence; });
  check.ok = false;
  check.rule = "legibility";
  check.detail = fmt::format("{} of {} digits read with confidence below {}; the first, at ({:.1f}, {:.1f}), "
                             "read as {} with {:.3f}", illegible, digits.size(), min_confidence, first->x, first->y,
                             first->label, first->confidence);
  check.broken.insert(check.broken.begin(), "legibility");
  return check;
}

std::optional<std::array<int64_t, 4>> clockwise_classes(const std::vector<DetectedDigit>& digits, double size) {
  if (digits.size() != 4) return std::nullopt;
  std::array<int64_t, 4> classes{};
  std::array<bool, 4> seen{};
  for (const auto& d : digits) {
    const int q = rd::quadrant_of(d.x, d.y, size);
    if (seen[q]) return std::nullopt;
    seen[q] = true;
    classes[q] = d.label;
  }
  return classes;
}

StructureAccuracy structure_accuracy(const torch::Tensor& images, rd::SceneKind kind, DigitClassifier& classifier,
                                     const SceneReaderOptions& options, double tolerance) {
  return structure_accuracy(read_scenes(images, classifier, options), kind, static_cast<double>(images.size(-1)),
                            tolerance, options.min_confidence);
}

StructureAccuracy structure_accuracy(std::vector<std::vector<DetectedDigit>> digits, rd::SceneKind kind, double size,
                                     double tolerance, double min_confidence) {
  StructureAccuracy out;
  out.digits = std::move(digits);
  int64_t total = 0;
  for (const auto& digits : out.digits) {
    auto check = check_scene(kind, digits, size, tolerance, min_confidence);
    if (check.ok) ++out.passed;
    else ++out.failures[check.rule];
    for (const auto& rule : check.broken) ++out.broken[rule];
    if (kind != rd::SceneKind::mnist10) {
      if (const auto classes = clockwise_classes(digits, size)) {
        out.neighbour_pairs += 3;
        for (size_t q = 1; q < 4; ++q) out.consecutive_pairs += (*classes)[q] == (*classes)[q - 1] + 1 ? 1 : 0;
      }
    }
    total += static_cast<int64_t>(digits.size());
    out.checks.push_back(std::move(check));
  }
  out.n = static_cast<int64_t>(out.digits.size());
  out.accuracy = out.n > 0 ? static_cast<double>(out.passed) / static_cast<double>(out.n) : 0.0;
  out.mean_digits = out.n > 0 ? static_cast<double>(total) / static_cast<double>(out.n) : 0.0;
  return out;
}

// ---------------------------------------------------------------- broken scenes

std::string to_string(SceneBreak how) {
  for (const auto& [value, name] : kBreakNames)
    if (value == how) return name;
  return "?";
}

SceneBreak parse_scene_break(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& [value, spelt] : kBreakNames) {
    if (name == spelt) return value;
    names.emplace_back(spelt);
  }
  throw std::invalid_argument(
      fmt::format("scene break \"{}\" is not one of {}", name, fmt::join(names, ", ")));
}

rd::Scene break_scene(const rd::Scene& scene, SceneBreak how, const rd::Dataset& digits, uint64_t seed) {
  if (scene.objects.empty() || !scene.image.defined() || scene.image.dim() != 2)
    throw std::invalid_argument("break_scene: the scene must have an image [H, W] and at least one object");
  std::mt19937_64 rng(seed);
  rd::Scene out = scene;
  out.image = scene.image.clone();
  const auto size = out.image.size(0);
  auto box = [&](const rd::SceneObject& o) {
    const auto x = std::clamp<int64_t>(std::llround(o.x), 0, size - 1);
    const auto y = std::clamp<int64_t>(std::llround(o.y), 0, size - 1);
    const auto w = std::min<int64_t>(std::llround(o.width), size - x);
    const auto h = std::min<int64_t>(std::llround(o.height), size - y);
    return out.image.narrow(0, y, h).narrow(1, x, w);
  };
  const auto k = static_cast<size_t>(rng() % out.objects.size());
  switch (how) {
    case SceneBreak::swap_quadrants: {
      const auto q = size / 2;
      auto left = out.image.narrow(0, 0, q).narrow(1, 0, q), right = out.image.narrow(0, 0, q).narrow(1, size - q, q);
      const auto saved = left.clone();
      left.copy_(right);
      right.copy_(saved);
      for (auto& o : out.objects) {
        if (o.cy() >= static_cast<double>(q)) continue;
        o.x += o.cx() < static_cast<double>(q) ? static_cast<double>(size - q) : -static_cast<double>(size - q);
      }
      break;
    }
    case SceneBreak::blurred: {
      double side = 0;
      for (const auto& o : out.objects) side += o.width / static_cast<double>(out.objects.size());
      out.image = ppl::runtime::gaussian_blur(out.image.to(torch::kFloat32), kBlurSigma * side).to(scene.image.dtype());
      break;
    }
    case SceneBreak::blob: {
      // Every ink box cleared first, so that no blob is cut by a neighbour's clearing.
      auto image = out.image.to(torch::kFloat32).contiguous();
      std::vector<double> peaks;
      for (const auto& o : out.objects) {
        auto ink = region(image, o.ink());
        peaks.push_back(ink.numel() > 0 ? ink.max().item<double>() : 1.0);
        ink.zero_();
      }
      for (size_t i = 0; i < out.objects.size(); ++i) paint_blob(image, out.objects[i].ink(), peaks[i]);
      out.image = image.to(scene.image.dtype());
      break;
    }
    case SceneBreak::remove_digit:
      box(out.objects[k]).zero_();
      out.objects.erase(out.objects.begin() + static_cast<std::ptrdiff_t>(k));
      break;
    case SceneBreak::wrong_class: {
      auto& o = out.objects[k];
      const auto label = (o.label + 1 + static_cast<int64_t>(rng() % 9)) % 10;
      const auto labels = digits.labels.to(torch::kCPU, torch::kInt64);
      const auto pool = (labels == label).nonzero().flatten();
      if (pool.size(0) == 0)
        throw std::invalid_argument(fmt::format("break_scene: the digits hold no class {} to put in", label));
      const auto item = pool[static_cast<int64_t>(rng() % static_cast<uint64_t>(pool.size(0)))].item<int64_t>();
      auto region = box(o);
      region.zero_();
      auto glyph = rd::resize_images(digits.images[item].to(torch::kCPU, torch::kFloat32), region.size(0),
                                     region.size(1)).clamp(0, 1);
      region.copy_(glyph);
      o.label = label;
      break;
    }
  }
  return out;
}

}  // namespace ppl::programs::gnm
