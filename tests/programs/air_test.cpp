// AIR: the count prior, the sites of model and guide, masking, options.
#include <array>

#include <catch2/catch.hpp>

#include <ppl/programs/air/air.hpp>
#include <ppl/programs/program.hpp>
#include <ppl/runtime/stn.hpp>

namespace air = ppl::programs::air;

namespace {
air::AirOptions small() {
  auto o = air::AirOptions::defaults();
  o.image_size = 20;
  o.window_size = 8;
  o.z_what_size = 4;
  o.rnn_hidden = 16;
  o.encoder_hidden = o.decoder_hidden = o.predict_hidden = o.baseline_hidden = 16;
  return o;
}
}  // namespace

TEST_CASE("the z_pres prior is a truncated geometric on the count", "[air]") {
  for (double k : {0.01, 0.5, 1.0}) {
    const auto rho = air::count_prior_trials(k, 3);
    // P(n) = prod_{t<n} rho_t * (1 - rho_n), with rho_3 = 0.
    double z = 1 + k + k * k + k * k * k, alive = 1.0;
    for (int n = 0; n <= 3; ++n) {
      const double stop = n < 3 ? 1 - rho[n] : 1.0;
      CHECK(alive * stop == Approx(std::pow(k, n) / z));
      if (n < 3) alive *= rho[n];
    }
  }
  CHECK_THROWS_WITH(air::count_prior_trials(0.0, 3), Catch::Contains("z_pres_prior is 0"));
}

TEST_CASE("AIR z_where converts to the runtime's window convention", "[air]") {
  // s = 2, x = 0.5: the object covers half the image, centred at -x/s = -0.25.
  auto rt = air::to_runtime_where(torch::tensor({{2.0, 0.5, -1.0}}));
  CHECK(rt[0][0].item<double>() == Approx(0.5));
  CHECK(rt[0][1].item<double>() == Approx(-0.25));
  CHECK(rt[0][2].item<double>() == Approx(0.5));
}

TEST_CASE("AIR's window box is where stn_place puts the window", "[air]") {
  // A window of ones placed at z_where: the pixels it covers at least half
  // span the box window_box gives, to a pixel (bilinear edges).
  for (const auto& [s, x, y] : std::vector<std::array<double, 3>>{{2.5, 0.4, -0.6}, {3.0, -1.2, 0.9}, {1.6, 0.0, 0.3}}) {
    const auto where = torch::tensor({{s, x, y}});
    const auto placed = ppl::runtime::stn_place(torch::ones({1, 1, 28, 28}), air::to_runtime_where(where), 50, 50)[0][0];
    const auto cols = (placed > 0.5).any(0).nonzero().squeeze(1), rows = (placed > 0.5).any(1).nonzero().squeeze(1);
    const auto box = air::window_box(s, x, y, 50);
    INFO("z_where " << s << ", " << x << ", " << y << ": box x " << box.x << " y " << box.y << " side " << box.width);
    CHECK(box.width == Approx(50 / s));
    CHECK(std::abs(static_cast<double>(cols.min().item<int64_t>()) - std::max(box.x, 0.0)) <= 1.0);
    CHECK(std::abs(static_cast<double>(cols.max().item<int64_t>() + 1) - std::min(box.x + box.width, 50.0)) <= 1.0);
    CHECK(std::abs(static_cast<double>(rows.min().item<int64_t>()) - std::max(box.y, 0.0)) <= 1.0);
    CHECK(std::abs(static_cast<double>(rows.max().item<int64_t>() + 1) - std::min(box.y + box.height, 50.0)) <= 1.0);
  }
  // infer_objects: a box and a z_what row per step; after a step scored 0
  // (no object, so no later one) every score is 0.
  ppl::param_store().clear();
  air::Air program;
  const auto objects = program.infer_objects(torch::rand({4, 1, 50, 50}));
  const auto steps = program.air_options().max_steps;
  REQUIRE(objects.boxes.size() == 4);
  CHECK(objects.what.sizes() == torch::IntArrayRef({4, steps, program.air_options().z_what_size}));
  for (const auto& boxes : objects.boxes) {
    REQUIRE(static_cast<int64_t>(boxes.size()) == steps);
    bool ended = false;
    for (const auto& b : boxes) {
      CHECK(b.score >= 0);
      CHECK(b.score <= 1);
      if (ended) CHECK(b.score == 0);
      ended = ended || b.score == 0;
    }
  }
}

