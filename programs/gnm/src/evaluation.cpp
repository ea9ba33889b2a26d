// The scene-structure evaluations of GNM and its baselines: the digit
// classifier, the scene reader, broken scenes and D-Steps.
#include <ppl/programs/gnm/evaluation.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/core/errors.hpp>
#include <ppl/runtime/data/transforms.hpp>

namespace ppl::programs::gnm {
namespace rd = ppl::runtime::data;
namespace nn = torch::nn;
namespace fs = std::filesystem;

namespace {

/// Seeds torch's default CPU generator (weight initialisation) and restores
/// its state on destruction, so an evaluation leaves the caller's stream alone.
class DefaultGeneratorScope {
 public:
  explicit DefaultGeneratorScope(uint64_t seed) : gen_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    state_ = gen_.get_state();
    gen_.set_current_seed(seed);
  }
  ~DefaultGeneratorScope() {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    gen_.set_state(state_);
  }
  DefaultGeneratorScope(const DefaultGeneratorScope&) = delete;
  DefaultGeneratorScope& operator=(const DefaultGeneratorScope&) = delete;

 private:
  at::Generator gen_;
  torch::Tensor state_;
};

/// One crop [h, w] (CPU float, contiguous) normalised to [28, 28].
torch::Tensor normalise_one(const torch::Tensor& crop, double threshold) {
  const auto h = crop.size(0), w = crop.size(1);
  auto a = crop.accessor<float, 2>();
  int64_t x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      if (a[y][x] > threshold) {
        x0 = std::min(x0, x), x1 = std::max(x1, x);
        y0 = std::min(y0, y), y1 = std::max(y1, y);
      }
  auto out = torch::zeros({kDigitInput, kDigitInput});
  if (x1 < 0) return out;
  const auto bh = y1 - y0 + 1, bw = x1 - x0 + 1, side = std::max(bh, bw);
  auto square = torch::zeros({side, side});
  square.narrow(0, (side - bh) / 2, bh).narrow(1, (side - bw) / 2, bw).copy_(crop.narrow(0, y0, bh).narrow(1, x0, bw));
  auto box = rd::resize_images(square, kDigitBox, kDigitBox).clamp(0, 1);
  const auto peak = box.max().item<float>();
  if (peak > 0) box = box / peak;
  const auto margin = (kDigitInput - kDigitBox) / 2;
  out.narrow(0, margin, kDigitBox).narrow(1, margin, kDigitBox).copy_(box);
  return out;
}

void check_digits(const rd::Dataset& d, const char* what) {
  if (!d.images.defined() || d.images.dim() != 3 || d.size() == 0 || !d.labels.defined() ||
      d.labels.size(0) != d.size())
    throw std::invalid_argument(fmt::format("digit classifier: {} digits must be images [N, h, w] (N > 0) with labels "
                                            "[N], but are {}", what, d.name));
}

/// Accuracy of the classifier on normalised digits [N, 1, 28, 28].
double accuracy_on(DigitClassifier& net, const torch::Tensor& x, const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  net->eval();
  int64_t correct = 0;
  for (int64_t i = 0; i < x.size(0); i += 500) {
    const auto n = std::min<int64_t>(500, x.size(0) - i);
    correct += (net->forward(x.narrow(0, i, n)).argmax(1) == labels.narrow(0, i, n)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(x.size(0));
}

/// Small random affine moves of normalised digits [B, 1, 28, 28]: rotation
/// up to 12 degrees, scale 0.9-1.1, shift up to 1.4 pixels.
torch::Tensor jitter(const torch::Tensor& x, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> angle(-0.21, 0.21), scale(0.9, 1.1), shift(-0.1, 0.1);
  std::vector<float> theta;
  theta.reserve(static_cast<size_t>(x.size(0) * 6));
  for (int64_t i = 0; i < x.size(0); ++i) {
    const double a = angle(rng), s = scale(rng);
    const double c = std::cos(a) / s, n = std::sin(a) / s;
    for (double v : {c, -n, shift(rng), n, c, shift(rng)}) theta.push_back(static_cast<float>(v));
  }
  const auto t = torch::tensor(theta).view({x.size(0), 2, 3});
  const auto grid = torch::affine_grid_generator(t, x.sizes(), false);
  return torch::grid_sampler(x, grid, 0, 0, false);
}

torch::Tensor normalised(const rd::Dataset& d) {
  return normalise_digits(d.images.to(torch::kCPU, torch::kFloat32));
}

/// Pixels of one component: its label and bounding box.
struct Component {
  int64_t x0, y0, x1, y1;  // inclusive
};

/// Grows a mask [H, W] (bool) by `pixels` in the 8-neighbourhood.
torch::Tensor dilate(const torch::Tensor& mask, int64_t pixels) {
  if (pixels <= 0) return mask;
  auto m = mask.to(torch::kFloat32).unsqueeze(0).unsqueeze(0);
  const auto k = 2 * pixels + 1;
  return torch::max_pool2d(m, {k, k}, {1, 1}, {pixels, pixels}).squeeze(0).squeeze(0) > 0.5;
}

/// The discriminator of D-Steps (see DiscriminabilityOptions).
nn::Sequential make_discriminator() {
  auto conv = [](int64_t in, int64_t out) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, 4).stride(2).padding(1));
  };
  auto leaky = [] { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)); };
  return nn::Sequential(conv(1, 16), leaky(), conv(16, 32), leaky(), conv(32, 64), leaky(),
                        nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})), nn::Flatten(), nn::Linear(64, 1));
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
  return std::max<int64_t>(1, std::llround(static_cast<double>(options.min_area) * static_cast<double>(h * w) / 4096.0));
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

}  // namespace

