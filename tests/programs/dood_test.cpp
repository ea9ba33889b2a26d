// DooD: sites of model and guide, ablations, rendering frame, token model,
// options, and a short training smoke run.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <set>

#include <ppl/core/reflect.hpp>
#include <ppl/inference.hpp>
#include <ppl/programs/dood/dood.hpp>
#include <ppl/programs/program.hpp>
#include <ppl/runtime/image.hpp>
#include <ppl/runtime/render.hpp>

#include "program_checks.hpp"

namespace dood = ppl::programs::dood;

namespace {
dood::DoodOptions small() {
  auto o = dood::DoodOptions::defaults();
  o.image_size = 12;
  o.glimpse_size = 12;
  o.steps = 3;
  o.control_points = 3;
  o.render_samples = 20;
  o.rnn_hidden = o.mlp_hidden = o.feature_size = 16;
  o.batch_size = 8;
  return o;
}

struct Traces {
  ppl::Trace guide, model;
};

Traces run(dood::Dood& program, const torch::Tensor& x, uint64_t seed = 3) {
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  Traces t;
  t.guide = ppl::trace(ppl::handlers::seed(guide, seed), x);
  t.model = ppl::trace(ppl::handlers::replay(model, t.guide), x);
  return t;
}

std::vector<std::string> latent_names(const ppl::Trace& tr) {
  std::vector<std::string> names;
  for (const auto& s : tr)
    if (s.kind == ppl::SiteKind::sample && !s.observed) names.push_back(s.name);
  return names;
}

// Images of one random diagonal line each, drawn by the runtime renderer.
torch::Tensor lines(int64_t n, int64_t size) {
  auto pts = torch::rand({n, 1, 2, 2}) * 0.6 + 0.2;
  return ppl::runtime::render_strokes(pts, torch::full({n, 1}, 0.05), torch::full({n, 1}, 0.3),
                                      {.height = size, .width = size, .samples = 30});
}
}  // namespace

TEST_CASE("DooD model and guide visit the same latent sites in the same order", "[dood]") {
  ppl::param_store().clear();
  dood::Dood program(small());
  auto x = torch::rand({5, 1, 12, 12});
  auto t = run(program, x);
  const std::vector<std::string> expected = {"o/0", "l/0", "s/0", "o/1", "l/1", "s/1", "o/2", "l/2", "s/2"};
  CHECK(latent_names(t.guide) == expected);
  CHECK(latent_names(t.model) == expected);
  for (const auto& name : expected) {
    INFO(name);
    CHECK(torch::equal(t.model.site(name).value, t.guide.site(name).value));
    CHECK(t.model.site(name).log_prob().isfinite().all().item<bool>());
    CHECK(t.model.site(name).log_prob().sizes() == c10::IntArrayRef({5}));
  }
  CHECK(t.guide.site("o/0").value.sizes() == c10::IntArrayRef({5}));
  CHECK(t.guide.site("l/1").value.sizes() == c10::IntArrayRef({5, 4}));
  CHECK(t.guide.site("s/2").value.sizes() == c10::IntArrayRef({5, 3, 2}));
  CHECK(t.guide.site("o/1").options.baseline.defined());
  CHECK_FALSE(t.guide.site("o/1").reparameterised);
  CHECK(t.guide.site("l/1").reparameterised);
  CHECK(t.guide.site("s/1").reparameterised);
  // Once off, a step stays off.
  for (int k = 1; k < 3; ++k)
    CHECK((t.guide.site(ppl::addr("o", k)).value <= t.guide.site(ppl::addr("o", k - 1)).value).all().item<bool>());
  CHECK(t.model.site("x").log_prob().sizes() == c10::IntArrayRef({5}));
  CHECK(t.model.result<torch::Tensor>().sizes() == x.sizes());
  // The step canvases end at the model's canvas.
  auto steps = program.step_canvases(t.model);
  CHECK(steps.sizes() == c10::IntArrayRef({3, 5, 1, 12, 12}));
  CHECK(torch::allclose(steps[2], t.model.result<torch::Tensor>(), 1e-5, 1e-6));
  ppl::infer::check_pairing({t.guide, t.model});
  // The stroke count is the number of steps the guide switched on.
  auto counts = ppl::handlers::seed([&](const torch::Tensor& img) { return program.infer_strokes(img); }, 3)(x);
  auto on = t.guide.site("o/0").value + t.guide.site("o/1").value + t.guide.site("o/2").value;
  CHECK(torch::equal(counts, on));
  CHECK(program.evaluate(x, {}).at("mean_strokes").get<double>() >= 0.0);
}

TEST_CASE("DooD: a step that is off draws nothing and its layout and stroke score zero", "[dood]") {
  ppl::param_store().clear();
  auto o = small();
  o.presence_init_bias = -8.0;  // almost surely off from the first step
  dood::Dood program(o);
  auto x = torch::rand({4, 1, 12, 12});
  auto t = run(program, x);
  auto off = t.guide.site("o/0").value < 0.5;
  REQUIRE(off.all().item<bool>());
  CHECK((t.model.site("l/0").log_prob() == 0).all().item<bool>());
  CHECK((t.model.site("s/2").log_prob() == 0).all().item<bool>());
  CHECK((t.model.result<torch::Tensor>() == 0).all().item<bool>());
}

