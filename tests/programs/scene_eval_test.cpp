// The scene-structure evaluations of GNM: connected components, digit
// normalisation, D-Steps on sets of known separability, and the judge (scene
// reader + classifier + legibility and structure rules) on real, broken,
// blurred and blob scenes.
#include <chrono>
#include <iostream>
#include <optional>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <ppl/programs/gnm/evaluation.hpp>
#include <ppl/runtime/data/registry.hpp>

#include "small_gnm.hpp"

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

/// The digit read from the 6 x 6 blob at rows 10-15, columns 20-25.
void check_blob(const gnm::DetectedDigit& d) {
  CHECK(d.area == 36);
  CHECK(d.x == Approx(23.0));
  CHECK(d.y == Approx(13.0));
  CHECK(d.x0 == 20);
  CHECK(d.x1 == 26);
  CHECK(d.y0 == 10);
  CHECK(d.y1 == 16);
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
  check_blob(read[0][0]);
}

TEST_CASE("read_boxes reads the ink inside each present box and drops empty or absent ones", "[gnm][eval]") {
  // A 64 x 64 image with two blobs: 6 x 6 at rows 10-15, columns 20-25, and 4 x 4 at rows and columns 40-43.
  auto image = torch::zeros({1, 1, 64, 64});
  image.index_put_({0, 0, torch::indexing::Slice(10, 16), torch::indexing::Slice(20, 26)}, 1.0);
  image.index_put_({0, 0, torch::indexing::Slice(40, 44), torch::indexing::Slice(40, 44)}, 1.0);
  gnm::DigitClassifier net;
  const std::vector<std::vector<gnm::ScoredBox>> boxes = {{
      {16.5, 6.5, 14, 14, 0.9},   // holds the 6 x 6 blob
      {50, 50, 10, 10, 0.9},      // empty canvas: dropped
      {38, 38, 8, 8, 0.4},        // over the second blob, but absent (score 0.4)
      {60, 60, 20, 20, 0.9},      // reaches past the canvas: clipped, empty, dropped
  }};
  const auto read = gnm::read_boxes(image, boxes, net);
  REQUIRE(read.size() == 1);
  REQUIRE(read[0].size() == 1);
  check_blob(read[0][0]);
  // A lower score threshold takes the second blob too.
  CHECK(gnm::read_boxes(image, boxes, net, {}, 0.3)[0].size() == 2);
  // One box list per image.
  CHECK_THROWS_WITH(gnm::read_boxes(image, {{}, {}}, net), Catch::Contains("2 box lists for 1 images"));
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
    // Illegible digits where the real ones were: every digit blurred, or a blob of ink in its box. The
    // classifier misreads most of them, so the structure rules fail them; the default cut-off fails some
    // under "legibility" on its own.
    for (const auto how : {gnm::SceneBreak::blurred, gnm::SceneBreak::blob}) {
      std::vector<rd::Scene> smudged;
      for (size_t i = 0; i < scenes.size(); ++i) smudged.push_back(gnm::break_scene(scenes[i], how, test, i));
      const auto smudge = gnm::structure_accuracy(stack_images(smudged), c.kind, net);
      INFO(gnm::to_string(how) << " S-Acc " << smudge.accuracy);
      CHECK(smudge.accuracy < 0.05);
      CHECK(smudge.broken.at("legibility") > smudge.n / 10);
      // The objects stay where they were.
      CHECK(smudged[0].objects.size() == scenes[0].objects.size());
    }
    // Consecutive clockwise pairs: nearly all of real MNIST-4's, none counted for MNIST-10.
    if (c.kind == rd::SceneKind::mnist4) {
      REQUIRE(real.neighbour_pairs > 0);
      CHECK(static_cast<double>(real.consecutive_pairs) / static_cast<double>(real.neighbour_pairs) > 0.9);
    } else {
      CHECK(real.neighbour_pairs == 0);
    }
    // Every scene counted under its first broken rule is also counted under that rule in `broken`.
    for (const auto& [rule, count] : bad.failures) CHECK(bad.broken.at(rule) >= count);
    // The second reader, at the generator's own boxes (as GNM's samples come with theirs), passes them too.
    const auto own = gnm::structure_accuracy(gnm::read_boxes(stack_images(scenes), gnm::scene_boxes(scenes), net),
                                             c.kind, 64.0);
    INFO(rd::to_string(c.kind) << ": S-Acc read at the generator's ink boxes " << own.accuracy);
    CHECK(own.accuracy >= c.real_at_least);
  }
  std::cout << "scene eval: classifier " << (judge.from_cache ? "from cache" : "trained") << ", judge checks took "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
}


