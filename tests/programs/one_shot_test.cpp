// DooD one-shot classification (Eq. 18-21) and stroke fidelity helpers.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>

#include <ppl/core/reflect.hpp>
#include <ppl/programs/dood/one_shot.hpp>
#include <ppl/programs/dood/stroke_fidelity.hpp>
#include <ppl/runtime/composite.hpp>
#include <ppl/runtime/render.hpp>

namespace dood = ppl::programs::dood;

namespace {
constexpr int64_t kSize = 16;

dood::DoodOptions small() {
  auto o = dood::DoodOptions::defaults();
  o.image_size = o.glimpse_size = kSize;
  o.steps = 2;
  o.control_points = 3;
  o.render_samples = 20;
  o.rnn_hidden = o.mlp_hidden = o.feature_size = 16;
  return o;
}

// The supplement's protocol (summed motor noise, recomputed renderer
// parameters, B.4's ranges) with a small search.
dood::OneShotOptions fast() {
  return dood::OneShotOptions::preset(dood::OneShotProtocol::supplement).with_particles(2).with_steps(8).with_batch(64);
}

// One stroke per image through the runtime's renderer and compositor, with
// fixed renderer parameters (not the program's): control points [N, P, 2] in [0, 1].
torch::Tensor draw(const torch::Tensor& points) {
  const int64_t n = points.size(0);
  auto strokes = ppl::runtime::render_strokes(points.unsqueeze(1), torch::full({n, 1}, 0.025), torch::full({n, 1}, 0.4),
                                              {.height = kSize, .width = kSize, .samples = 40});
  return ppl::runtime::composite(strokes, torch::full({n}, 0.4)).unsqueeze(2).select(1, 0);  // [N, 1, H, W]
}

// Types of one stroke each (the second step off) at the identity layout,
// with control points [N, P, 2] given in image coordinates.
dood::CharacterTypes one_stroke_types(const torch::Tensor& points, const torch::Tensor& obs_scale) {
  const int64_t n = points.size(0), p = points.size(1);
  dood::CharacterTypes types;
  types.on = torch::tensor({1.0f, 0.0f}).repeat({n, 1});
  types.layout = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f}).repeat({n, 2, 1});
  auto s = dood::image_to_glimpse(points, types.layout.select(1, 0), kSize);
  types.strokes = torch::stack({s, torch::full({n, p, 2}, 0.5)}, 1);
  types.sigma = torch::full({n, 2}, 0.025);
  types.omega0 = torch::full({n, 2}, 0.4);
  types.omega1 = torch::full({n}, 0.4);
  types.log_joint = torch::zeros({n});
  types.obs_scale = obs_scale;
  return types;
}
}  // namespace

TEST_CASE("DooD one-shot: the token objective at the type is the model's likelihood there plus the token prior",
          "[dood][one-shot]") {
  ppl::param_store().clear();
  torch::manual_seed(1);
  dood::Dood program(small());
  auto support = draw(torch::rand({1, 3, 2}) * 0.6 + 0.2);
  auto query = draw(torch::rand({1, 3, 2}) * 0.6 + 0.2);
  const int k = 3;
  auto types = ppl::handlers::seed([&](const torch::Tensor& x) { return dood::sample_types(program, x, k); }, 7)(support);
  REQUIRE(types.size() == k);
  // The same guide draws, traced here, and the model replayed on the support and on the query.
  auto guide = [&](const torch::Tensor& x) { return program.guide(x); };
  auto model = [&](const torch::Tensor& x) { return program.model(x); };
  auto guide_trace = ppl::trace(ppl::handlers::seed(guide, 7), support.expand({k, 1, kSize, kSize}));
  // The same draws through the guide's networks on an expanded batch here and
  // a repeated one there: equal up to float rounding of the network's output.
  CHECK(torch::allclose(guide_trace.site("s/1").value, types.strokes.select(1, 1), 1e-5, 1e-6));
  auto on_support = ppl::trace(ppl::handlers::replay(model, guide_trace), support.expand({k, 1, kSize, kSize}));
  CHECK(types.log_joint.sum().item<double>() == Approx(on_support.log_prob_sum().item<double>()).epsilon(1e-5));
  auto on_query = ppl::trace(ppl::handlers::replay(model, guide_trace), query.expand({k, 1, kSize, kSize}));
  auto log_lik = on_query.site("x").log_prob();
  // At the identity token: the uniform affine's density and the motor noise's
  // density at zero for every control point of a drawn stroke.
  const double sd = 1e-3, p = program.dood_options().control_points;
  const double affine = -4 * std::log(0.4) - 3 * std::log(std::numbers::pi / 2);
  auto drawn = types.on.sum(1).to(torch::kDouble);
  auto expected = log_lik.to(torch::kDouble) + affine + drawn * 2 * p * (-std::log(sd) - 0.5 * std::log(2 * std::numbers::pi));
  auto objective = dood::token_objective(program, query.expand({k, 1, kSize, kSize}), types,
                                         dood::TokenVariables::identity(types, fast()), fast());
  CHECK(torch::allclose(objective.to(torch::kDouble), expected, 1e-4, 1e-2));
}