TEST_CASE("DooD's on/off heads start at their own initial biases, guide and prior", "[dood]") {
  ppl::param_store().clear();
  const auto defaults = dood::DoodOptions::defaults();
  CHECK(defaults.presence_init_bias == 8.0);
  CHECK(defaults.prior_presence_init_bias == 8.0);
  auto o = small();
  o.presence_init_bias = 2.0;  // the authors' MNIST values
  o.prior_presence_init_bias = 1.0;
  dood::Dood program(o);
  auto x = torch::rand({64, 1, 12, 12});
  auto t = run(program, x);
  // Step 0 is alive for every image: log q(o) and log p(o) are those of Bernoulli(sigmoid(bias)).
  auto expect = [](const torch::Tensor& on, double bias) {
    const double p = 1.0 / (1.0 + std::exp(-bias));
    return torch::where(on > 0.5, torch::full_like(on, std::log(p)), torch::full_like(on, std::log1p(-p)));
  };
  const auto& on = t.guide.site("o/0").value;
  CHECK(torch::allclose(t.guide.site("o/0").log_prob(), expect(on, 2.0), 1e-5, 1e-5));
  CHECK(torch::allclose(t.model.site("o/0").log_prob(), expect(on, 1.0), 1e-5, 1e-5));
  // sigmoid(2) = 0.88: most of the 64 steps are on, not all.
  CHECK(on.sum().item<double>() > 40);
  CHECK(on.sum().item<double>() < 64);
}

TEST_CASE("DooD presence_from_residual: the guide's o head reads the residual, not the RNN state", "[dood]") {
  torch::manual_seed(11);
  auto x = torch::rand({4, 1, 12, 12});
  for (bool from_residual : {false, true}) {
    INFO("presence_from_residual " << from_residual);
    ppl::param_store().clear();
    auto o = small();
    o.presence_from_residual = from_residual;
    dood::Dood program(o);
    auto first = program.nets()->q_o->ptr(0)->as<torch::nn::Linear>();
    CHECK(first->weight.size(1) == (from_residual ? o.feature_size + 1 : o.rnn_hidden + 2 * o.feature_size));
    // Give the o head weights that read its inputs and a zero bias (so that
    // q(o_0) is not saturated near 1), then move h^l_0 (the layout GRU's
    // bias): only a head that reads h changes q(o_0).
    {
      torch::NoGradGuard no_grad;
      auto last = program.nets()->q_o->ptr(program.nets()->q_o->size() - 1)->as<torch::nn::Linear>();
      last->weight.normal_(0, 1);
      last->bias.zero_();
    }
    auto prob0 = [&] {
      auto t = run(program, x);
      return t.guide.site("o/0").dist->log_prob(torch::ones({4})).exp();
    };
    auto before = prob0();
    {
      torch::NoGradGuard no_grad;
      program.nets()->layout_rnn->bias_ih.add_(0.5);
    }
    auto after = prob0();
    const double moved = (before - after).abs().max().item<double>();
    if (from_residual)
      CHECK(moved == 0.0);
    else
      CHECK(moved > 1e-4);
  }
  auto o = small();
  o.execution_guidance = false;
  o.presence_from_residual = true;
  CHECK_THROWS_WITH(dood::Dood(o), Catch::Contains("presence_from_residual") && Catch::Contains("execution_guidance"));
}

TEST_CASE("DooD normalise_signal turns on NVIL's variance normalisation with the authors' decay", "[dood]") {
  ppl::param_store().clear();
  const auto plain = dood::Dood(small()).elbo_options();
  CHECK_FALSE(plain.normalise_variance);
  CHECK(plain.baseline_decay == ppl::infer::ElboOptions{}.baseline_decay);
  auto o = ppl::options_from_json<dood::DoodOptions>(nlohmann::json{{"normalise_signal", true}}, small());
  CHECK(o.normalise_signal);
  dood::Dood program(o);
  const auto e = program.elbo_options();
  CHECK(e.normalise_variance);
  CHECK(e.baseline_decay == 0.8);
  CHECK(program.options().at("normalise_signal") == true);
  // Everything else is the default objective (DooD's beta is applied by the program).
  CHECK(e.particles == 1);
  CHECK(e.beta.empty());
  CHECK(e.downstream_only);
  CHECK_THROWS_WITH(ppl::options_from_json<dood::DoodOptions>(nlohmann::json{{"normalise_signal", 2}}, small()),
                    Catch::Contains("normalise_signal"));
}

TEST_CASE("DooD beta weighs the latent sites while training, not the likelihood or log p(x)", "[dood]") {
  ppl::param_store().clear();
  dood::Dood program(small());
  auto x = torch::rand({2, 1, 12, 12});
  auto before = run(program, x);
  CHECK(program.kl_weight() == 1.0);
  CHECK(before.model.site("l/0").scale == 1.0);
  program.set_step(1);  // schedules only: no weighting yet
  CHECK(program.kl_weight() == 1.0);
  program.set_training(true);
  auto during = run(program, x);
  CHECK(program.kl_weight() == 4.0);
  for (const auto* tr : {&during.guide, &during.model})
    for (const auto& name : latent_names(*tr)) CHECK(tr->site(name).scale == 4.0);
  CHECK(during.model.site("x").scale == 1.0);
  CHECK(torch::allclose(during.model.site("l/0").log_prob(), 4.0 * before.model.site("l/0").log_prob(), 1e-5, 1e-5));
}

TEST_CASE("DooD beta_signal_only moves beta from the sites into o's learning signal", "[dood]") {
  ppl::param_store().clear();
  CHECK(dood::Dood(small()).elbo_options().signal_kl_weight == 1.0);
  auto o = ppl::options_from_json<dood::DoodOptions>(nlohmann::json{{"beta_signal_only", true}}, small());
  REQUIRE(o.beta_signal_only);
  dood::Dood program(o);
  program.set_training(true);
  CHECK(program.kl_weight() == 1.0);
  auto x = torch::rand({2, 1, 12, 12});
  auto traces = run(program, x);
  for (const auto* tr : {&traces.guide, &traces.model})
    for (const auto& name : latent_names(*tr)) CHECK(tr->site(name).scale == 1.0);
  CHECK(program.elbo_options().signal_kl_weight == o.beta);
  CHECK(program.options().at("beta_signal_only") == true);
}