TEST_CASE("clockwise_classes reads one class per quadrant, clockwise from top-left", "[gnm][eval]") {
  auto digit = [](int64_t label, double x, double y) {
    gnm::DetectedDigit d;
    d.label = label;
    d.x = x;
    d.y = y;
    return d;
  };
  // Given in scrambled order: bottom-left 7, top-right 3, top-left 2, bottom-right 9.
  const auto classes = gnm::clockwise_classes({digit(7, 10, 50), digit(3, 40, 12), digit(2, 12, 10), digit(9, 50, 40)}, 64);
  REQUIRE(classes.has_value());
  CHECK(*classes == std::array<int64_t, 4>{2, 3, 9, 7});
  // A centre on the midline belongs to the right / bottom half.
  const auto edge = gnm::clockwise_classes({digit(1, 32, 10), digit(0, 10, 10), digit(2, 40, 32), digit(3, 10, 40)}, 64);
  REQUIRE(edge.has_value());
  CHECK(*edge == std::array<int64_t, 4>{0, 1, 2, 3});
  // Two digits in one quadrant, or not four digits: no reading.
  CHECK_FALSE(gnm::clockwise_classes({digit(0, 10, 10), digit(1, 20, 20), digit(2, 50, 50), digit(3, 10, 50)}, 64));
  CHECK_FALSE(gnm::clockwise_classes({digit(0, 10, 10), digit(1, 50, 10), digit(2, 50, 50)}, 64));
}

TEST_CASE("box IoU and average precision agree with hand-computed values", "[gnm][eval]") {
  const gnm::ScoredBox a{0, 0, 2, 2}, b{1, 1, 2, 2}, far{5, 5, 1, 1};
  CHECK(gnm::box_iou(a, b) == Approx(1.0 / 7.0));
  CHECK(gnm::box_iou(a, far) == 0.0);
  CHECK(gnm::box_iou(a, a) == Approx(1.0));

  // One image, two objects; detections: a hit (0.9), a miss (0.8), a hit (0.7).
  // Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; monotone envelope 1, 2/3, 2/3;
  // AP = 1/2 * 1 + 1/2 * 2/3.
  const std::vector<std::vector<gnm::ScoredBox>> truth = {{{0, 0, 10, 10}, {20, 20, 10, 10}}};
  const std::vector<std::vector<gnm::ScoredBox>> dets = {
      {{0, 0, 10, 10, 0.9}, {50, 50, 10, 10, 0.8}, {20, 20, 10, 10, 0.7}}};
  CHECK(gnm::average_precision(dets, truth, 0.5) == Approx(0.5 + 0.5 * 2.0 / 3.0));
  // The same hit twice: the second is a false positive, recall still reaches 1 first.
  const std::vector<std::vector<gnm::ScoredBox>> twice = {{{0, 0, 10, 10, 0.9}, {0, 0, 10, 10, 0.8}}};
  CHECK(gnm::average_precision(twice, {{{0, 0, 10, 10}}}, 0.5) == Approx(1.0));
  // A box shifted by 2.3 pixels has IoU 7.7 / 12.3 = 0.626: a hit at 0.5, 0.55
  // and 0.6 of COCO's ten thresholds.
  const std::vector<std::vector<gnm::ScoredBox>> shifted = {{{2.3, 0, 10, 10, 0.9}}};
  CHECK(gnm::average_precision(shifted, {{{0, 0, 10, 10}}}, 0.5) == Approx(1.0));
  CHECK(gnm::average_precision(shifted, {{{0, 0, 10, 10}}}, 0.65) == 0.0);
  CHECK(gnm::average_precision_coco(shifted, {{{0, 0, 10, 10}}}) == Approx(0.3));
  // Objects in a second image that nothing detects halve the recall.
  CHECK(gnm::average_precision({{{0, 0, 10, 10, 0.9}}, {}}, {{{0, 0, 10, 10}}, {{0, 0, 5, 5}}}, 0.5) == Approx(0.5));
  CHECK_THROWS_WITH(gnm::average_precision(dets, {}, 0.5), Catch::Contains("1 images of detections but 0"));
  CHECK_THROWS_WITH(gnm::average_precision(dets, truth, 0.0), Catch::Contains("iou is 0"));
}