TEST_CASE("DooD one-shot: the inverse glimpse map undoes glimpse_to_image", "[dood][one-shot]") {
  auto l = torch::tensor({{0.6, 0.2, -0.3, 0.4}, {1.0, 0.0, 0.0, 0.0}});
  auto p = torch::rand({2, 5, 2});
  auto back = dood::image_to_glimpse(dood::glimpse_to_image(p, l, 50), l, 50);
  CHECK(torch::allclose(back, p, 1e-5, 1e-5));
}

TEST_CASE("DooD one-shot: the gradient maximisation over the token never lowers its objective and raises it",
          "[dood][one-shot]") {
  ppl::param_store().clear();
  torch::manual_seed(2);
  dood::Dood program(small());
  auto supports = draw(torch::rand({4, 3, 2}) * 0.6 + 0.2);
  auto queries = draw(torch::rand({8, 3, 2}) * 0.6 + 0.2);
  auto types = dood::sample_types(program, supports, 2);  // 8 types
  auto fit = dood::fit_tokens(program, queries, types, fast());
  CHECK((fit.best >= fit.initial).all().item<bool>());
  CHECK((fit.best > fit.initial + 1e-3).sum().item<int64_t>() >= 6);
  // The objective at the returned token is the best value reported.
  auto again = dood::token_objective(program, queries, types, fit.token, fast());
  CHECK(torch::allclose(again, fit.best, 1e-4, 1e-3));
  // Without steps the best is the identity token's value.
  auto none = dood::fit_tokens(program, queries, types, fast().with_steps(0));
  CHECK(torch::equal(none.best, none.initial));
  CHECK(torch::allclose(none.initial, fit.initial));
}

TEST_CASE("DooD one-shot: a query drawn like one support's type is classified as that class", "[dood][one-shot]") {
  ppl::param_store().clear();
  torch::manual_seed(3);
  dood::Dood program(small());
  const auto obs_scale = dood::sample_types(program, torch::zeros({1, kSize, kSize}), 1).obs_scale;
  // Four clearly different strokes: a line at the top, a line at the right, a
  // hook at the bottom left, a short tick in the middle.
  const auto base = torch::tensor({{{0.15, 0.15}, {0.5, 0.2}, {0.85, 0.15}},
                                   {{0.85, 0.3}, {0.8, 0.6}, {0.85, 0.9}},
                                   {{0.1, 0.6}, {0.3, 1.0}, {0.4, 0.6}},
                                   {{0.45, 0.45}, {0.5, 0.5}, {0.55, 0.45}}});
  int correct = 0;
  const int trials = 8;
  for (int trial = 0; trial < trials; ++trial) {
    auto classes = base + 0.03 * torch::randn_like(base);
    auto types = one_stroke_types(classes, obs_scale);
    const int64_t answer = trial % 4;
    // The query: the class's stroke, slightly moved, drawn by the runtime.
    auto query = draw(classes.narrow(0, answer, 1) + 0.02 * torch::randn({1, 3, 2}));
    auto scores = dood::score_types(program, query, types, fast().with_particles(1));
    REQUIRE(scores.sizes() == c10::IntArrayRef({1, 4}));
    correct += dood::classify(scores)[0].item<int64_t>() == answer;
  }
  CHECK(correct >= trials - 1);
}

