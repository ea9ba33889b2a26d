// GENESIS and the component mixture it shares with SPACE: stick-breaking,
// the pixel-wise mixture likelihood, the sites of model and guide, one
// training step, GECO, the boxes of its masks and its options.
#include <cmath>

#include <catch2/catch.hpp>

#include <ppl/inference.hpp>
#include <ppl/programs/component_mixture.hpp>
#include <ppl/programs/genesis/genesis.hpp>
#include <ppl/programs/layers.hpp>
#include <ppl/programs/objects.hpp>
#include <ppl/programs/program.hpp>

#include "program_checks.hpp"

namespace genesis = ppl::programs::genesis;
using ppl::programs::ScoredBox;

namespace {
/// GENESIS on 16 x 16 images with three components and small networks.
genesis::GenesisOptions small_genesis() {
  auto o = genesis::GenesisOptions::defaults();
  o.image_size = 16;
  o.components = 3;
  o.z_mask_size = 4;
  o.z_comp_size = 3;
  o.encoder_channels = 8;
  o.lstm_hidden = 16;
  o.decoder_channels = 8;
  o.decoder_layers = 2;
  return o;
}
}  // namespace

TEST_CASE("stick-breaking gives masks that are the products of the sticks left and sum to 1", "[genesis]") {
  torch::manual_seed(1);
  auto a = torch::randn({2, 4, 3, 3}, torch::kDouble) * 3;
  auto m = ppl::programs::log_stick_breaking(a).exp();
  auto s = torch::sigmoid(a);
  // By hand: m_0 = s_0, m_1 = (1 - s_0) s_1, m_2 = (1 - s_0)(1 - s_1) s_2, m_3 = the rest.
  auto expected = torch::stack({s.select(1, 0), (1 - s.select(1, 0)) * s.select(1, 1),
                                (1 - s.select(1, 0)) * (1 - s.select(1, 1)) * s.select(1, 2),
                                (1 - s.select(1, 0)) * (1 - s.select(1, 1)) * (1 - s.select(1, 2))},
                               1);
  CHECK(torch::allclose(m, expected, 1e-12, 1e-12));
  CHECK(torch::allclose(m.sum(1), torch::ones({2, 3, 3}, torch::kDouble), 1e-12, 1e-12));
}

TEST_CASE("the pixel mixture's density is sum_k w_k N(x, mu_k, sd_k) at every pixel", "[genesis]") {
  torch::manual_seed(2);
  auto logits = torch::randn({2, 3, 4, 4}, torch::kDouble);
  auto log_w = torch::log_softmax(logits, 1);
  auto mu = torch::rand({2, 3, 4, 4}, torch::kDouble);
  auto sd = torch::tensor({0.2, 0.5, 0.7}, torch::kDouble);
  auto x = torch::rand({2, 1, 4, 4}, torch::kDouble);
  auto lp = ppl::programs::pixel_mixture(log_w, mu, sd).log_prob(x);
  REQUIRE(lp.sizes() == c10::IntArrayRef({2}));
  // Independently: the densities written out, summed over components, logged, summed over pixels.
  auto sdv = sd.view({1, 3, 1, 1});
  auto density = torch::exp(-0.5 * ((x - mu) / sdv).pow(2)) / (sdv * std::sqrt(2 * M_PI));
  auto expected = torch::log((log_w.exp() * density).sum(1)).sum({1, 2});
  CHECK(torch::allclose(lp, expected, 1e-10, 1e-10));
}