TEST_CASE("DooD pooled_signal_stats: one running statistic for every o_t, over the images still drawing", "[dood]") {
  ppl::param_store().clear();
  CHECK(dood::Dood(small()).elbo_options().pooled_baselines.empty());
  // An on-bias of 0 makes some images stop early.
  auto o = ppl::options_from_json<dood::DoodOptions>(
      nlohmann::json{{"pooled_signal_stats", true}, {"presence_init_bias", 0.0}}, small());
  REQUIRE(o.pooled_signal_stats);
  dood::Dood program(o);
  CHECK(program.elbo_options().pooled_baselines == std::vector<std::string>{"o/"});
  torch::manual_seed(3);
  auto x = torch::rand({16, 1, 12, 12});
  auto traces = run(program, x);
  // The mask of o_t is "every earlier step was on".
  auto alive = torch::ones({16}, torch::kBool);
  int64_t stopped = 0;
  for (int t = 0; t < o.steps; ++t) {
    const auto& site = traces.guide.site(ppl::addr("o", t));
    REQUIRE(site.mask.defined());
    CHECK(torch::equal(site.mask.view({16}), alive));
    alive = alive.logical_and(site.value.view({16}) > 0.5);
    stopped = 16 - alive.sum().item<int64_t>();
  }
  CHECK(stopped > 0);
  // The objective keeps one statistic under "o/" and none per step.
  ppl::param_store().clear();
  dood::Dood fresh(o);
  ppl::infer::Elbo elbo(fresh.elbo_options());
  elbo.loss([&](const torch::Tensor& v) { return fresh.model(v); }, [&](const torch::Tensor& v) { return fresh.guide(v); }, x);
  ppl::TensorArchive archive;
  elbo.save_state(archive, "");
  std::set<std::string> keys;
  for (const auto& [name, t] : archive.tensors) keys.insert(name);
  CHECK(keys.count("o//mean") == 1);
  CHECK(keys.count("o/0/mean") == 0);
}

TEST_CASE("DooD: evaluation can replace the learnt per-pixel likelihood scale", "[dood]") {
  ppl::param_store().clear();
  dood::Dood program(small());
  REQUIRE(program.has_likelihood_scale());
  auto x = torch::rand({2, 1, 12, 12});
  auto learnt = run(program, x);
  auto mean = learnt.model.result<torch::Tensor>();
  auto laplace = [&](const torch::Tensor& b) {
    return (-(x - mean).abs() / b - torch::log(2 * b)).flatten(1).sum(1);
  };
  // Initially b = 0.01 + 0.99 sigmoid(0) everywhere.
  CHECK(torch::allclose(learnt.model.site("x").log_prob(), laplace(torch::full({1, 12, 12}, 0.505)), 1e-4, 1e-3));
  auto b = torch::linspace(0.1, 0.8, 144).view({12, 12});  // [H, W] is accepted too
  program.set_likelihood_scale(b);
  CHECK(torch::allclose(run(program, x).model.site("x").log_prob(), laplace(b.unsqueeze(0)), 1e-4, 1e-3));
  program.set_likelihood_scale({});
  CHECK(torch::allclose(run(program, x).model.site("x").log_prob(), learnt.model.site("x").log_prob()));
  CHECK_THROWS_WITH(program.set_likelihood_scale(torch::full({1, 12, 12}, NAN)), Catch::Contains("dood"));
}

TEST_CASE("DooD-EG: without execution guidance the prior of later steps ignores the canvas", "[dood]") {
  auto x = torch::rand({3, 1, 12, 12});
  for (bool guidance : {true, false}) {
    INFO("execution_guidance " << guidance);
    ppl::param_store().clear();
    auto o = small();
    o.execution_guidance = guidance;
    dood::Dood program(o);
    auto t = run(program, x);
    REQUIRE((t.guide.site("o/0").value > 0.5).all().item<bool>());
    // Changing the renderer changes the canvas after step 0, not the latents.
    {
      torch::NoGradGuard no_grad;
      auto last = program.nets()->renderer->ptr(program.nets()->renderer->size() - 1)->as<torch::nn::Linear>();
      last->bias.add_(1.5);
    }
    auto model = [&](const torch::Tensor& img) { return program.model(img); };
    auto again = ppl::trace(ppl::handlers::replay(model, t.guide), x);
    CHECK(torch::equal(again.site("l/0").log_prob(), t.model.site("l/0").log_prob()));
    const bool same = torch::equal(again.site("l/1").log_prob(), t.model.site("l/1").log_prob()) &&
                      torch::equal(again.site("s/2").log_prob(), t.model.site("s/2").log_prob());
    CHECK(same == !guidance);
  }
}