// ---------------------------------------------------------------- classifier

torch::Tensor normalise_digits(const torch::Tensor& crops, double threshold) {
  if (!crops.defined() || (crops.dim() != 2 && crops.dim() != 3))
    throw std::invalid_argument(fmt::format("normalise_digits: crops must be [B, h, w] or [h, w], but have {} dimensions",
                                            crops.defined() ? crops.dim() : 0));
  auto c = crops.to(torch::kCPU, torch::kFloat32).contiguous();
  if (c.dim() == 2) c = c.unsqueeze(0);
  auto out = torch::empty({c.size(0), 1, kDigitInput, kDigitInput});
  for (int64_t i = 0; i < c.size(0); ++i) out[i][0].copy_(normalise_one(c[i], threshold));
  return out;
}

DigitClassifierImpl::DigitClassifierImpl() {
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)));
  fc1 = register_module("fc1", nn::Linear(64 * 7 * 7, 128));
  fc2 = register_module("fc2", nn::Linear(128, 10));
}

torch::Tensor DigitClassifierImpl::forward(const torch::Tensor& x) {
  auto h = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
  h = torch::max_pool2d(torch::relu(conv2->forward(h)), 2);
  return fc2->forward(torch::dropout(torch::relu(fc1->forward(h.flatten(1))), 0.3, is_training()));
}