TEST_CASE("the broadcast decoder convolves z tiled beside x and y coordinate channels", "[genesis]") {
  torch::manual_seed(13);
  ppl::programs::BroadcastDecoder dec(3, 8, 5, 2, 1);
  auto z = torch::randn({4, 3});
  auto out = dec->forward(z);
  REQUIRE(out.sizes() == c10::IntArrayRef({4, 1, 8, 8}));
  CHECK(out.is_contiguous());
  // The input written out pixel by pixel: z, then x (across), then y (down) in [-1, 1].
  auto in = torch::empty({4, 5, 8, 8});
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 0; j < 8; ++j) {
      in.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, 3), i, j}, z);
      in.index_put_({torch::indexing::Slice(), 3, i, j}, -1.0 + 2.0 * j / 7);
      in.index_put_({torch::indexing::Slice(), 4, i, j}, -1.0 + 2.0 * i / 7);
    }
  auto h = in;
  for (size_t l = 0; l < dec->convs->size(); ++l) {
    auto conv = dec->convs->ptr(l)->as<torch::nn::Conv2d>();
    h = conv ? torch::conv2d(h, conv->weight, conv->bias, 1, conv->options.kernel_size()->at(0) / 2) : torch::celu(h);
  }
  // The same sums in another memory layout (channels-last on the CPU): float rounding only.
  CHECK(torch::allclose(out, h, 1e-5, 1e-5));
}

TEST_CASE("GENESIS model and guide visit the same sites with the documented shapes", "[genesis]") {
  ppl::param_store().clear();
  torch::manual_seed(3);
  genesis::Genesis program(small_genesis());
  auto x = torch::rand({2, 1, 16, 16});
  auto [q, p] = ppl::test::check_same_sites(program, x);
  for (int k = 0; k < 3; ++k) CHECK(q.site(ppl::addr("z_m", k)).value.sizes() == c10::IntArrayRef({2, 4}));
  CHECK_FALSE(q.contains(ppl::addr("z_m", 3)));
  CHECK(q.site("z_c").value.sizes() == c10::IntArrayRef({2, 3, 3}));
  CHECK(p.site("x").log_prob().sizes() == c10::IntArrayRef({2}));
  // The model's result is the mixture's mean image.
  auto mean = p.result<torch::Tensor>();
  CHECK(mean.sizes() == x.sizes());
  CHECK(((mean >= 0).logical_and(mean <= 1)).all().item<bool>());
  CHECK(program.sample(3).sizes() == c10::IntArrayRef({3, 1, 16, 16}));
  auto r = program.reconstruct(x);
  CHECK(r.sizes() == x.sizes());
  auto [masks, means] = program.decompose(x);
  CHECK(masks.sizes() == c10::IntArrayRef({2, 3, 16, 16}));
  CHECK(torch::allclose(masks.sum(1), torch::ones({2, 16, 16}), 1e-5, 1e-5));
}

TEST_CASE("one GENESIS step gives a finite loss and moves the parameters, with GECO and the ELBO", "[genesis][train]") {
  for (auto objective : {genesis::Objective::geco, genesis::Objective::elbo}) {
    INFO(genesis::to_string(objective));
    ppl::param_store().clear();
    torch::manual_seed(4);
    auto o = small_genesis();
    o.objective = objective;
    genesis::Genesis program(o);
    program.set_training(true);
    ppl::test::check_one_step(program, ppl::test::squares());
  }
}