TEST_CASE("DooD one-shot: scores combine the K fits by Eq. 20 with Eq. 21's weights", "[dood][one-shot]") {
  ppl::param_store().clear();
  torch::manual_seed(4);
  dood::Dood program(small());
  auto supports = draw(torch::rand({3, 3, 2}) * 0.6 + 0.2);
  auto queries = draw(torch::rand({2, 3, 2}) * 0.6 + 0.2);
  auto options = fast();
  auto types = ppl::handlers::seed([&](const torch::Tensor& x) { return dood::sample_types(program, x, 2); }, 5)(supports);
  auto scores = ppl::handlers::seed([&](const torch::Tensor& s, const torch::Tensor& q) {
    return dood::one_shot_scores(program, s, q, options);
  }, 5)(supports, queries);
  REQUIRE(scores.sizes() == c10::IntArrayRef({2, 3}));
  for (int64_t q = 0; q < 2; ++q)
    for (int64_t c = 0; c < 3; ++c) {
      auto pair = types.select(torch::tensor({2 * c, 2 * c + 1}));
      auto fit = dood::fit_tokens(program, queries.narrow(0, q, 1).expand({2, 1, kSize, kSize}), pair, options);
      auto log_pi = pair.log_joint - torch::logsumexp(pair.log_joint, 0);
      CHECK(scores[q][c].item<double>() == Approx(torch::logsumexp(fit.best + log_pi, 0).item<double>()).epsilon(1e-4));
    }
  CHECK(torch::equal(dood::classify(scores), scores.argmax(1)));
}

TEST_CASE("DooD one-shot: bad arguments raise errors naming them", "[dood][one-shot]") {
  ppl::param_store().clear();
  dood::Dood program(small());
  auto images = torch::zeros({2, kSize, kSize});
  auto o = fast();
  CHECK_THROWS_WITH(dood::one_shot_scores(program, images, images, o.with_particles(0)),
                    Catch::Contains("particles is 0"));
  CHECK_THROWS_WITH(dood::sample_types(program, images, -1), Catch::Contains("particles is -1"));
  CHECK_THROWS_WITH(dood::one_shot_scores(program, images, images, fast().with_steps(-2)), Catch::Contains("steps is -2"));
  CHECK_THROWS_WITH(dood::one_shot_scores(program, images, images, fast().with_learning_rate(0)),
                    Catch::Contains("learning_rate is 0"));
  CHECK_THROWS_WITH(dood::one_shot_scores(program, torch::zeros({2, 105, 105}), images, fast()),
                    Catch::Contains("supports has shape [2, 105, 105]") && Catch::Contains("[N, 16, 16]"));
  CHECK_THROWS_WITH(dood::one_shot_scores(program, images, torch::zeros({2, 3, kSize, kSize}), fast()),
                    Catch::Contains("queries has shape [2, 3, 16, 16]"));
  CHECK_THROWS_AS(dood::classify(torch::zeros({3})), ppl::ArgumentError);
  auto j = ppl::options_to_json(fast());
  CHECK(j.at("particles") == 2);
  CHECK(ppl::options_from_json<dood::OneShotOptions>(j, dood::OneShotOptions::defaults()).steps == 8);
}