TrainedClassifier train_digit_classifier(const rd::Dataset& train, const rd::Dataset& held_out) {
  check_digits(train, "training");
  check_digits(held_out, "held-out");
  constexpr int64_t kEpochs = 20, kSlowEpochs = 5, kBatch = 64, kMinSide = 10;
  constexpr double kLearningRate = 1e-3, kSlowLearningRate = 3e-4, kKeepFullSize = 0.3;
  const auto start = std::chrono::steady_clock::now();
  DefaultGeneratorScope seed(20200);
  TrainedClassifier out;
  out.net = DigitClassifier();
  out.train_digits = train.size();
  out.held_out_digits = held_out.size();
  const auto images = train.images.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto labels = train.labels.to(torch::kCPU, torch::kInt64);
  const auto side = std::max(images.size(1), images.size(2));
  torch::optim::Adam adam(out.net->parameters(), torch::optim::AdamOptions(kLearningRate));
  std::mt19937_64 rng(7);
  std::vector<int64_t> order(static_cast<size_t>(train.size()));
  for (int64_t epoch = 0; epoch < kEpochs; ++epoch) {
    // Each digit shrunk to a random side, as scenes show digits at 10-28 pixels.
    std::uniform_int_distribution<int64_t> pick_side(kMinSide, std::max(kMinSide, side));
    std::vector<torch::Tensor> shrunk;
    shrunk.reserve(order.size());
    for (int64_t i = 0; i < train.size(); ++i) {
      auto s = pick_side(rng);
      if (std::uniform_real_distribution<double>(0, 1)(rng) < kKeepFullSize) s = side;
      auto small = rd::resize_images(images[i], s, s).clamp(0, 1);
      shrunk.push_back(normalise_digits(small)[0]);
    }
    const auto x = torch::stack(shrunk);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    const auto perm = torch::tensor(order, torch::kInt64);
    if (epoch == kEpochs - kSlowEpochs)
      for (auto& group : adam.param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(kSlowLearningRate);
    out.net->train();
    for (int64_t b = 0; b < train.size(); b += kBatch) {
      const auto idx = perm.narrow(0, b, std::min(kBatch, train.size() - b));
      const auto batch = jitter(x.index_select(0, idx), rng);
      auto loss = torch::cross_entropy_loss(out.net->forward(batch), labels.index_select(0, idx));
      adam.zero_grad();
      loss.backward();
      adam.step();
    }
  }
  out.held_out_accuracy = accuracy_on(out.net, normalised(held_out), held_out.labels.to(torch::kInt64));
  out.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.net->eval();
  return out;
}

fs::path digit_classifier_file(const fs::path& cache, int64_t train, int64_t held_out) {
  return cache / "gnm_eval" / fmt::format("{}-{}-{}.pt", kDigitClassifierVersion, train, held_out);
}

TrainedClassifier load_digit_classifier(const rd::Dataset& train, const rd::Dataset& held_out, const fs::path& cache) {
  check_digits(train, "training");
  check_digits(held_out, "held-out");
  if (cache.empty()) return train_digit_classifier(train, held_out);
  const auto file = digit_classifier_file(cache, train.size(), held_out.size());
  std::error_code ec;
  if (fs::exists(file, ec)) {
    TrainedClassifier out;
    out.net = DigitClassifier();
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(file.string());
      out.net->load(archive);
      out.net->eval();
      out.from_cache = true;
      out.cache_file = file;
      out.train_digits = train.size();
      out.held_out_digits = held_out.size();
      out.held_out_accuracy = accuracy_on(out.net, normalised(held_out), held_out.labels.to(torch::kInt64));
      return out;
    } catch (const c10::Error&) {
      // A damaged cache entry is trained again and replaced below.
    }
  }
  auto out = train_digit_classifier(train, held_out);
  write_atomic(file, [&](std::ostream& os) {
    torch::serialize::OutputArchive archive;
    out.net->save(archive);
    archive.save_to(os);
  });
  out.cache_file = file;
  return out;
}

// ---------------------------------------------------------------- scene reader

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
  const auto x = scene_stack(images, "read_scenes");
  const auto h = x.size(1), w = x.size(2);
  const auto min_area = scaled_min_area(options, h, w);
  const auto dilation = std::llround(static_cast<double>(options.dilation) * static_cast<double>(std::max(h, w)) / 64.0);
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
                           double tolerance) {
  std::vector<rd::DigitPlacement> placed;
  placed.reserve(digits.size());
  for (const auto& d : digits) placed.push_back({d.label, d.x, d.y});
  switch (kind) {
    case rd::SceneKind::mnist4: return rd::check_mnist4(placed, size, tolerance);
    case rd::SceneKind::mnist10: return rd::check_mnist10(placed, size, tolerance);
    case rd::SceneKind::mnist4_10: return rd::check_mnist4_10(placed, size, tolerance);
    default:
      throw std::invalid_argument(fmt::format("check_scene: {} has no structure rules; use mnist-4, mnist-10 or "
                                              "mnist-4-10", rd::to_string(kind)));
  }
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
                            tolerance);
}