TEST_CASE("the model replayed on the guide takes its masks and means, with the same loss and gradients", "[genesis]") {
  ppl::param_store().clear();
  torch::manual_seed(12);
  genesis::Genesis program(small_genesis());
  program.set_training(true);
  auto& mixture = program.nets()->mixture;
  const int64_t b = 4, k = 3;
  auto x = torch::rand({b, 1, 16, 16});
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto step = [&](bool reuse) {
    mixture->reuse_guide_decoding = reuse;
    const auto before = mixture->decoded_components;
    auto out = ppl::test::elbo_gradients(program, x, program.nets()->parameters());
    return std::make_pair(out, mixture->decoded_components - before);
  };
  const auto [recomputed, recomputed_decoded] = step(false);
  const auto [reused, reused_decoded] = step(true);
  // The decoders run once (the guide's) instead of twice.
  CHECK(reused_decoded == b * k);
  CHECK(recomputed_decoded == 2 * b * k);
  // The same draws and the same functions of them: equal up to the order in
  // which backward sums the two uses of each decoder output.
  ppl::test::check_same_gradients(reused, recomputed);
  mixture->reuse_guide_decoding = true;

  // Draws other than the guide's latest are decoded, to what decoding gives.
  auto first = ppl::trace(ppl::handlers::seed(guide, 1), x);
  auto second = ppl::trace(ppl::handlers::seed(guide, 2), x);
  auto before = mixture->decoded_components;
  auto on_first = ppl::trace(ppl::handlers::replay(model, first), x);
  CHECK(mixture->decoded_components - before == b * k);
  mixture->reuse_guide_decoding = false;
  auto again = ppl::trace(ppl::handlers::replay(model, first), x);
  CHECK(torch::allclose(on_first.log_prob_sum(), again.log_prob_sum(), 1e-6, 1e-4));
  mixture->reuse_guide_decoding = true;
  // A guide run without gradients does not serve a model that needs them.
  {
    torch::NoGradGuard no_grad;
    second = ppl::trace(guide, x);
  }
  before = mixture->decoded_components;
  auto with_grad = ppl::trace(ppl::handlers::replay(model, second), x);
  CHECK(mixture->decoded_components - before == b * k);
  CHECK(with_grad.log_prob_sum().requires_grad());
  // Nor once a decoder's parameter has changed.
  second = ppl::trace(guide, x);
  {
    torch::NoGradGuard no_grad;
    mixture->comp_dec->parameters()[0].add_(1e-3);
  }
  before = mixture->decoded_components;
  ppl::trace(ppl::handlers::replay(model, second), x);
  CHECK(mixture->decoded_components - before == b * k);
  // And it serves once: the same replay again decodes.
  second = ppl::trace(guide, x);
  ppl::trace(ppl::handlers::replay(model, second), x);
  before = mixture->decoded_components;
  ppl::trace(ppl::handlers::replay(model, second), x);
  CHECK(mixture->decoded_components - before == b * k);
}

TEST_CASE("GECO lowers beta while the reconstruction is worse than the goal and raises it when better", "[genesis]") {
  for (double goal : {-10.0, 10.0}) {
    INFO("goal " << goal);
    ppl::param_store().clear();
    auto o = small_genesis();
    o.geco_goal = goal;
    o.geco_step_size = 1e-3;
    genesis::Genesis program(o);
    program.set_training(true);
    CHECK(program.geco_beta() == 1.0);
    CHECK(program.kl_weight() == 1.0);
    // A model run with gradients on records the error; the next set_step applies it.
    program.model(ppl::test::squares());
    REQUIRE(program.pending_error().has_value());
    const double error = *program.pending_error();
    program.set_step(1);
    CHECK_FALSE(program.pending_error().has_value());
    // The first update starts the moving average at the error itself.
    const double expected = std::exp(1e-3 * (goal - error) * 256);
    CHECK(program.geco_beta() == Approx(std::max(expected, o.geco_beta_min)).epsilon(1e-5));
    CHECK((goal > error ? program.geco_beta() > 1.0 : program.geco_beta() < 1.0));
    CHECK(program.kl_weight() == program.geco_beta());
    program.set_training(false);
    CHECK(program.kl_weight() == 1.0);
    // beta is a parameter of the program (saved with it), not a trained one.
    CHECK_FALSE(program.nets()->geco.requires_grad());
  }
  // Without a new error, set_step leaves beta alone (evaluation opens a run at its step).
  ppl::param_store().clear();
  genesis::Genesis program(small_genesis());
  program.set_step(100);
  CHECK(program.geco_beta() == 1.0);
}

