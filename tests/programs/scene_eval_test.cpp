// The scene-structure evaluations of GNM: connected components, digit
// normalisation, D-Steps on sets of known separability, and the judge (scene
// reader + classifier + structure checker) on real and broken scenes.
#include <chrono>
#include <iostream>
#include <optional>

#include <catch2/catch.hpp>

#include <ppl/programs/gnm/evaluation.hpp>
#include <ppl/runtime/data/registry.hpp>

namespace gnm = ppl::programs::gnm;
namespace rd = ppl::runtime::data;

namespace {

/// The train and test digits of the `mnist` dataset at 28 x 28, or nothing
/// where they are absent (run scripts/setup).
std::optional<std::pair<rd::Dataset, rd::Dataset>> mnist_digits() {
  const auto roots = rd::DataRoots::resolve();
  try {
    auto train = rd::load_dataset("mnist", roots, rd::LoadOptions{}.with_split(rd::Split::train).with_size(0));
    auto test = rd::load_dataset("mnist", roots, rd::LoadOptions{}.with_split(rd::Split::test).with_size(0));
    return std::pair{train, test};
  } catch (const rd::DataError& e) {
    WARN("skipped: the MNIST digits are absent (" << e.what() << ")");
    return std::nullopt;
  }
}

/// The S-Acc classifier from the cache, trained (about a minute on one core)
/// and cached when absent.
gnm::TrainedClassifier classifier(const std::pair<rd::Dataset, rd::Dataset>& digits) {
  static std::optional<gnm::TrainedClassifier> cached;
  if (!cached) cached = gnm::load_digit_classifier(digits.first, digits.second, rd::DataRoots::resolve().cache);
  return *cached;
}

/// Real scenes of `kind` at `size` drawn from the test digits.
std::vector<rd::Scene> real_scenes(const rd::Dataset& digits, rd::SceneKind kind, int64_t size, int64_t n) {
  rd::SceneGenerator gen(digits, rd::SceneOptions{}.with_kind(kind).with_size(size).with_seed(2));
  return gen.scenes(0, n);
}

torch::Tensor stack_images(const std::vector<rd::Scene>& scenes) {
  std::vector<torch::Tensor> images;
  for (const auto& s : scenes) images.push_back(s.image);
  return torch::stack(images).unsqueeze(1);
}

}  // namespace

TEST_CASE("connected components join diagonal neighbours and the reader drops small ones", "[gnm][eval]") {
  auto mask = torch::zeros({8, 8}, torch::kBool);
  mask[1][1] = true;
  mask[2][2] = true;  // diagonal: the same component
  mask[6][6] = true;
  mask[6][7] = true;
  const auto [labels, count] = gnm::connected_components(mask);
  CHECK(count == 2);
  CHECK(labels[1][1].item<int64_t>() == labels[2][2].item<int64_t>());
  CHECK(labels[6][6].item<int64_t>() != labels[1][1].item<int64_t>());
  CHECK(labels[0][0].item<int64_t>() == 0);

  // A 64 x 64 image: one 6 x 6 blob (36 pixels) and a 2-pixel speck.
  auto image = torch::zeros({1, 1, 64, 64});
  image.index_put_({0, 0, torch::indexing::Slice(10, 16), torch::indexing::Slice(20, 26)}, 1.0);
  image.index_put_({0, 0, 40, torch::indexing::Slice(40, 42)}, 1.0);
  gnm::DigitClassifier net;
  const auto read = gnm::read_scenes(image, net);
  REQUIRE(read.size() == 1);
  REQUIRE(read[0].size() == 1);
  CHECK(read[0][0].area == 36);
  CHECK(read[0][0].x == Approx(23.0));
  CHECK(read[0][0].y == Approx(13.0));
  CHECK(read[0][0].x0 == 20);
  CHECK(read[0][0].x1 == 26);
}

