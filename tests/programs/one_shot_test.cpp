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

dood::OneShotOptions fast() { return dood::OneShotOptions::defaults().with_particles(2).with_steps(8).with_batch(64); }

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
                                         dood::TokenVariables::identity(types), sd);
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
  auto again = dood::token_objective(program, queries, types, fit.token, 1e-3);
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