TEST_CASE("mask_boxes are the masks' extents above the threshold, scored by their peak", "[genesis]") {
  auto m = torch::zeros({1, 3, 8, 8});
  m.index_put_({0, 0, torch::indexing::Slice(1, 4), torch::indexing::Slice(2, 7)}, 0.9);
  m.index_put_({0, 0, 2, 3}, 0.95);
  m.index_put_({0, 1, torch::indexing::Slice(5, 6), torch::indexing::Slice(0, 1)}, 0.6);
  m.index_put_({0, 2}, 0.4);  // nowhere above 1/2
  auto boxes = ppl::programs::mask_boxes(m, 0.5);
  REQUIRE(boxes.size() == 1);
  REQUIRE(boxes[0].size() == 3);
  const auto& b = boxes[0];
  CHECK(b[0].x == 2);
  CHECK(b[0].y == 1);
  CHECK(b[0].width == 5);
  CHECK(b[0].height == 3);
  CHECK(b[0].score == Approx(0.95).epsilon(1e-6));
  CHECK(b[1].x == 0);
  CHECK(b[1].y == 5);
  CHECK(b[1].width == 1);
  CHECK(b[1].height == 1);
  CHECK(b[2].score == 0);
  CHECK(b[2].width == 0);
  CHECK_THROWS_AS(ppl::programs::mask_boxes(torch::zeros({3, 8, 8})), ppl::ShapeError);
}

TEST_CASE("GENESIS infers one box and feature row per component, the background's scored 0", "[genesis]") {
  ppl::param_store().clear();
  torch::manual_seed(5);
  genesis::Genesis program(small_genesis());
  REQUIRE(program.infers_objects());
  auto x = ppl::test::squares();
  auto objects = program.infer_objects(x);
  REQUIRE(objects.boxes.size() == 4);
  for (const auto& image : objects.boxes) {
    REQUIRE(image.size() == 3);
    for (const auto& b : image) {
      CHECK(b.score >= 0);
      CHECK(b.score <= 1);
      if (b.width * b.height > 128) CHECK(b.score == 0);
    }
  }
  CHECK(objects.what.sizes() == c10::IntArrayRef({4, 3, 3}));
  // The boxes are those of the decomposition's masks.
  auto masks = program.decompose(x).first;
  auto direct = ppl::programs::mask_boxes(masks, 0.5);
  for (size_t i = 0; i < direct.size(); ++i)
    for (size_t k = 0; k < direct[i].size(); ++k) {
      CHECK(objects.boxes[i][k].x == direct[i][k].x);
      CHECK(objects.boxes[i][k].width == direct[i][k].width);
    }
  auto eval = program.evaluate(x, torch::tensor({1, 1, 1, 1}));
  CHECK(eval.contains("count_accuracy"));
  CHECK(eval.at("mean_inferred_count").get<double>() >= 0);
  CHECK(eval.at("mean_inferred_count").get<double>() <= 3);
  CHECK(eval.at("geco_beta").get<double>() == 1.0);
  CHECK_THROWS_AS(program.infer_objects(torch::zeros({1, 1, 8, 8})), std::invalid_argument);
}

TEST_CASE("GENESIS options round-trip through JSON and bad ones name the option", "[genesis]") {
  ppl::param_store().clear();
  const auto& info = ppl::programs::find_program("genesis");
  genesis::Genesis program(small_genesis());
  auto again = info.make(program.options());
  CHECK(again->options() == program.options());
  CHECK(program.options().at("objective") == "geco");
  auto defaults = info.default_options();
  CHECK(defaults.at("components") == 5);
  CHECK(defaults.at("likelihood_sd") == 0.7);
  auto elbo = info.make({{"objective", "elbo"}, {"image_size", 16}});
  CHECK(elbo->options().at("objective") == "elbo");
  CHECK_THROWS_WITH(info.make({{"componentz", 2}}), Catch::Contains("unknown key \"componentz\""));
  CHECK_THROWS_WITH(info.make({{"objective", "gecko"}}),
                    Catch::Contains("objective") && Catch::Contains("\"elbo\" or \"geco\""));
  CHECK_THROWS_WITH(info.make({{"components", 1}}), Catch::Contains("components is 1"));
  CHECK_THROWS_WITH(info.make({{"image_size", 48}}), Catch::Contains("image_size is 48"));
  CHECK_THROWS_WITH(info.make({{"likelihood_sd", 0.0}}), Catch::Contains("likelihood_sd is 0"));
  CHECK_THROWS_WITH(info.make({{"geco_alpha", 1.0}}), Catch::Contains("geco_alpha is 1"));
  CHECK_THROWS_WITH(info.make({{"components", "five"}}), Catch::Contains("\"components\""));
}
