// The digit classifier of S-Acc: normalisation, network, training, cache.
#include <ppl/programs/gnm/digit_classifier.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/core/errors.hpp>
#include <ppl/runtime/data/transforms.hpp>

#include "generator_scope.hpp"

namespace ppl::programs::gnm {
namespace rd = ppl::runtime::data;
namespace nn = torch::nn;
namespace fs = std::filesystem;

namespace {

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

}  // namespace

torch::Tensor normalise_digits(const torch::Tensor& crops, double threshold) {
  if (!crops.defined() || (crops.dim() != 2 && crops.dim() != 3))
    throw std::invalid_argument(fmt::format("normalise_digits: crops must be [B, h, w] or [h, w], but have {} "
                                            "dimensions",
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

}  // namespace ppl::programs::gnm