TEST_CASE("DooD one-shot: the protocols' presets, their names and the checks of the new options", "[dood][one-shot]") {
  using P = dood::OneShotProtocol;
  auto authors = dood::OneShotOptions::defaults();
  CHECK(authors.particles == 12);
  CHECK(authors.draws == 20);
  CHECK(authors.steps == 100);
  CHECK(authors.learning_rate == 1e-2);
  CHECK(authors.motor_noise == dood::MotorNoise::average);
  CHECK(authors.renderer == dood::TokenRenderer::fixed);
  CHECK(authors.scale_low == 0.6);
  CHECK(authors.scale_high == 1.4);
  CHECK(std::tan(authors.shear) == Approx(0.3 * std::numbers::pi));
  auto supplement = dood::OneShotOptions::preset(P::supplement);
  CHECK(supplement.draws == 1);
  CHECK(supplement.motor_noise == dood::MotorNoise::sum);
  CHECK(supplement.renderer == dood::TokenRenderer::recomputed);
  CHECK(supplement.scale_low == dood::TokenAffine::kScaleLow);
  CHECK(supplement.shear == dood::TokenAffine::kAngle);
  auto quick = dood::OneShotOptions::preset(P::quick);
  CHECK(quick.particles * quick.draws * quick.steps < authors.particles * authors.draws * authors.steps / 100);
  CHECK(quick.motor_noise == dood::MotorNoise::average);
  for (auto p : {P::authors, P::supplement, P::quick}) {
    dood::OneShotOptions::preset(p).check();
    CHECK(nlohmann::json(dood::to_string(p)).get<P>() == p);
  }
  CHECK_THROWS_WITH(nlohmann::json("paper").get<P>(),
                    Catch::Contains("protocol is \"paper\"") && Catch::Contains("\"authors\", \"supplement\", \"quick\""));
  auto j = ppl::options_to_json(authors);
  CHECK(j.at("motor_noise") == "average");
  CHECK(j.at("renderer") == "fixed");
  auto back = ppl::options_from_json<dood::OneShotOptions>(j, supplement);
  CHECK(back.draws == 20);
  CHECK(back.renderer == dood::TokenRenderer::fixed);
  CHECK_THROWS_WITH(dood::OneShotOptions::defaults().with_draws(0).check(), Catch::Contains("draws is 0"));
  CHECK_THROWS_WITH(dood::OneShotOptions::defaults().with_scale(1.1, 1.4).check(), Catch::Contains("scale_low is 1.1"));
  CHECK_THROWS_WITH(dood::OneShotOptions::defaults().with_scale(0.6, 0.9).check(), Catch::Contains("scale_high is 0.9"));
  CHECK_THROWS_WITH(dood::OneShotOptions::defaults().with_shear(2).check(), Catch::Contains("shear is 2"));
  // The identity token sits inside asymmetric ranges too.
  dood::CharacterTypes types;
  types.on = torch::ones({3, 2});
  types.strokes = torch::rand({3, 2, 4, 2});
  const auto asymmetric = dood::OneShotOptions::defaults().with_scale(0.5, 1.1);
  auto a = dood::TokenVariables::identity(types, asymmetric).affine(asymmetric);
  CHECK(torch::allclose(a.scale, torch::ones({3, 2}), 1e-6, 1e-6));
  CHECK(torch::equal(a.shift, torch::zeros({3, 2})));
}

TEST_CASE("DooD one-shot: the motor noise averaged per stroke has no stroke-count bias", "[dood][one-shot]") {
  // Per-stroke log-densities at zero noise: the same peak c for every drawn stroke.
  const double c = 60.0;
  auto per_stroke = torch::tensor({{c, c, c}, {c, c, c}, {c, c, c}, {c, c, c}});
  auto on = torch::tensor({{1.0, 0.0, 0.0}, {1.0, 1.0, 0.0}, {1.0, 1.0, 1.0}, {0.0, 0.0, 0.0}});
  auto average = dood::motor_log_density(per_stroke, on, dood::MotorNoise::average);
  auto sum = dood::motor_log_density(per_stroke, on, dood::MotorNoise::sum);
  CHECK(torch::allclose(average, torch::tensor({c, c, c, 0.0})));
  CHECK(torch::allclose(sum, torch::tensor({c, 2 * c, 3 * c, 0.0})));

  // In the objective: two types that differ only in how many strokes they
  // draw, at the identity token. Summed, the type of two strokes gains the
  // peak of a stroke's density over the type of one; averaged, nothing.
  ppl::param_store().clear();
  torch::manual_seed(6);
  dood::Dood program(small());
  const auto obs_scale = dood::sample_types(program, torch::zeros({1, kSize, kSize}), 1).obs_scale;
  auto types = one_stroke_types(torch::rand({2, 3, 2}) * 0.6 + 0.2, obs_scale);
  types.on = torch::tensor({{1.0f, 0.0f}, {1.0f, 1.0f}});
  auto query = draw(torch::rand({1, 3, 2}) * 0.6 + 0.2).expand({2, 1, kSize, kSize});
  auto averaged = fast().with_motor_noise(dood::MotorNoise::average);
  auto summed = fast().with_motor_noise(dood::MotorNoise::sum);
  auto with_average = dood::token_objective(program, query, types, dood::TokenVariables::identity(types, averaged), averaged);
  auto with_sum = dood::token_objective(program, query, types, dood::TokenVariables::identity(types, summed), summed);
  const double peak = 2 * 3 * (-std::log(1e-3) - 0.5 * std::log(2 * std::numbers::pi));  // 3 control points
  CHECK((with_sum - with_average)[0].item<double>() == Approx(0.0).margin(1e-3));
  CHECK((with_sum - with_average)[1].item<double>() == Approx(peak).epsilon(1e-4));
}