TEST_CASE("normalise_digits puts the ink's square box at 20 x 20 in the middle of 28 x 28", "[gnm][eval]") {
  // A 10 tall, 4 wide bar in a 30 x 30 crop: the box is padded to 10 x 10.
  auto crop = torch::zeros({30, 30});
  crop.index_put_({torch::indexing::Slice(3, 13), torch::indexing::Slice(20, 24)}, 0.5);
  const auto x = gnm::normalise_digits(crop);
  REQUIRE(x.sizes() == torch::IntArrayRef({1, 1, 28, 28}));
  CHECK(x.max().item<double>() == Approx(1.0));
  const auto rows = (x[0][0].sum(1) > 0).nonzero().flatten();
  const auto cols = (x[0][0].sum(0) > 0).nonzero().flatten();
  CHECK(rows.min().item<int64_t>() == 4);
  CHECK(rows.max().item<int64_t>() == 23);
  // The bar, 8 wide after scaling (plus a pixel of bilinear blur each side), centred.
  CHECK(cols.min().item<int64_t>() >= 9);
  CHECK(cols.max().item<int64_t>() <= 18);
  CHECK(cols.min().item<int64_t>() + cols.max().item<int64_t>() == 27);
  CHECK(gnm::normalise_digits(torch::zeros({5, 5})).sum().item<double>() == 0);
  CHECK_THROWS_AS(gnm::normalise_digits(torch::zeros({5})), std::invalid_argument);
}

TEST_CASE("D-Steps: separable sets are told apart at once, identical ones reach the cap", "[gnm][eval]") {
  torch::manual_seed(3);
  auto real = torch::rand({60, 1, 16, 16}) * 0.2;
  auto bright = real.clone();
  bright.index_put_({torch::indexing::Slice(), 0, torch::indexing::Slice(4, 12), torch::indexing::Slice(4, 12)}, 1.0);
  const auto easy = gnm::discriminability_steps(real, bright, gnm::DiscriminabilityOptions{}.with_max_steps(300)
                                                                  .with_eval_every(5));
  CHECK(easy.reached);
  CHECK(easy.steps < 300);
  CHECK(easy.accuracy >= 0.9);

  const auto same = gnm::discriminability_steps(real, torch::rand({60, 1, 16, 16}) * 0.2,
                                                gnm::DiscriminabilityOptions{}.with_max_steps(40).with_eval_every(10));
  CHECK_FALSE(same.reached);
  CHECK(same.steps == 40);
  CHECK(same.curve.size() == 4);
  CHECK_THROWS_AS(gnm::discriminability_steps(real.narrow(0, 0, 5), bright), std::invalid_argument);
}

TEST_CASE("S-Acc: real MNIST-4 and MNIST-10 scenes pass, broken ones fail", "[gnm][eval][real]") {
  const auto digits = mnist_digits();
  if (!digits) return;
  const auto start = std::chrono::steady_clock::now();
  const auto judge = classifier(*digits);
  INFO("classifier held-out accuracy " << judge.held_out_accuracy);
  CHECK(judge.held_out_accuracy > 0.97);
  const auto& test = digits->second;
  const std::vector<gnm::SceneBreak> breaks = {gnm::SceneBreak::swap_quadrants, gnm::SceneBreak::wrong_class,
                                               gnm::SceneBreak::remove_digit};
  struct Case {
    rd::SceneKind kind;
    double real_at_least;
  };
  for (const auto& c : {Case{rd::SceneKind::mnist4, 0.85}, Case{rd::SceneKind::mnist10, 0.85}}) {
    const auto scenes = real_scenes(test, c.kind, 64, 90);
    auto net = judge.net;
    const auto real = gnm::structure_accuracy(stack_images(scenes), c.kind, net);
    std::vector<rd::Scene> broken;
    for (size_t i = 0; i < scenes.size(); ++i)
      broken.push_back(gnm::break_scene(scenes[i], breaks[i % breaks.size()], test, i));
    const auto bad = gnm::structure_accuracy(stack_images(broken), c.kind, net);
    INFO(rd::to_string(c.kind) << ": real S-Acc " << real.accuracy << ", broken S-Acc " << bad.accuracy);
    CHECK(real.accuracy >= c.real_at_least);
    CHECK(bad.accuracy < 0.1);
  }
  std::cout << "scene eval: classifier " << (judge.from_cache ? "from cache" : "trained") << ", judge checks took "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
}