TEST_CASE("DooD-SP: without the sequential prior each step has the fixed prior", "[dood]") {
  ppl::param_store().clear();
  auto o = small();
  o.sequential_prior = false;
  dood::Dood program(o);
  auto x = torch::rand({4, 1, 12, 12});
  auto t = run(program, x);
  const std::vector<double> loc = {0.5, 0.0, 0.0, 0.0}, sd = {0.3, 0.5, 0.5, 0.5};
  auto normal = [](double v, double m, double s) {
    return -0.5 * std::pow((v - m) / s, 2) - std::log(s) - 0.5 * std::log(2 * std::numbers::pi);
  };
  for (int k = 0; k < 3; ++k) {
    auto on = t.guide.site(ppl::addr("o", k)).value;
    auto prev = k == 0 ? torch::ones({4}) : t.guide.site(ppl::addr("o", k - 1)).value;
    auto l = t.guide.site(ppl::addr("l", k)).value;
    auto s = t.guide.site(ppl::addr("s", k)).value;
    for (int64_t b = 0; b < 4; ++b) {
      const bool alive = prev[b].item<double>() > 0.5, present = on[b].item<double>() > 0.5;
      const double expected_o = !alive ? 0.0 : std::log(0.5);
      CHECK(t.model.site(ppl::addr("o", k)).log_prob()[b].item<double>() == Approx(expected_o).margin(1e-5));
      double lp_l = 0, lp_s = 0;
      for (int i = 0; i < 4; ++i) lp_l += normal(l[b][i].item<double>(), loc[i], sd[i]);
      for (int64_t i = 0; i < s.size(1); ++i)
        for (int j = 0; j < 2; ++j) lp_s += normal(s[b][i][j].item<double>(), 0.5, 0.2);
      CHECK(t.model.site(ppl::addr("l", k)).log_prob()[b].item<double>() == Approx(present ? lp_l : 0.0).margin(1e-4));
      CHECK(t.model.site(ppl::addr("s", k)).log_prob()[b].item<double>() == Approx(present ? lp_s : 0.0).margin(1e-4));
    }
  }
}

TEST_CASE("DooD: a low sampling temperature narrows the prior's layouts and strokes", "[dood]") {
  ppl::param_store().clear();
  auto o = small();
  o.sequential_prior = false;  // fixed priors: at temperature ~0 every stroke is the prior mean
  dood::Dood program(o);
  auto spread = [&](double temperature) {
    ppl::random::SeedScope seed(11);
    auto images = program.sample_tempered(64, temperature);
    return images.std(0).mean().item<double>();
  };
  const double cold = spread(1e-6), warm = spread(1.0);
  CHECK(cold < 0.5 * warm);
  // Temperature 1 is plain sampling, draw for draw.
  torch::Tensor a, b;
  {
    ppl::random::SeedScope seed(5);
    a = program.sample_tempered(4, 1.0);
  }
  {
    ppl::random::SeedScope seed(5);
    b = program.sample(4);
  }
  CHECK(torch::equal(a, b));
  CHECK_THROWS_WITH(program.sample_tempered(2, 0.0), Catch::Contains("temperature must be positive, got 0"));
}

TEST_CASE("DooD prior_mixtures: layout and stroke priors are correlated Gaussian mixtures", "[dood]") {
  ppl::param_store().clear();
  torch::manual_seed(4);
  auto o = small();
  o.prior_mixtures = 3;
  o.presence_init_bias = o.prior_presence_init_bias = 8.0;  // every step on
  dood::Dood program(o);
  auto x = torch::rand({5, 1, 12, 12});
  auto t = run(program, x);
  ppl::infer::check_pairing({t.guide, t.model});
  for (int k = 0; k < 3; ++k) {
    const auto& l = t.model.site(ppl::addr("l", k));
    const auto& s = t.model.site(ppl::addr("s", k));
    REQUIRE(l.dist->type_name() == "GaussianMixture");
    REQUIRE(s.dist->type_name() == "GaussianMixture");
    CHECK(l.dist->batch_shape() == std::vector<int64_t>{5});
    CHECK(l.dist->event_shape() == std::vector<int64_t>{4});
    CHECK(s.dist->batch_shape() == std::vector<int64_t>{5});
    CHECK(s.dist->event_shape() == std::vector<int64_t>{3, 2});
    CHECK(s.log_prob().isfinite().all().item<bool>());
    // The layout head starts at the authors' bias whatever h^l_t is: component
    // 0 (weight softmax(4, -4, -4)_0) at the identity layout, the others within
    // ~0.001 of it, all with sd = layout_init_sd and no correlation, so
    // log p(l_t) is that of Normal(identity, sd) to within 1e-3.
    const double sd = o.layout_init_sd;
    auto value = t.guide.site(ppl::addr("l", k)).value;
    auto expected = ppl::dist::Normal(torch::tensor({1.0f, 0.0f, 0.0f, 0.0f}), sd).to_event(1).log_prob(value);
    INFO("step " << k);
    CHECK(torch::allclose(l.log_prob(), expected, 0, 1e-3));
  }
  // Gradients of the objective reach the mixture heads.
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto loss = ppl::infer::Elbo().loss(model, guide, x);
  REQUIRE(std::isfinite(loss.item<double>()));
  loss.backward();
  for (const char* head : {"p_l", "p_s"}) {
    INFO(head);
    double norm = 0;
    for (const auto& item : program.nets()->named_parameters())
      if (item.key().rfind(head, 0) == 0 && item.value().grad().defined())
        norm += item.value().grad().norm().item<double>();
    CHECK(norm > 0);
  }
  // Generation draws from the mixtures; a low temperature narrows them.
  auto spread = [&](double temperature) {
    ppl::random::SeedScope seed(2);
    return program.sample_tempered(64, temperature).std(0).mean().item<double>();
  };
  CHECK(spread(1e-6) < spread(1.0));
  auto bad = small();
  bad.prior_mixtures = -1;
  CHECK_THROWS_WITH(dood::Dood(bad), Catch::Contains("prior_mixtures is -1"));
  bad.prior_mixtures = 2;
  bad.sequential_prior = false;
  CHECK_THROWS_WITH(dood::Dood(bad), Catch::Contains("prior_mixtures needs sequential_prior"));
}