TEST_CASE("DooD one-shot: each particle is the best of its guide draws by the joint", "[dood][one-shot]") {
  // Synthetic types: the strokes carry the row number.
  dood::CharacterTypes types;
  types.on = torch::ones({6, 1});
  types.layout = torch::zeros({6, 1, 4});
  types.strokes = torch::arange(6, torch::kFloat).view({6, 1, 1, 1}).expand({6, 1, 2, 2}).contiguous();
  types.sigma = types.omega0 = torch::zeros({6, 1});
  types.omega1 = torch::zeros({6});
  types.log_joint = torch::tensor({1.0f, 5.0f, 3.0f, 2.0f, -4.0f, 7.0f});
  auto best = dood::best_of(types, 3);
  REQUIRE(best.size() == 2);
  CHECK(torch::equal(best.log_joint, torch::tensor({5.0f, 7.0f})));
  CHECK(best.strokes[0].min().item<float>() == 1.0f);
  CHECK(best.strokes[1].min().item<float>() == 5.0f);
  CHECK(torch::equal(dood::best_of(types, 1).log_joint, types.log_joint));
  CHECK_THROWS_WITH(dood::best_of(types, 4), Catch::Contains("draws is 4"));

  // Through the guide: 1 particle of 4 draws is the best of the 4 single
  // draws made with the same seed.
  ppl::param_store().clear();
  torch::manual_seed(8);
  dood::Dood program(small());
  auto supports = draw(torch::rand({2, 3, 2}) * 0.6 + 0.2);
  auto drawn = [&](int particles, int draws) {
    return ppl::handlers::seed([&](const torch::Tensor& x) { return dood::sample_types(program, x, particles, draws); },
                               9)(supports);
  };
  auto singles = drawn(4, 1), chosen = drawn(1, 4);
  REQUIRE(chosen.size() == 2);
  CHECK(torch::allclose(chosen.log_joint, singles.log_joint.view({2, 4}).amax(1)));
  CHECK(torch::allclose(chosen.strokes, dood::best_of(singles, 4).strokes));
  CHECK_THROWS_WITH(dood::sample_types(program, supports, 1, 0), Catch::Contains("draws is 0"));
}

TEST_CASE("DooD one-shot: the fixed renderer parameters are the type's, equal to recomputed ones at the type",
          "[dood][one-shot]") {
  ppl::param_store().clear();
  torch::manual_seed(10);
  dood::Dood program(small());
  auto supports = draw(torch::rand({2, 3, 2}) * 0.6 + 0.2);
  auto types = dood::sample_types(program, supports, 2);
  auto rp = program.render_params(types.layout.flatten(0, 1), types.strokes.flatten(0, 1));
  CHECK(torch::allclose(types.sigma, rp.sigma.view({4, 2})));
  CHECK(torch::allclose(types.omega1, rp.omega1.view({4, 2}).select(1, 0)));
  auto queries = draw(torch::rand({4, 3, 2}) * 0.6 + 0.2);
  auto fixed = fast().with_renderer(dood::TokenRenderer::fixed);
  auto at_type = [&](const dood::OneShotOptions& o) {
    return dood::token_objective(program, queries, types, dood::TokenVariables::identity(types, o), o);
  };
  CHECK(torch::allclose(at_type(fixed), at_type(fast()), 1e-4, 1e-2));
}