TEST_CASE("gnm_boxes gives every cell a box near its cell, scored by q(z_pres)", "[gnm][eval]") {
  ppl::param_store().clear();
  gnm::Gnm program(ppl::test::small_gnm());
  auto x = torch::rand({3, 1, 16, 16});
  const auto boxes = gnm::gnm_boxes(program, x);
  REQUIRE(boxes.size() == 3);
  const auto p = program.structure_params(program.nets()->encoder->forward(x));
  const auto prob = torch::sigmoid(p.pres_logits);
  for (size_t i = 0; i < 3; ++i) {
    REQUIRE(boxes[i].size() == 16);
    for (size_t k = 0; k < 16; ++k) {
      const auto& b = boxes[i][k];
      CHECK(b.score == Approx(prob[static_cast<int64_t>(i)][static_cast<int64_t>(k)].item<double>()));
      // Cell (row, col) = (k / 4, k % 4) has its centre at 4 col + 2, 4 row + 2 pixels;
      // the box centre moves at most one cell (4 pixels) away.
      const double cx = 4.0 * static_cast<double>(k % 4) + 2, cy = 4.0 * static_cast<double>(k / 4) + 2;
      CHECK(std::abs(b.x + b.width / 2 - cx) <= 4.0 + 1e-9);
      CHECK(std::abs(b.y + b.height / 2 - cy) <= 4.0 + 1e-9);
      CHECK(b.width > 0);
      CHECK(b.width <= 16.0);
    }
  }
  CHECK_THROWS_WITH(gnm::gnm_boxes(program, torch::rand({1, 1, 8, 8})), Catch::Contains("must be [B, 1, 16, 16]"));

  // z_what features: an object whose box is exactly a present cell's box is
  // matched to that cell; one far outside every box is not. The head's last
  // bias on channel 0 (the z_pres logit) turns every cell on.
  {
    torch::NoGradGuard no_grad;
    auto params = program.nets()->head->parameters();
    params.back()[0].fill_(5.0);
  }
  const auto on = gnm::gnm_boxes(program, x.narrow(0, 0, 1));
  const auto& cell = on[0][5];
  REQUIRE(cell.score > 0.5);
  const auto p_on = program.structure_params(program.nets()->encoder->forward(x.narrow(0, 0, 1)));
  ppl::runtime::data::Scene scene;
  scene.objects.push_back({7, cell.x, cell.y, cell.width, cell.height, {}});
  scene.objects.push_back({2, 100, 100, 4, 4, {}});
  // Matching reads the ink box: a glyph square far larger than the cell's box
  // whose ink is exactly that box is matched.
  ppl::runtime::data::SceneObject padded{4, cell.x - 20, cell.y - 20, cell.width + 40, cell.height + 40, {}};
  padded.ink_box = {cell.x, cell.y, cell.width, cell.height};
  scene.objects.push_back(padded);
  const auto what = gnm::gnm_what_features(gnm::gnm_objects(program, x.narrow(0, 0, 1)), {scene});
  CHECK(what.objects == 3);
  REQUIRE(what.features.size(0) == 2);
  CHECK(what.labels[0].item<int64_t>() == 7);
  CHECK(what.labels[1].item<int64_t>() == 4);
  CHECK(torch::allclose(what.features[0], p_on.what_loc[0][5].detach()));
  CHECK(torch::allclose(what.features[1], p_on.what_loc[0][5].detach()));
  const auto truth = gnm::scene_boxes({scene});
  REQUIRE(truth[0].size() == 3);
  CHECK(truth[0][2].x == cell.x);
  CHECK(truth[0][2].width == cell.width);
  const auto frames = gnm::scene_boxes({scene}, gnm::SceneBox::frame);
  CHECK(frames[0][2].x == cell.x - 20);
  CHECK(frames[0][2].width == cell.width + 40);
  // A frame that is exactly the cell's box matches too, whatever its ink box.
  ppl::runtime::data::Scene framed;
  framed.objects.push_back({5, cell.x, cell.y, cell.width, cell.height, {}});
  framed.objects.back().ink_box = {cell.x + 1, cell.y + 1, 1, 1};
  const auto by_frame = gnm::gnm_what_features(gnm::gnm_objects(program, x.narrow(0, 0, 1)), {framed});
  REQUIRE(by_frame.features.size(0) == 1);
  CHECK(by_frame.labels[0].item<int64_t>() == 5);
  CHECK_THROWS_WITH(gnm::gnm_what_features(gnm::gnm_objects(program, x), {scene}), Catch::Contains("3 images but 1 scenes"));
}