TEST_CASE("DooD correlated_guide: the guide's layouts and points are x-y correlated Gaussians", "[dood]") {
  ppl::param_store().clear();
  torch::manual_seed(6);
  auto o = small();
  o.correlated_guide = true;
  dood::Dood program(o);
  const int64_t n = 2000;
  auto x = torch::rand({n, 1, 12, 12});
  // The layout head starts at the identity with sd = layout_init_sd and no
  // correlation: log q(l_0) is that of the Normal (one component).
  const double sd = o.layout_init_sd;
  auto t = run(program, x);
  ppl::infer::check_pairing({t.guide, t.model});
  const auto& l0 = t.guide.site("l/0");
  REQUIRE(l0.dist->type_name() == "GaussianMixture");
  CHECK(l0.reparameterised);
  CHECK(t.guide.site("s/1").reparameterised);
  CHECK(t.guide.site("s/1").dist->event_shape() == std::vector<int64_t>{3, 2});
  auto expected = ppl::dist::Normal(torch::tensor({1.0f, 0.0f, 0.0f, 0.0f}), sd).to_event(1).log_prob(l0.value);
  auto on = t.guide.site("o/0").value > 0.5;
  CHECK(torch::allclose(l0.log_prob(), torch::where(on, expected, torch::zeros_like(expected)), 1e-5, 1e-4));
  // A correlation entry c in the last layer's bias: (x, y) of l_0 has
  // covariance [[sd^2, sd c], [sd c, sd^2 + c^2]], so correlation c / sqrt(sd^2 + c^2).
  const double c = 0.3;
  {
    torch::NoGradGuard no_grad;
    auto last = program.nets()->q_l->ptr(program.nets()->q_l->size() - 1)->as<torch::nn::Linear>();
    last->bias[2 * 4] = std::atanh(c / 0.5);  // the entry is 0.5 tanh(raw)
  }
  auto draws = run(program, x, 9).guide.site("l/0").value;  // [n, 4] = (s, x, y, r)
  auto xy = draws.narrow(1, 1, 2);
  auto centred = xy - xy.mean(0);
  auto cov = torch::matmul(centred.t(), centred) / (n - 1);
  const double corr = (cov[0][1] / (cov[0][0] * cov[1][1]).sqrt()).item<double>();
  INFO("sample correlation " << corr);
  CHECK(corr == Approx(c / std::sqrt(sd * sd + c * c)).margin(0.03));
  CHECK(cov[0][0].item<double>() == Approx(sd * sd).epsilon(0.1));
}

TEST_CASE("DooD squash_layout and layout_init_sd: layout means in the authors' ranges, the spread they start with",
          "[dood]") {
  ppl::param_store().clear();
  torch::manual_seed(5);
  const int64_t n = 16;
  auto x = torch::rand({n, 1, 12, 12});
  // The heads' last layers start at zero: the identity glimpse, each sd layout_init_sd.
  auto starts_at = [&](const ppl::Trace& tr, const torch::Tensor& loc, double sd, double tol) {
    const auto& l = tr.site("l/0");
    return torch::allclose(l.dist->mean(), loc.expand({n, 4}), tol, tol) &&
           torch::allclose(l.dist->variance().sqrt(), torch::full({n, 4}, sd), 1e-5, 1e-6);
  };
  {
    dood::Dood program(small());
    auto t = run(program, x);
    CHECK(dood::DoodOptions::defaults().layout_init_sd == 0.104);
    CHECK(starts_at(t.guide, torch::tensor({1.0, 0.0, 0.0, 0.0}), 0.104, 1e-6));
    CHECK(starts_at(t.model, torch::tensor({1.0, 0.0, 0.0, 0.0}), 0.104, 1e-6));
  }
  auto o = small();
  o.squash_layout = true;
  o.layout_init_sd = 0.018;  // the authors' sigmoid(-4)
  const double s0 = 0.25 + 0.75 / (1 + std::exp(-6.0));
  const auto start = torch::tensor({s0, 0.0, 0.0, 0.0});
  ppl::param_store().clear();
  dood::Dood program(o);
  auto t = run(program, x);
  CHECK(starts_at(t.guide, start, 0.018, 1e-6));
  CHECK(starts_at(t.model, start, 0.018, 1e-6));
  // Whatever the head says, the means stay in s [0.25, 1], x and y [-0.8, 0.8], r [-pi/4, pi/4].
  {
    torch::NoGradGuard no_grad;
    for (auto& p : program.nets()->q_l->parameters()) p.normal_(0, 100);
  }
  auto m = run(program, x).guide.site("l/0").dist->mean();
  const auto lo = torch::tensor({0.25, -0.8, -0.8, -std::numbers::pi / 4});
  const auto hi = torch::tensor({1.0, 0.8, 0.8, std::numbers::pi / 4});
  CHECK((m >= lo - 1e-6).all().item<bool>());
  CHECK((m <= hi + 1e-6).all().item<bool>());
  // Saturated heads reach the ends of the ranges.
  CHECK(((m - lo).abs().amin(0) < 1e-3).logical_or((m - hi).abs().amin(0) < 1e-3).all().item<bool>());
  // The mixture prior starts there too (component 0 holds the weight, the
  // others sit within 0.001 of it before the squash).
  auto mixed = o;
  mixed.prior_mixtures = 3;
  ppl::param_store().clear();
  dood::Dood with_mixtures(mixed);
  CHECK(torch::allclose(run(with_mixtures, x).model.site("l/0").dist->mean(), start.expand({n, 4}), 1e-3, 1e-3));
  auto bad = small();
  bad.layout_init_sd = 0.6;
  CHECK_THROWS_WITH(dood::Dood(bad), Catch::Contains("layout_init_sd is 0.6"));
}