TEST_CASE("DooD tokens: the canvas at the identity token is the model's canvas at the type", "[dood][tokens]") {
  ppl::param_store().clear();
  torch::manual_seed(11);
  dood::Dood program(small());
  auto support = draw(torch::rand({1, 3, 2}) * 0.6 + 0.2);
  const int k = 3;
  auto draw_types = [&](const torch::Tensor& x) { return dood::sample_types(program, x, k); };
  auto types = ppl::handlers::seed(draw_types, 5)(support);
  auto guide = [&](const torch::Tensor& x) { return program.guide(x); };
  auto model = [&](const torch::Tensor& x) { return program.model(x); };
  auto guide_trace = ppl::trace(ppl::handlers::seed(guide, 5), support.expand({k, 1, kSize, kSize}));
  auto replayed = ppl::trace(ppl::handlers::replay(model, guide_trace), support.expand({k, 1, kSize, kSize}));
  auto canvas = dood::token_canvas(program, types, dood::TokenVariables::identity(types, fast()), fast());
  REQUIRE(canvas.sizes() == torch::IntArrayRef({k, 1, kSize, kSize}));
  CHECK(torch::allclose(canvas, replayed.result<torch::Tensor>(), 1e-4, 1e-5));
}

TEST_CASE("DooD tokens: token variables are uniform in the options' ranges with standard Normal motor noise",
          "[dood][tokens]") {
  torch::manual_seed(12);
  const int64_t n = 4000;
  dood::CharacterTypes types;
  types.on = torch::ones({n, 2});
  types.strokes = torch::zeros({n, 2, 3, 2});
  const auto options = fast();  // B.4's ranges
  const auto token = dood::sample_token_variables(types, options);
  const auto a = token.affine(options);
  // A uniform on [lo, hi] has mean (lo + hi) / 2 and sd (hi - lo) / sqrt(12);
  // the checks allow 4 standard errors of the mean.
  auto uniform = [&](const torch::Tensor& v, double lo, double hi) {
    CHECK(v.min().item<double>() >= lo);
    CHECK(v.max().item<double>() <= hi);
    const double sd = (hi - lo) / std::sqrt(12.0), se = sd / std::sqrt(static_cast<double>(v.numel()));
    CHECK(v.mean().item<double>() == Approx((lo + hi) / 2).margin(4 * se));
    CHECK(v.std().item<double>() == Approx(sd).epsilon(0.05));
  };
  uniform(a.shift, -0.2, 0.2);
  uniform(a.scale, 0.8, 1.2);
  uniform(a.rotation, -std::numbers::pi / 4, std::numbers::pi / 4);
  uniform(a.shear, -std::numbers::pi / 4, std::numbers::pi / 4);
  REQUIRE(token.noise.sizes() == types.strokes.sizes());
  const double noise_se = 1 / std::sqrt(static_cast<double>(token.noise.numel()));
  CHECK(token.noise.mean().item<double>() == Approx(0.0).margin(4 * noise_se));
  CHECK(token.noise.std().item<double>() == Approx(1.0).epsilon(0.03));
}