StructureAccuracy structure_accuracy(std::vector<std::vector<DetectedDigit>> digits, rd::SceneKind kind, double size,
                                     double tolerance) {
  StructureAccuracy out;
  out.digits = std::move(digits);
  int64_t total = 0;
  for (const auto& digits : out.digits) {
    auto check = check_scene(kind, digits, size, tolerance);
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
  switch (how) {
    case SceneBreak::swap_quadrants: return "swap-quadrants";
    case SceneBreak::wrong_class: return "wrong-class";
    case SceneBreak::remove_digit: return "remove-digit";
  }
  return "?";
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
    const auto w = std::min<int64_t>(std::llround(o.width), size - x), h = std::min<int64_t>(std::llround(o.height), size - y);
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

// ---------------------------------------------------------------- D-Steps

Discriminability discriminability_steps(const torch::Tensor& real, const torch::Tensor& generated,
                                        const DiscriminabilityOptions& options,
                                        const std::function<void(int64_t, double)>& progress) {
  constexpr int64_t kHalfBatch = 16;
  constexpr double kLearningRate = 1e-4;
  if (!real.defined() || !generated.defined() || real.dim() != 4 || generated.dim() != 4 ||
      real.sizes().slice(1) != generated.sizes().slice(1) || real.size(1) != 1)
    throw std::invalid_argument("discriminability_steps: real and generated images must both be [N, 1, H, W] of one size");
  if (real.size(0) < 10 || generated.size(0) < 10)
    throw std::invalid_argument(fmt::format("discriminability_steps: {} real and {} generated images, but each set "
                                            "needs at least 10", real.size(0), generated.size(0)));
  if (options.max_steps < 1 || options.eval_every < 1 || !(options.held_out_fraction > 0 && options.held_out_fraction < 1))
    throw std::invalid_argument("discriminability_steps: max_steps and eval_every must be positive and "
                                "held_out_fraction in (0, 1)");
  DefaultGeneratorScope seed(options.seed + 1);
  auto split = [&](const torch::Tensor& x) {
    const auto held = std::max<int64_t>(1, std::llround(options.held_out_fraction * static_cast<double>(x.size(0))));
    auto c = x.to(torch::kCPU, torch::kFloat32).clamp(0, 1);
    return std::pair{c.narrow(0, 0, x.size(0) - held), c.narrow(0, x.size(0) - held, held)};
  };
  const auto real_sets = split(real), gen_sets = split(generated);
  const auto &real_train = real_sets.first, &real_test = real_sets.second;
  const auto &gen_train = gen_sets.first, &gen_test = gen_sets.second;
  auto net = make_discriminator();
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(kLearningRate));
  std::mt19937_64 rng(options.seed);
  auto draw = [&](const torch::Tensor& x) {
    std::uniform_int_distribution<int64_t> pick(0, x.size(0) - 1);
    std::vector<int64_t> idx(kHalfBatch);
    for (auto& i : idx) i = pick(rng);
    return x.index_select(0, torch::tensor(idx, torch::kInt64));
  };
  // Balanced held-out accuracy: the mean of the two per-set accuracies.
  auto accuracy = [&] {
    torch::NoGradGuard no_grad;
    const double on_real = (net->forward(real_test).squeeze(1) > 0).to(torch::kDouble).mean().item<double>();
    const double on_gen = (net->forward(gen_test).squeeze(1) <= 0).to(torch::kDouble).mean().item<double>();
    return (on_real + on_gen) / 2;
  };
  const auto targets = torch::cat({torch::ones({kHalfBatch}), torch::zeros({kHalfBatch})});
  Discriminability out;
  out.steps = options.max_steps;
  for (int64_t step = 1; step <= options.max_steps; ++step) {
    auto logits = net->forward(torch::cat({draw(real_train), draw(gen_train)})).squeeze(1);
    auto loss = torch::binary_cross_entropy_with_logits(logits, targets);
    adam.zero_grad();
    loss.backward();
    adam.step();
    if (step % options.eval_every != 0 && step != options.max_steps) continue;
    const double acc = accuracy();
    out.curve.emplace_back(step, acc);
    out.accuracy = acc;
    if (progress) progress(step, acc);
    if (acc >= options.target) {
      out.steps = step;
      out.reached = true;
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Boxes and average precision

double box_iou(const ScoredBox& a, const ScoredBox& b) {
  const double w = std::min(a.x + a.width, b.x + b.width) - std::max(a.x, b.x);
  const double h = std::min(a.y + a.height, b.y + b.height) - std::max(a.y, b.y);
  const double inter = std::max(w, 0.0) * std::max(h, 0.0);
  const double uni = a.width * a.height + b.width * b.height - inter;
  return uni > 0 ? inter / uni : 0.0;
}

double average_precision(const std::vector<std::vector<ScoredBox>>& detections,
                         const std::vector<std::vector<ScoredBox>>& truth, double iou) {
  if (detections.size() != truth.size())
    throw std::invalid_argument(fmt::format("average_precision: {} images of detections but {} of ground truth",
                                            detections.size(), truth.size()));
  if (!(iou > 0 && iou <= 1))
    throw std::invalid_argument(fmt::format("average_precision: iou is {}, but must be in (0, 1]", iou));
  struct Ranked {
    double score;
    size_t image, index;
  };
  std::vector<Ranked> ranked;
  size_t positives = 0;
  for (size_t i = 0; i < detections.size(); ++i) {
    positives += truth[i].size();
    for (size_t k = 0; k < detections[i].size(); ++k) ranked.push_back({detections[i][k].score, i, k});
  }
  if (positives == 0) return 0.0;
  // Stable: equal scores keep the order of images and cells.
  std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) { return a.score > b.score; });
  std::vector<std::vector<bool>> used(truth.size());
  for (size_t i = 0; i < truth.size(); ++i) used[i].assign(truth[i].size(), false);
  std::vector<double> precision, recall;
  size_t tp = 0, fp = 0;
  for (const auto& r : ranked) {
    const auto& det = detections[r.image][r.index];
    double best = 0;
    size_t match = truth[r.image].size();
    for (size_t t = 0; t < truth[r.image].size(); ++t) {
      if (used[r.image][t]) continue;
      const double v = box_iou(det, truth[r.image][t]);
      if (v > best) best = v, match = t;
    }
    if (match < truth[r.image].size() && best >= iou) {
      used[r.image][match] = true;
      ++tp;
    } else {
      ++fp;
    }
    precision.push_back(static_cast<double>(tp) / static_cast<double>(tp + fp));
    recall.push_back(static_cast<double>(tp) / static_cast<double>(positives));
  }
  // Monotone precision envelope, then the area under the step curve.
  for (size_t k = precision.size(); k-- > 1;) precision[k - 1] = std::max(precision[k - 1], precision[k]);
  double ap = 0, last_recall = 0;
  for (size_t k = 0; k < precision.size(); ++k) {
    ap += (recall[k] - last_recall) * precision[k];
    last_recall = recall[k];
  }
  return ap;
}

double average_precision_coco(const std::vector<std::vector<ScoredBox>>& detections,
                              const std::vector<std::vector<ScoredBox>>& truth) {
  double sum = 0;
  for (int k = 0; k < 10; ++k) sum += average_precision(detections, truth, 0.5 + 0.05 * k);
  return sum / 10;
}

namespace {
/// A ground-truth box as a ScoredBox of score 1.
ScoredBox scored(const runtime::data::PixelBox& b) { return {b.x, b.y, b.width, b.height, 1.0}; }

}  // namespace

GnmObjects gnm_objects(Gnm& program, const torch::Tensor& x) { return program.infer_objects(x); }

std::vector<std::vector<ScoredBox>> latent_boxes(const Gnm& program, const StructureLatents& z) {
  const auto& o = program.gnm_options();
  const int64_t n = int64_t{o.num_cells} * o.num_cells;
  if (!z.z_where.defined() || !z.z_pres.defined() || z.z_where.dim() != 3 || z.z_where.size(1) != n ||
      z.z_where.size(2) != 4 || z.z_pres.sizes() != z.z_where.sizes().slice(0, 2))
    throw std::invalid_argument(fmt::format("latent_boxes: z_where must be [B, {}, 4] and z_pres [B, {}]", n, n));
  const auto all = structure_boxes(z.z_where, z.z_pres, o.num_cells, o.image_size, program.box_form());
  std::vector<std::vector<ScoredBox>> out;
  for (const auto& image : all) {
    out.emplace_back();
    for (const auto& b : image)
      if (b.score > 0.5) out.back().push_back(b);
  }
  return out;
}

std::vector<std::vector<ScoredBox>> gnm_boxes(Gnm& program, const torch::Tensor& x) {
  return gnm_objects(program, x).boxes;
}

WhatFeatures gnm_what_features(const GnmObjects& objects, const std::vector<runtime::data::Scene>& scenes,
                               double iou) {
  const auto& boxes = objects.boxes;
  const auto& what = objects.what;
  if (boxes.size() != scenes.size())
    throw std::invalid_argument(
        fmt::format("gnm_what_features: {} images but {} scenes", boxes.size(), scenes.size()));
  std::vector<torch::Tensor> rows;
  std::vector<int64_t> labels;
  WhatFeatures out;
  for (size_t i = 0; i < scenes.size(); ++i)
    for (const auto& obj : scenes[i].objects) {
      ++out.objects;
      const auto tight = scored(obj.ink()), frame = scored(obj.frame());
      double best = 0;
      int64_t cell = -1;
      for (size_t k = 0; k < boxes[i].size(); ++k) {
        if (boxes[i][k].score <= 0.5) continue;
        const double v = std::max(box_iou(boxes[i][k], tight), box_iou(boxes[i][k], frame));
        if (v > best) best = v, cell = static_cast<int64_t>(k);
      }
      if (cell < 0 || best < iou) continue;
      rows.push_back(what[static_cast<int64_t>(i)][cell]);
      labels.push_back(obj.label);
    }
  out.features = rows.empty() ? torch::zeros({0, what.size(2)}) : torch::stack(rows);
  out.labels = torch::tensor(labels, torch::kLong);
  return out;
}

double what_classification_accuracy(const torch::Tensor& features, const torch::Tensor& labels) {
  if (features.dim() != 2 || labels.dim() != 1 || features.size(0) != labels.size(0))
    throw std::invalid_argument(fmt::format("what_classification_accuracy: features [{}] and labels [{}] must be "
                                            "[M, D] and [M]", fmt::join(features.sizes(), ", "),
                                            fmt::join(labels.sizes(), ", ")));
  const int64_t m = features.size(0);
  if (m < 4)
    throw std::invalid_argument(fmt::format("what_classification_accuracy: {} rows, but at least 4 are needed", m));
  const auto x = features.to(torch::kFloat32), y = labels.to(torch::kLong);
  // Standardised with the training half's statistics.
  const int64_t half = m / 2;
  const auto mean = x.narrow(0, 0, half).mean(0), sd = x.narrow(0, 0, half).std(0).clamp_min(1e-6);
  const auto z = (x - mean) / sd;
  DefaultGeneratorScope seed(0);  // the MLP's initialisation
  torch::nn::Sequential mlp(torch::nn::Linear(x.size(1), 64), torch::nn::ReLU(), torch::nn::Linear(64, 10));
  torch::optim::Adam opt(mlp->parameters(), torch::optim::AdamOptions(1e-2));
  const auto train_x = z.narrow(0, 0, half), train_y = y.narrow(0, 0, half);
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(mlp->forward(train_x), train_y);
    loss.backward();
    opt.step();
  }
  torch::NoGradGuard no_grad;
  const auto predicted = mlp->forward(z.narrow(0, half, m - half)).argmax(1);
  return (predicted == y.narrow(0, half, m - half)).to(torch::kDouble).mean().item<double>();
}

std::vector<std::vector<ScoredBox>> scene_boxes(const std::vector<runtime::data::Scene>& scenes, SceneBox which) {
  std::vector<std::vector<ScoredBox>> out;
  for (const auto& s : scenes) {
    out.emplace_back();
    for (const auto& o : s.objects) out.back().push_back(scored(which == SceneBox::ink ? o.ink() : o.frame()));
  }
  return out;
}

}  // namespace ppl::programs::gnm