TEST_CASE("DooD likelihood_scale_init: every pixel's Laplace scale starts there", "[dood]") {
  ppl::param_store().clear();
  torch::manual_seed(6);
  auto x = torch::rand({4, 1, 12, 12});
  // Laplace(loc, b) has variance 2 b^2.
  auto start_scale = [&](const dood::DoodOptions& o) {
    ppl::param_store().clear();
    dood::Dood program(o);
    return (run(program, x).model.site("x").dist->variance() / 2).sqrt();
  };
  CHECK(dood::DoodOptions::defaults().likelihood_scale_init == 0.505);  // the authors' raw 0
  CHECK(torch::allclose(start_scale(small()), torch::full({4, 1, 12, 12}, 0.505), 1e-5, 1e-6));
  auto o = small();
  o.likelihood_scale_init = 0.1;
  CHECK(torch::allclose(start_scale(o), torch::full({4, 1, 12, 12}, 0.1), 1e-5, 1e-6));
  for (double bad : {0.01, 1.0, -0.2}) {
    o.likelihood_scale_init = bad;
    CHECK_THROWS_WITH(dood::Dood(o), Catch::Contains("likelihood_scale_init is") && Catch::Contains("(0.01, 1)"));
  }
}

TEST_CASE("DooD likelihood_blur: while training the likelihood compares image and canvas blurred, less each step",
          "[dood]") {
  ppl::param_store().clear();
  torch::manual_seed(7);
  auto o = small();
  o.likelihood_blur = 2.0;
  o.likelihood_blur_steps = 100;
  dood::Dood program(o);
  const auto x = lines(2, 12);
  const auto plain = run(program, x);
  const auto canvas = plain.model.result<torch::Tensor>();
  CHECK(program.likelihood_blur_now() == 0.0);  // not training: log p(x) is exact
  CHECK(torch::equal(plain.model.site("x").value, x));
  program.set_training(true);
  auto at = [&](int64_t step) {
    program.set_step(step);
    return program.likelihood_blur_now();
  };
  CHECK(at(0) == Approx(2.0));
  CHECK(at(25) == Approx(1.5));
  const auto blurred = run(program, x);  // the same seed: the same draws and canvas
  REQUIRE(torch::allclose(blurred.model.result<torch::Tensor>(), canvas, 1e-6, 1e-6));
  const auto& site = blurred.model.site("x");
  const auto want_x = ppl::runtime::gaussian_blur(x, 1.5), want_mean = ppl::runtime::gaussian_blur(canvas, 1.5);
  CHECK(torch::allclose(site.value, want_x, 1e-6, 1e-7));
  CHECK(torch::allclose(site.dist->mean(), want_mean, 1e-6, 1e-7));
  // Laplace(mean, 0.505) at the blurred image, every pixel.
  const auto laplace = (-(want_x - want_mean).abs() / 0.505 - std::log(2 * 0.505)).flatten(1).sum(1);
  CHECK(torch::allclose(site.log_prob(), laplace, 1e-4, 1e-3));
  CHECK(at(99) == Approx(0.02));
  CHECK(at(100) == 0.0);
  CHECK(torch::equal(run(program, x).model.site("x").value, x));
  CHECK(dood::DoodOptions::defaults().likelihood_blur == 0.0);
  auto bad = small();
  bad.likelihood_blur = -1.0;
  CHECK_THROWS_WITH(dood::Dood(bad), Catch::Contains("likelihood_blur is -1"));
  bad.likelihood_blur = 2.0;
  CHECK_THROWS_WITH(dood::Dood(bad), Catch::Contains("likelihood_blur_steps is 0"));
}

TEST_CASE("DooD renderer_ranges \"authors\": their code's ranges and start; detach_stroke_max keeps the image",
          "[dood]") {
  ppl::param_store().clear();
  torch::manual_seed(8);
  auto o = small();
  o.renderer_ranges = "authors";
  dood::Dood program(o);
  auto l = torch::rand({5, 4}), s = torch::rand({5, 3, 2});
  auto rp = program.render_params(l, s);
  auto sigmoid = [](double v) { return 1 / (1 + std::exp(-v)); };
  CHECK(torch::allclose(rp.sigma, torch::full({5}, 0.005 + 0.035 * sigmoid(-2.0)), 1e-6, 1e-7));
  CHECK(torch::allclose(rp.omega0, torch::full({5}, 0.1 + 0.8 * sigmoid(2.0)), 1e-6, 1e-7));
  CHECK(torch::allclose(rp.omega1, torch::full({5}, 0.1 + 1.4 * sigmoid(-1.0)), 1e-6, 1e-7));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : program.nets()->renderer->parameters()) p.normal_(0, 100);
  }
  rp = program.render_params(l, s);
  CHECK(rp.sigma.min().item<double>() >= 0.005 - 1e-7);
  CHECK(rp.sigma.max().item<double>() <= 0.04 + 1e-7);
  CHECK(rp.omega0.max().item<double>() <= 0.9 + 1e-7);
  CHECK(rp.omega1.max().item<double>() <= 1.5 + 1e-7);
  CHECK(rp.omega1.max().item<double>() > 0.7);  // beyond the supplement's range
  // Holding the max fixed changes gradients only (tests/runtime/render_test.cpp): the image is the same.
  auto held = small();
  held.detach_stroke_max = true;
  ppl::param_store().clear();
  dood::Dood a(small());
  auto pts = torch::rand({2, 3, 3, 2}) * 0.5 + 0.25;
  auto sig = torch::full({2, 3}, 0.02), om = torch::full({2, 3}, 0.5);
  auto lay = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f}).expand({2, 3, 4});
  auto img_a = a.render(lay, pts, sig, om);
  ppl::param_store().clear();
  dood::Dood b(held);
  CHECK(torch::equal(img_a, b.render(lay, pts, sig, om)));
  CHECK(b.options().at("detach_stroke_max") == true);
  auto bad = small();
  bad.renderer_ranges = "paper";
  CHECK_THROWS_WITH(dood::Dood(bad), Catch::Contains("renderer_ranges is \"paper\""));
}