TEST_CASE("DooD tokens: generation draws each support's type and then its tokens", "[dood][tokens]") {
  ppl::param_store().clear();
  torch::manual_seed(13);
  dood::Dood program(small());
  auto supports = draw(torch::rand({2, 3, 2}) * 0.6 + 0.2);
  auto tokens = dood::generate_tokens(program, supports, 4, fast());
  REQUIRE(tokens.sizes() == torch::IntArrayRef({2, 4, 1, kSize, kSize}));
  CHECK(tokens.min().item<double>() >= 0.0);
  CHECK(tokens.max().item<double>() <= 1.0 + 1e-6);
  // Each token is its own draw of the affine: no two alike.
  CHECK((tokens[0][0] - tokens[0][1]).abs().max().item<double>() > 1e-4);
  // With every range shrunk to the identity and no motor noise, each token
  // is the type's canvas: the four tokens of a support agree.
  auto still = fast().with_shift(1e-9).with_scale(1 - 1e-9, 1 + 1e-9).with_rotation(1e-9).with_shear(1e-9);
  still.motor_sd = 1e-12;
  auto same = dood::generate_tokens(program, supports, 4, still);
  for (int j = 1; j < 4; ++j) CHECK(torch::allclose(same[1][j], same[1][0], 1e-4, 1e-5));
  CHECK_THROWS_WITH(dood::generate_tokens(program, supports, 0, fast()), Catch::Contains("tokens is 0"));
  CHECK_THROWS_WITH(dood::generate_tokens(program, supports, 2, fast().with_draws(0)), Catch::Contains("draws is 0"));
}

TEST_CASE("DooD one-shot: accuracy and its binomial standard error", "[dood][one-shot]") {
  dood::Accuracy a{41, 200};
  CHECK(a.value() == Approx(0.205));
  CHECK(a.standard_error() == Approx(std::sqrt(0.205 * 0.795 / 200)));
  CHECK(dood::Accuracy{}.standard_error() == 0.0);
  CHECK(dood::Accuracy{20, 20}.standard_error() == 0.0);
}

TEST_CASE("DooD strokes: Bezier curves, control points in pixels, Chamfer distance by hand", "[dood][strokes]") {
  // A quadratic curve: b(0.5) = (p0 + 2 p1 + p2) / 4.
  auto cp = torch::tensor({{0.0, 0.0}, {2.0, 4.0}, {4.0, 0.0}});
  auto curve = dood::bezier_curve(cp, 3);
  CHECK(torch::allclose(curve, torch::tensor({{0.0, 0.0}, {2.0, 2.0}, {4.0, 0.0}})));
  CHECK_THROWS_WITH(dood::bezier_curve(cp, 1), Catch::Contains("samples is 1"));
  // Chamfer: a = {(0,0), (4,0)}, b = {(0,3)}: a to b: 3 and 5 (mean 4); b to a: 3; (4 + 3) / 2 = 3.5.
  CHECK(dood::chamfer_distance(torch::tensor({{0.0, 0.0}, {4.0, 0.0}}), torch::tensor({{0.0, 3.0}})) == Approx(3.5));
  CHECK(dood::chamfer_distance(cp, cp) == Approx(0.0));
  CHECK_THROWS_WITH(dood::chamfer_distance(torch::zeros({0, 2}), cp), Catch::Contains("a has shape [0, 2]"));
  // A polyline (0,0) -> (2,0) -> (2,1) at spacing 0.5: 4 + 2 pieces, 7 points.
  auto dense = dood::densify_polyline(torch::tensor({{0.0, 0.0}, {2.0, 0.0}, {2.0, 1.0}}), 0.5);
  CHECK(torch::allclose(dense, torch::tensor({{0.0, 0.0}, {0.5, 0.0}, {1.0, 0.0}, {1.5, 0.0}, {2.0, 0.0}, {2.0, 0.5},
                                              {2.0, 1.0}})));
  CHECK(dood::densify_polyline(torch::tensor({{3.0, 4.0}}), 0.5).sizes() == c10::IntArrayRef({1, 2}));
  CHECK_THROWS_WITH(dood::densify_polyline(cp, 0), Catch::Contains("spacing is 0"));
  // Inferred strokes: one [P, 2] tensor per drawn step, in pixels.
  ppl::param_store().clear();
  dood::Dood program(small());
  auto strokes = dood::infer_control_points(program, torch::rand({3, 1, kSize, kSize}));
  REQUIRE(strokes.size() == 3);
  for (const auto& image : strokes)
    for (const auto& s : image) CHECK(s.sizes() == c10::IntArrayRef({3, 2}));
}