TEST_CASE("latent_boxes draws the present objects of structure latents where render places them", "[gnm][eval]") {
  ppl::param_store().clear();
  gnm::Gnm program(ppl::test::small_gnm());
  // Two images; z_where 0 everywhere: side sigmoid(0) = 1/2 of 16 pixels, at the cell's centre.
  gnm::StructureLatents z;
  z.z_where = torch::zeros({2, 16, 4});
  z.z_pres = torch::zeros({2, 16});
  z.z_pres[0][5] = 1.0;   // row 1, column 1: centre (6, 6)
  z.z_pres[0][14] = 1.0;  // row 3, column 2: centre (10, 14)
  const auto boxes = gnm::latent_boxes(program, z);
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[1].empty());
  REQUIRE(boxes[0].size() == 2);
  CHECK(boxes[0][0].x == Approx(6 - 4));
  CHECK(boxes[0][0].y == Approx(6 - 4));
  CHECK(boxes[0][0].width == Approx(8));
  CHECK(boxes[0][1].x == Approx(10 - 4));
  CHECK(boxes[0][1].y == Approx(14 - 4));
  // The object rendered from a white glyph fills that box and nothing else.
  z.z_what = torch::zeros({2, 16, 4});
  z.z_depth = torch::zeros({2, 16, 1});
  const auto image = program.render(z)[0][0];
  CHECK(image.narrow(0, 3, 6).narrow(1, 3, 6).mean().item<double>() > image.narrow(0, 10, 6).narrow(1, 0, 2).mean().item<double>());
  CHECK_THROWS_WITH(gnm::latent_boxes(program, {torch::zeros({2, 16}), torch::zeros({2, 15, 4}), {}, {}, {}}),
                    Catch::Contains("z_where must be [B, 16, 4]"));
  // Samples and their structure agree: the boxes are those of the rendered latents.
  auto [images, latents] = program.sample_structured(3);
  CHECK(images.sizes() == c10::IntArrayRef({3, 1, 16, 16}));
  CHECK(gnm::latent_boxes(program, latents).size() == 3);
}

TEST_CASE("z_what accuracy: separable features are classified, noise is not", "[gnm][eval]") {
  torch::manual_seed(3);
  auto labels = torch::randint(0, 10, {400}, torch::kLong);
  auto separable = torch::one_hot(labels, 10).to(torch::kFloat32) * 3 + 0.3 * torch::randn({400, 10});
  CHECK(gnm::what_classification_accuracy(separable, labels) > 0.95);
  auto noise = torch::randn({400, 10});
  CHECK(gnm::what_classification_accuracy(noise, labels) < 0.3);
  CHECK_THROWS_WITH(gnm::what_classification_accuracy(noise.narrow(0, 0, 3), labels.narrow(0, 0, 3)),
                    Catch::Contains("at least 4"));
  CHECK_THROWS_WITH(gnm::what_classification_accuracy(noise, labels.narrow(0, 0, 5)), Catch::Contains("[M, D] and [M]"));
}

TEST_CASE("a digit read below the confidence cut-off fails its scene under \"legibility\"", "[gnm][eval]") {
  // A well-formed MNIST-4 scene on a 64 x 64 canvas: 2, 3, 4, 5 clockwise from top-left, at the quadrant centres.
  auto digit = [](int64_t label, double x, double y, double confidence) {
    gnm::DetectedDigit d;
    d.label = label;
    d.x = x;
    d.y = y;
    d.confidence = confidence;
    return d;
  };
  std::vector<gnm::DetectedDigit> scene = {digit(2, 16, 16, 0.99), digit(3, 48, 16, 0.99), digit(4, 48, 48, 0.99),
                                           digit(5, 16, 48, 0.99)};
  const auto ok = gnm::check_scene(rd::SceneKind::mnist4, scene, 64);
  CHECK(ok.ok);
  CHECK(ok.broken.empty());
  scene[2].confidence = gnm::kMinConfidence / 2;
  const auto smudge = gnm::check_scene(rd::SceneKind::mnist4, scene, 64);
  CHECK_FALSE(smudge.ok);
  CHECK(smudge.rule == "legibility");
  CHECK(smudge.broken == std::vector<std::string>{"legibility"});
  CHECK_THAT(smudge.detail, Catch::Contains("1 of 4 digits") && Catch::Contains("(48.0, 48.0)"));
  // Without a cut-off the structure alone decides; at exactly the cut-off a digit is legible.
  CHECK(gnm::check_scene(rd::SceneKind::mnist4, scene, 64, -1, 0.0).ok);
  CHECK(gnm::check_scene(rd::SceneKind::mnist4, scene, 64, -1, scene[2].confidence).ok);
  // Legibility comes first; the structure rules broken are listed after it.
  scene[1].label = 7;
  const auto both = gnm::check_scene(rd::SceneKind::mnist4, scene, 64);
  CHECK(both.rule == "legibility");
  CHECK(both.broken == std::vector<std::string>{"legibility", "class"});
  const auto s = gnm::structure_accuracy({scene, scene}, rd::SceneKind::mnist4, 64.0);
  CHECK(s.passed == 0);
  CHECK(s.failures.at("legibility") == 2);
  CHECK(s.broken.at("class") == 2);
  CHECK_THROWS_WITH(gnm::check_scene(rd::SceneKind::mnist4, scene, 64, -1, 1.5),
                    Catch::Contains("min_confidence is 1.5"));
}