TEST_CASE("AIR model and guide visit the same latent sites, and absent objects score zero", "[air]") {
  ppl::param_store().clear();
  air::Air program(small());
  auto x = torch::rand({5, 1, 20, 20});
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto q = ppl::trace(ppl::handlers::seed(guide, 3), x);
  auto p = ppl::trace(ppl::handlers::replay(model, q), x);
  for (const auto& s : q) {
    if (s.kind != ppl::SiteKind::sample) continue;
    INFO(s.name);
    REQUIRE(p.contains(s.name));
    CHECK(torch::equal(p.site(s.name).value, s.value));
    CHECK(p.site(s.name).log_prob().isfinite().all().item<bool>());
  }
  CHECK(q.site("z_pres/0").options.baseline.defined());
  CHECK_FALSE(q.site("z_pres/0").reparameterised);
  CHECK(q.site("z_where/0").reparameterised);
  // Once z_pres is 0 it stays 0, and the masked sites contribute nothing.
  auto pres = torch::stack({q.site("z_pres/0").value, q.site("z_pres/1").value, q.site("z_pres/2").value}, 1);
  CHECK((pres.narrow(1, 1, 2) <= pres.narrow(1, 0, 2)).all().item<bool>());
  for (int t = 0; t < 3; ++t) {
    auto absent = q.site(ppl::addr("z_pres", t)).value < 0.5;
    auto lp = p.site(ppl::addr("z_what", t)).log_prob();
    CHECK((lp.masked_select(absent) == 0).all().item<bool>());
  }
  CHECK(p.site("x").log_prob().sizes() == c10::IntArrayRef({5}));
  CHECK(std::isfinite(p.log_prob_sum().item<double>() - q.log_prob_sum().item<double>()));
  // Step canvases end at the model's canvas.
  auto steps = program.step_canvases(p);
  CHECK(steps.sizes() == c10::IntArrayRef({3, 5, 1, 20, 20}));
  CHECK(torch::allclose(steps[2], p.result<torch::Tensor>().clamp(0, 1), 1e-5, 1e-6));
}

TEST_CASE("AIR samples, reconstructions and options round trip", "[air]") {
  ppl::param_store().clear();
  air::Air program(small());
  CHECK(program.sample(3).sizes() == c10::IntArrayRef({3, 1, 20, 20}));
  auto x = torch::rand({2, 1, 20, 20});
  auto r = program.reconstruct(x);
  CHECK(r.sizes() == x.sizes());
  CHECK(((r >= 0).logical_and(r <= 1)).all().item<bool>());
  auto eval = program.evaluate(x, torch::tensor({1, 2}));
  CHECK(eval.contains("count_accuracy"));
  const auto& info = ppl::programs::find_program("air");
  auto again = info.make(program.options());
  CHECK(again->options() == program.options());
  CHECK_THROWS_WITH(ppl::programs::find_program("airr"), Catch::Contains("unknown program \"airr\""));
  CHECK_THROWS_WITH(info.make(nlohmann::json{{"max_stepz", 2}}), Catch::Contains("unknown key \"max_stepz\""));
}

TEST_CASE("AIR z_pres warm-up holds the guide's presence at one half, then hands it to the network", "[air]") {
  ppl::param_store().clear();
  auto o = small();
  o.z_pres_warmup = 10;
  air::Air program(o);
  auto x = torch::rand({4, 1, 20, 20});
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto presence = [&] {
    auto q = ppl::trace(ppl::handlers::seed(guide, 5), x);
    const auto& d = dynamic_cast<const ppl::dist::Bernoulli&>(*q.site("z_pres/0").dist);
    return d.probs();
  };
  program.set_step(9);
  CHECK(torch::allclose(presence(), torch::full({4}, 0.5)));
  program.set_step(10);
  auto p = presence();
  CHECK_FALSE(torch::allclose(p, torch::full({4}, 0.5)));
  CHECK(p.requires_grad());
  // Annealing is independent of the warm-up: the prior is unchanged without it.
  CHECK(program.prior_trials() == air::count_prior_trials(o.z_pres_prior, o.max_steps));
}

TEST_CASE("AIR with the Laplace likelihood: a learnt per-pixel scale that evaluation can replace", "[air]") {
  ppl::param_store().clear();
  auto o = small();
  o.likelihood = "laplace";
  air::Air program(o);
  REQUIRE(program.has_likelihood_scale());
  auto x = torch::rand({3, 1, 20, 20});
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto q = ppl::trace(ppl::handlers::seed(guide, 5), x);
  auto replayed = [&] { return ppl::trace(ppl::handlers::replay(model, q), x); };
  // The Laplace density in closed form, summed over the pixels of each image.
  auto laplace = [&](const torch::Tensor& mean, const torch::Tensor& b) {
    return (-(x - mean).abs() / b - torch::log(2 * b)).flatten(1).sum(1);
  };
  auto p = replayed();
  auto mean = p.result<torch::Tensor>();
  // Initially b = 0.01 + 0.99 sigmoid(0) everywhere.
  CHECK(torch::allclose(p.site("x").log_prob(), laplace(mean, torch::full({1, 20, 20}, 0.505)), 1e-4, 1e-3));

  auto b = torch::full({1, 20, 20}, 0.25);
  b[0][3][4] = 0.9;
  program.set_likelihood_scale(b);
  CHECK(torch::allclose(replayed().site("x").log_prob(), laplace(mean, b), 1e-4, 1e-3));
  program.set_likelihood_scale({});
  CHECK(torch::allclose(replayed().site("x").log_prob(), p.site("x").log_prob()));

  CHECK_THROWS_WITH(program.set_likelihood_scale(torch::zeros({1, 20, 20})), Catch::Contains("must be positive"));
  CHECK_THROWS_WITH(program.set_likelihood_scale(torch::ones({1, 10, 10})), Catch::Contains("[1, 20, 20]"));
  // The Normal likelihood has a fixed scale: nothing to replace.
  air::Air normal(small());
  CHECK_FALSE(normal.has_likelihood_scale());
  CHECK_THROWS_WITH(normal.set_likelihood_scale(torch::ones({1, 20, 20})), Catch::Contains("no learnt scale"));
  o.likelihood = "bernoulli";
  CHECK_THROWS_WITH(air::Air(o), Catch::Contains("likelihood is \"bernoulli\""));
}