TEST_CASE("DooD presence_learning_rate sets the guide's o head apart from its baseline", "[dood]") {
  ppl::param_store().clear();
  auto lr_of = [](const dood::Dood& program, const std::string& prefix) {
    for (const auto& g : program.param_groups())
      if (g.prefix == prefix) return g.lr;
    FAIL("no parameter group " << prefix);
    return 0.0;
  };
  dood::Dood same(small());
  CHECK(lr_of(same, "dood.q_o") == 1e-3);
  CHECK(lr_of(same, "dood.bl_") == 1e-3);
  auto o = small();
  o.presence_learning_rate = 1e-4;  // the authors' o head; their baseline stays at 1e-3
  ppl::param_store().clear();
  dood::Dood apart(o);
  CHECK(lr_of(apart, "dood.q_o") == 1e-4);
  CHECK(lr_of(apart, "dood.bl_") == 1e-3);
  CHECK(lr_of(apart, "") == 1e-4);
  o.presence_learning_rate = -1;
  CHECK_THROWS_WITH(dood::Dood(o), Catch::Contains("presence_learning_rate is -1"));
}

TEST_CASE("DooD maps glimpse control points to the image through the layout", "[dood]") {
  auto p = torch::tensor({{{0.0, 0.0}, {0.5, 0.5}, {1.0, 1.0}}});
  // Identity layout: the glimpse is the image (up to the half-pixel grid shift).
  auto id = dood::glimpse_to_image(p, torch::tensor({{1.0, 0.0, 0.0, 0.0}}), 50);
  CHECK(torch::allclose(id, p - 0.01, 1e-6, 1e-6));
  // s = 0.5 centred at (0.5, 0) in [-1, 1]: glimpse corner (0, 0) is image
  // point (0, -0.5), i.e. (0.5, 0.25) in [0, 1].
  auto half = dood::glimpse_to_image(p, torch::tensor({{0.5, 0.5, 0.0, 0.0}}), 50);
  CHECK(half[0][0][0].item<double>() == Approx(0.49));
  CHECK(half[0][0][1].item<double>() == Approx(0.24));
  CHECK(half[0][2][0].item<double>() == Approx(0.99));
  CHECK(half[0][2][1].item<double>() == Approx(0.74));
  // A quarter turn maps the glimpse's +x direction onto the image's +y.
  auto turn = dood::glimpse_to_image(torch::tensor({{{1.0, 0.5}}}), torch::tensor({{1.0, 0.0, 0.0, std::numbers::pi / 2}}), 50);
  CHECK(turn[0][0][0].item<double>() == Approx(0.49).margin(1e-6));
  CHECK(turn[0][0][1].item<double>() == Approx(0.99).margin(1e-6));
}

TEST_CASE("DooD token model: identity at zero noise, ranges, closed forms", "[dood]") {
  auto pts = torch::rand({6, 3, 5, 2});
  auto id = dood::TokenAffine::identity(6);
  CHECK(torch::allclose(dood::apply_token_affine(pts, id), pts, 1e-6, 1e-6));
  CHECK(torch::allclose(dood::token_log_prob(pts, pts, id, 1e-3),
                        torch::full({6}, 30 * (-std::log(1e-3) - 0.5 * std::log(2 * std::numbers::pi))), 1e-4, 1e-3));
  // Hand-computed transforms about the centre (0.5, 0.5).
  auto one = [](double sx, double sy, double rot, double hx, double hy, double dx, double dy) {
    return dood::TokenAffine{torch::tensor({{dx, dy}}), torch::tensor({{sx, sy}}), torch::tensor({rot}),
                             torch::tensor({{hx, hy}})};
  };
  auto q = torch::tensor({{{1.0, 0.5}, {0.5, 1.0}, {1.0, 1.0}}});
  auto rotated = dood::apply_token_affine(q, one(1, 1, std::numbers::pi / 2, 0, 0, 0, 0));
  CHECK(torch::allclose(rotated[0][0], torch::tensor({0.5, 1.0}), 1e-6, 1e-6));
  auto scaled = dood::apply_token_affine(q, one(0.8, 1.2, 0, 0, 0, 0.1, -0.1));
  CHECK(torch::allclose(scaled[0][2], torch::tensor({0.5 + 0.4 + 0.1, 0.5 + 0.6 - 0.1}), 1e-6, 1e-6));
  auto sheared = dood::apply_token_affine(q, one(1, 1, 0, std::numbers::pi / 4, 0, 0, 0));
  CHECK(torch::allclose(sheared[0][1], torch::tensor({1.0, 1.0}), 1e-6, 1e-6));
  // Draws stay in the documented ranges and have the uniform density.
  auto a = dood::sample_token_affine(2000);
  CHECK((a.shift.abs() <= 0.2).all().item<bool>());
  CHECK(((a.scale >= 0.8).logical_and(a.scale <= 1.2)).all().item<bool>());
  CHECK((a.rotation.abs() <= std::numbers::pi / 4).all().item<bool>());
  CHECK((a.shear.abs() <= std::numbers::pi / 4).all().item<bool>());
  CHECK(a.shift.abs().max().item<double>() > 0.19);
  CHECK(a.scale.min().item<double>() < 0.81);
  const double lp = -2 * std::log(0.4) - 2 * std::log(0.4) - 3 * std::log(std::numbers::pi / 2);
  CHECK(dood::token_affine_log_prob(a)[0].item<double>() == Approx(lp));
  auto out = one(1.3, 1, 0, 0, 0, 0, 0);
  CHECK(std::isinf(dood::token_affine_log_prob(out)[0].item<double>()));
  // The centre moves only by the shift (plus motor noise).
  auto centre = torch::full({500, 1, 2}, 0.5);
  auto token = dood::token_model(centre, 0.0);
  CHECK(((token - 0.5).abs() <= 0.2 + 1e-6).all().item<bool>());
  auto noisy = dood::token_model(centre, 1e-3);
  CHECK(((noisy - 0.5).abs() <= 0.21).all().item<bool>());
}