TEST_CASE("the reader's options round-trip through JSON and bad values are refused by name", "[gnm][eval]") {
  const auto options = gnm::SceneReaderOptions{}.with_threshold(0.4).with_dilation(2).with_min_area(9)
                           .with_min_confidence(0.75);
  const nlohmann::json j = options;
  CHECK(j.at("min_confidence") == 0.75);
  const auto back = j.get<gnm::SceneReaderOptions>();
  CHECK(back.threshold == 0.4);
  CHECK(back.dilation == 2);
  CHECK(back.min_area == 9);
  CHECK(back.min_confidence == 0.75);
  // Keys absent keep their defaults, the cut-off among them.
  CHECK(nlohmann::json::object().get<gnm::SceneReaderOptions>().min_confidence == gnm::kMinConfidence);
  CHECK_THROWS_WITH((nlohmann::json{{"min_confidence", 1.5}}.get<gnm::SceneReaderOptions>()),
                    Catch::Contains("min_confidence is 1.5, but must be in [0, 1]"));
  CHECK_THROWS_WITH((nlohmann::json{{"min_confidence", -0.1}}.get<gnm::SceneReaderOptions>()),
                    Catch::Contains("min_confidence is -0.1"));
  CHECK_THROWS_WITH((nlohmann::json{{"threshold", 0}}.get<gnm::SceneReaderOptions>()),
                    Catch::Contains("threshold is 0"));
  CHECK_THROWS_WITH((nlohmann::json{{"min_confidenc", 0.5}}.get<gnm::SceneReaderOptions>()),
                    Catch::Contains("min_confidenc"));
  gnm::DigitClassifier net;
  CHECK_THROWS_WITH(gnm::read_scenes(torch::zeros({1, 1, 16, 16}), net,
                                     gnm::SceneReaderOptions{}.with_min_confidence(2)),
                    Catch::Contains("min_confidence is 2"));
  // The kinds of bad scenes by name, and back.
  for (const auto how : gnm::kSceneBreaks) CHECK(gnm::parse_scene_break(gnm::to_string(how)) == how);
  CHECK(gnm::to_string(gnm::SceneBreak::blurred) == "blurred");
  CHECK_THROWS_WITH(gnm::parse_scene_break("smudged"), Catch::Contains("\"smudged\"") && Catch::Contains("blob"));
}

TEST_CASE("blurred and blob scenes keep the ink where the digits were", "[gnm][eval]") {
  // One 16 x 16 frame at (8, 8) holding a 2-pixel-wide bar, ink box x 14-17, y 10-21.
  rd::Scene scene;
  scene.image = torch::zeros({64, 64});
  scene.image.index_put_({torch::indexing::Slice(10, 22), torch::indexing::Slice(14, 16)}, 1.0);
  rd::SceneObject o{1, 8, 8, 16, 16, {}};
  o.ink_box = {14, 10, 2, 12};
  scene.objects.push_back(o);
  const rd::Dataset none;
  const auto blurred = gnm::break_scene(scene, gnm::SceneBreak::blurred, none, 0);
  // Mass kept, the peak spread out.
  CHECK(blurred.image.sum().item<double>() == Approx(scene.image.sum().item<double>()).epsilon(0.01));
  CHECK(blurred.image.max().item<double>() < 0.6);
  const auto blob = gnm::break_scene(scene, gnm::SceneBreak::blob, none, 0);
  // The blob fills the ink box: brightest at its centre, nothing outside it.
  CHECK(blob.image[16][15].item<double>() > 0.7);
  CHECK(blob.image.sum().item<double>() > 0);
  CHECK(blob.image.narrow(1, 16, 48).sum().item<double>() == 0);
  CHECK(blob.image.narrow(0, 22, 42).sum().item<double>() == 0);
  CHECK(blob.objects.size() == 1);
}