TEST_CASE("DooD samples, reconstructions, parameter groups and options round trip", "[dood]") {
  ppl::param_store().clear();
  dood::Dood program(small());
  CHECK(program.sample(3).sizes() == c10::IntArrayRef({3, 1, 12, 12}));
  auto x = torch::rand({2, 1, 12, 12});
  auto r = program.reconstruct(x);
  CHECK(r.sizes() == x.sizes());
  CHECK(((r >= 0).logical_and(r <= 1)).all().item<bool>());
  auto groups = program.param_groups();
  REQUIRE(groups.size() == 3);
  CHECK(groups[0].lr == 1e-3);
  CHECK(groups.back().prefix.empty());
  CHECK(groups.back().lr == 1e-4);
  for (const auto& g : groups) {
    if (g.prefix.empty()) continue;
    bool found = false;
    for (const auto& name : ppl::param_store().names()) found = found || name.rfind(g.prefix, 0) == 0;
    CHECK(found);
  }
  const auto& info = ppl::programs::find_program("dood");
  auto j = program.options();
  CHECK(j.at("steps") == 3);
  CHECK(j.at("beta") == 4.0);
  auto again = info.make(j);
  CHECK(again->options() == j);
  auto defaults = info.default_options();
  CHECK(defaults.at("steps") == 6);
  CHECK(defaults.at("control_points") == 5);
  CHECK(defaults.at("sequential_prior") == true);
  CHECK_THROWS_WITH(info.make(nlohmann::json{{"stepz", 2}}), Catch::Contains("unknown key \"stepz\""));
  auto bad = small();
  bad.steps = 0;
  CHECK_THROWS_WITH(dood::Dood(bad), Catch::Contains("steps is 0"));
}

TEST_CASE("DooD: the model replayed on the guide takes its canvas features, with the same loss and gradients",
          "[dood]") {
  ppl::param_store().clear();
  torch::manual_seed(11);
  auto o = small();
  dood::Dood program(o);
  program.set_training(true);
  auto x = lines(4, 12);
  const int64_t b = 4, t = o.steps;
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto step = [&](bool reuse) {
    program.set_feature_reuse(reuse);
    const auto before = program.cnn_images();
    auto out = ppl::test::elbo_gradients(program, x, program.nets()->parameters());
    return std::make_pair(out, program.cnn_images() - before);
  };
  const auto [recomputed, recomputed_cnn] = step(false);
  const auto [reused, reused_cnn] = step(true);
  // Float rounding: the blank canvas's gradient is summed over the batch in another order.
  ppl::test::check_same_gradients(reused, recomputed);
  // The guide: the target, one blank canvas, then per step the residual and
  // the glimpse, and the canvas from step 1 on. Without reuse every image's
  // canvas of every step, in the guide and again in the model.
  CHECK(reused_cnn == b + 1 + 2 * b * t + b * (t - 1));
  CHECK(recomputed_cnn == b + 3 * b * t + b * t);
  program.set_feature_reuse(true);

  // Draws other than the guide's latest: the model recomputes the canvases
  // after the first draw (the blank one is the same for any draws), to the same values.
  auto first = ppl::trace(ppl::handlers::seed(guide, 1), x);
  auto second = ppl::trace(ppl::handlers::seed(guide, 2), x);
  CHECK_FALSE(torch::equal(first.site("s/0").value, second.site("s/0").value));
  const auto before = program.cnn_images();
  auto on_first = ppl::trace(ppl::handlers::replay(model, first), x);
  CHECK(program.cnn_images() - before == b * (t - 1));
  program.set_feature_reuse(false);
  auto again = ppl::trace(ppl::handlers::replay(model, first), x);
  CHECK(torch::allclose(on_first.log_prob_sum(), again.log_prob_sum()));
  program.set_feature_reuse(true);
  // A guide run without gradients does not serve a model that needs them.
  {
    torch::NoGradGuard no_grad;
    second = ppl::trace(guide, x);
  }
  const auto before_grad = program.cnn_images();
  auto with_grad = ppl::trace(ppl::handlers::replay(model, second), x);
  CHECK(program.cnn_images() - before_grad == 1 + b * (t - 1));
  CHECK(with_grad.log_prob_sum().requires_grad());
  // Nor once a parameter has changed.
  second = ppl::trace(guide, x);
  {
    torch::NoGradGuard no_grad;
    program.nets()->image_cnn->parameters()[0].add_(1e-3);
  }
  const auto before_update = program.cnn_images();
  ppl::trace(ppl::handlers::replay(model, second), x);
  CHECK(program.cnn_images() - before_update == 1 + b * (t - 1));
  // Samples after a guide run of another batch size draw from the prior as before.
  ppl::trace(guide, x);
  CHECK(program.sample(3).sizes() == c10::IntArrayRef({3, 1, 12, 12}));
}

TEST_CASE("DooD: a few SVI steps on small line images lower the loss", "[dood]") {
  ppl::param_store().clear();
  torch::manual_seed(0);
  auto o = small();
  o.steps = 2;
  dood::Dood program(o);
  auto x = lines(16, 12);
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  ppl::infer::Svi svi(model, guide, ppl::infer::Elbo(), ppl::infer::Adam(1e-2));
  std::vector<double> losses;
  for (int i = 0; i < 60; ++i) {
    ppl::random::SeedScope seed(i);
    losses.push_back(svi.step(x));
  }
  auto mean = [&](int from, int to) {
    double s = 0;
    for (int i = from; i < to; ++i) s += losses[i];
    return s / (to - from);
  };
  INFO("first " << mean(0, 10) << " last " << mean(50, 60));
  CHECK(mean(50, 60) < mean(0, 10) - 0.1 * std::abs(mean(0, 10)));
}
