// Sites, plates and handlers.
#include <thread>

#include <catch2/catch.hpp>

#include <ppl/ppl.hpp>

namespace d = ppl::dist;
namespace h = ppl::handlers;

namespace {

torch::Tensor model(const torch::Tensor& x) {
  auto mu = ppl::sample("mu", d::Normal(0.0, 1.0));
  auto data = ppl::plate("data", x.size(0));
  ppl::observe("x", d::Normal(mu, 0.5), x);
  return mu;
}

}  // namespace

TEST_CASE("trace records sites in order with kind, value, log_prob and location", "[handlers]") {
  auto x = torch::tensor({0.1f, -0.3f, 0.5f});
  auto tr = ppl::trace(model, x);
  REQUIRE(tr.size() == 2);
  const auto& mu = tr.site("mu");
  CHECK(mu.kind == ppl::SiteKind::sample);
  CHECK(mu.reparameterised);
  CHECK_FALSE(mu.observed);
  CHECK(mu.location.short_string().find("handlers_test.cpp:") == 0);
  const auto& obs = tr.site("x");
  CHECK(obs.kind == ppl::SiteKind::observe);
  CHECK(obs.observed);
  CHECK(obs.plates.size() == 1);
  CHECK(obs.plates[0].name == "data");
  CHECK(obs.log_prob().sizes() == c10::IntArrayRef({3}));
  // log_prob_sum is the closed-form joint density.
  const double m = tr.result<torch::Tensor>().item<double>();
  double expected = -0.5 * m * m - 0.5 * std::log(2 * M_PI);
  for (double xi : {0.1, -0.3, 0.5}) expected += -0.5 * std::pow((xi - m) / 0.5, 2) - std::log(0.5) - 0.5 * std::log(2 * M_PI);
  CHECK(tr.log_prob_sum().item<double>() == Approx(expected).epsilon(1e-5));
  CHECK(tr.sites()[0].name == "mu");
  CHECK_THROWS_WITH(tr.site("nope"), Catch::Contains("no site named \"nope\" (sites: \"mu\", \"x\")"));
}

TEST_CASE("a site name used twice in one execution is an error naming both lines", "[handlers]") {
  auto twice = [] {
    ppl::sample("z", d::Normal(0.0, 1.0));
    ppl::sample("z", d::Normal(0.0, 1.0));
  };
  CHECK_THROWS_WITH(ppl::trace(twice), Catch::Contains("site \"z\" is used twice") && Catch::Contains("handlers_test.cpp:"));
  auto looped = [] {
    for (int t = 0; t < 3; ++t) ppl::sample(ppl::addr("z_where", t), d::Normal(0.0, 1.0));
  };
  auto tr = ppl::trace(looped);
  CHECK(tr.contains("z_where/2"));
  CHECK(ppl::addr("z", 1, 2) == "z/1/2");
}

TEST_CASE("plates broadcast distributions and reject disagreeing batch shapes", "[handlers][plate]") {
  auto prog = [] {
    auto outer = ppl::plate("outer", 4);
    auto inner = ppl::plate("inner", 3);
    CHECK(outer.dim() == -1);
    CHECK(inner.dim() == -2);
    auto z = ppl::sample("z", d::Normal(0.0, 1.0));
    CHECK(z.sizes() == c10::IntArrayRef({3, 4}));
    auto w = ppl::sample("w", d::Normal(torch::zeros({2}), 1.0).to_event(1));
    CHECK(w.sizes() == c10::IntArrayRef({3, 4, 2}));
  };
  auto tr = ppl::trace(prog);
  CHECK(tr.site("z").plates.size() == 2);
  CHECK(tr.site("z").plates[0].name == "outer");

  auto bad = [] {
    auto data = ppl::plate("data", 4);
    ppl::sample("z", d::Normal(torch::zeros({5}), 1.0));
  };
  CHECK_THROWS_AS(ppl::trace(bad), ppl::ShapeError);
  CHECK_THROWS_WITH(ppl::trace(bad), Catch::Contains("plate \"data\" (size 4, dim -1): site \"z\"") &&
                                         Catch::Contains("batch shape [5], whose dim -1 is 5, not 4 or 1"));
}

TEST_CASE("plate subsampling scales log-probabilities by size / subsample size", "[handlers][plate]") {
  auto prog = [] {
    auto data = ppl::plate("data", 100, {.subsample_size = 10});
    CHECK(data.indices().numel() == 10);
    ppl::sample("z", d::Normal(0.0, 1.0));
  };
  auto tr = ppl::trace(prog);
  const auto& z = tr.site("z");
  CHECK(z.scale == 10.0);
  CHECK(z.value.numel() == 10);
  CHECK(z.log_prob_sum().item<double>() == Approx(10.0 * z.dist->log_prob(z.value).sum().item<double>()));
}

TEST_CASE("a scoring trace handler records the log-probs a lazy one computes, in its own grad mode",
          "[handlers]") {
  auto loc = torch::tensor({0.3, -1.2}).requires_grad_(true);
  auto prog = [&] {
    auto data = ppl::plate("data", 100, {.subsample_size = 2});
    auto z = ppl::sample("z", d::Normal(loc, 2.0));
    // Gradients off inside the program: the score follows the handler's mode.
    torch::NoGradGuard off;
    ppl::observe("x", d::Normal(loc, 0.5), torch::tensor({0.0, 1.0}));
  };
  auto run = [&](ppl::handlers::TraceHandler& handler) {
    ppl::HandlerScope scope(handler);
    prog();
    return handler.trace();
  };
  ppl::handlers::TraceHandler scoring(/*score_sites=*/true);
  const auto tr = run(scoring);
  for (const auto& s : tr) {
    INFO(s.name);
    CHECK(s.log_prob().requires_grad());
    CHECK(torch::allclose(s.log_prob().detach(), s.dist->log_prob(s.value).detach() * 50.0));
  }
  std::optional<ppl::handlers::TraceHandler> quiet;
  {
    torch::NoGradGuard off;
    quiet.emplace(true);
  }
  const auto q = run(*quiet);
  CHECK_FALSE(q.site("z").log_prob().requires_grad());
  CHECK(torch::allclose(q.site("z").log_prob(), q.site("z").dist->log_prob(q.site("z").value).detach() * 50.0));
}

TEST_CASE("replay supplies values, a replayed value of another shape is an error", "[handlers][replay]") {
  auto x = torch::tensor({0.1f, -0.3f});
  auto guide_tr = ppl::trace([] { return ppl::sample("mu", d::Normal(3.0, 0.1)); });
  auto tr = ppl::trace(h::replay(model, guide_tr), x);
  CHECK(torch::equal(tr.site("mu").value, guide_tr.site("mu").value));

  auto vector_model = [] { ppl::sample("mu", d::Normal(torch::zeros({3}), 1.0).to_event(1)); };
  CHECK_THROWS_WITH(ppl::trace(h::replay(vector_model, guide_tr)),
                    Catch::Contains("replay: site \"mu\"") && Catch::Contains("has shape [] in the replayed trace") &&
                        Catch::Contains("has shape [3]"));
}

TEST_CASE("a replayed value outside the program's support is an error naming the site", "[handlers][replay]") {
  auto guide = [] {
    ppl::sample("k", d::Delta(torch::tensor(7.0)));
    ppl::sample("p", d::Delta(torch::tensor(2.0)));
  };
  auto q = ppl::trace(guide);
  // Scored as given, a Categorical(3) at 7 would be log(1/3), a Beta at 2 NaN.
  auto categorical = [] { ppl::sample("k", d::Categorical(torch::full({3}, 1.0 / 3))); };
  CHECK_THROWS_AS(ppl::trace(h::replay(categorical, q)), ppl::ArgumentError);
  CHECK_THROWS_WITH(ppl::trace(h::replay(categorical, q)),
                    Catch::Contains("Categorical: value is 7") && Catch::Contains("site \"k\""));
  auto beta = [] { ppl::sample("p", d::Beta(2.0, 2.0)); };
  CHECK_THROWS_WITH(ppl::trace(h::replay(beta, q)), Catch::Contains("Beta: value is 2") && Catch::Contains("site \"p\""));
}

TEST_CASE("an undefined observed value, a mask of the wrong shape and a plate inside its namesake are errors",
          "[handlers]") {
  auto undefined = [] { ppl::observe("x", d::Normal(0.0, 1.0), torch::Tensor()); };
  CHECK_THROWS_AS(undefined(), ppl::ArgumentError);
  CHECK_THROWS_WITH(undefined(), Catch::Contains("observed value is an undefined tensor") &&
                                     Catch::Contains("site \"x\", handlers_test.cpp:"));
  auto bad_mask = [] {
    auto data = ppl::plate("data", 5);
    ppl::observe("x", d::Normal(0.0, 1.0), torch::zeros({5}), {.mask = torch::ones({3, 2}, torch::kBool)});
  };
  CHECK_THROWS_AS(ppl::trace(bad_mask), ppl::ShapeError);
  CHECK_THROWS_WITH(ppl::trace(bad_mask), Catch::Contains("site \"x\"") && Catch::Contains("mask has shape [3, 2]") &&
                                              Catch::Contains("batch shape [5]"));
  auto good_mask = [] {
    auto data = ppl::plate("data", 5);
    ppl::observe("x", d::Normal(0.0, 1.0), torch::zeros({5}), {.mask = torch::ones({5}, torch::kBool)});
  };
  CHECK_NOTHROW(ppl::trace(good_mask));
  auto nested = [] {
    auto outer = ppl::plate("data", 3);
    auto inner = ppl::plate("data", 2);
  };
  CHECK_THROWS_AS(nested(), ppl::SiteError);
  CHECK_THROWS_WITH(nested(), Catch::Contains("plate \"data\": an enclosing plate has the same name"));
  // One after the other, the same name is fine.
  auto sequential = [] {
    { auto a = ppl::plate("data", 3); }
    { auto b = ppl::plate("data", 2); }
  };
  CHECK_NOTHROW(sequential());
}

TEST_CASE("condition observes sites, conditioning on an unknown name is an error", "[handlers][condition]") {
  auto x = torch::tensor({0.1f, -0.3f});
  auto conditioned = h::condition(model, {{"mu", torch::tensor(0.25f)}});
  auto tr = ppl::trace(conditioned, x);
  CHECK(tr.site("mu").observed);
  CHECK(tr.site("mu").value.item<float>() == 0.25f);
  auto wrong = h::condition(model, {{"sigma", torch::tensor(1.0f)}});
  CHECK_THROWS_AS(wrong(x), ppl::SiteError);
  CHECK_THROWS_WITH(wrong(x), Catch::Contains("never visited site \"sigma\""));
}

TEST_CASE("observed values outside the support name the site and line", "[handlers]") {
  auto prog = [] { ppl::observe("coin", d::Bernoulli(0.3), torch::tensor(2.0f)); };
  CHECK_THROWS_AS(prog(), ppl::ArgumentError);
  CHECK_THROWS_WITH(prog(), Catch::Contains("Bernoulli: value is 2, but must be 0 or 1 (the support) (site \"coin\", "
                                            "handlers_test.cpp:"));
  auto bad_param = [] { ppl::sample("z_what", d::Normal(0.0, torch::tensor({1.0, -0.5}))); };
  CHECK_THROWS_WITH(bad_param(), Catch::StartsWith("Normal: scale[1] is -0.5, but must be positive (site \"z_what\", "
                                                   "handlers_test.cpp:"));
  auto bad_shape = [] { ppl::observe("x", d::Normal(torch::zeros({3}), 1.0).to_event(1), torch::zeros({4})); };
  CHECK_THROWS_AS(bad_shape(), ppl::ShapeError);
}

TEST_CASE("block hides sites from outer handlers, scale and mask change log-probs", "[handlers]") {
  auto x = torch::tensor({0.1f, -0.3f});
  auto tr = ppl::trace(h::block(model, {"mu"}), x);
  CHECK_FALSE(tr.contains("mu"));
  CHECK(tr.contains("x"));
  CHECK(ppl::trace(h::block(model), x).empty());

  auto base = ppl::trace(h::seed(model, 5), x);
  auto scaled = ppl::trace(h::scale(h::seed(model, 5), 0.5), x);
  CHECK(scaled.log_prob_sum().item<double>() == Approx(0.5 * base.log_prob_sum().item<double>()));
  auto masked = ppl::trace(h::mask(h::seed(model, 5), torch::tensor({true, false})), x);
  CHECK(masked.site("x").log_prob()[1].item<double>() == 0.0);
  CHECK(masked.site("x").log_prob()[0].item<double>() == Approx(base.site("x").log_prob()[0].item<double>()));
}

TEST_CASE("handlers compose in any order", "[handlers]") {
  auto x = torch::tensor({0.1f, -0.3f});
  auto a = ppl::trace(h::seed(h::condition(model, {{"mu", torch::tensor(0.2f)}}), 1), x);
  auto b = ppl::trace(h::condition(h::seed(model, 1), {{"mu", torch::tensor(0.2f)}}), x);
  CHECK(a.log_prob_sum().item<double>() == Approx(b.log_prob_sum().item<double>()));
  auto c = ppl::trace(h::scale(h::block(model, {"x"}), 2.0), x);
  CHECK(c.size() == 1);
}

TEST_CASE("seed makes programs deterministic, per thread", "[handlers][seed]") {
  auto x = torch::tensor({0.1f, -0.3f});
  auto run = [&] { return ppl::trace(h::seed(model, 42), x).site("mu").value.item<float>(); };
  const float first = run();
  CHECK(run() == first);
  std::vector<float> results(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 20; ++k) results[i] = run();
    });
  for (auto& t : threads) t.join();
  for (float r : results) CHECK(r == first);
}

TEST_CASE("handler stacks are per thread", "[handlers]") {
  std::atomic<int> seen_other{0};
  auto traced = [&](int id) {
    auto prog = [id] {
      for (int k = 0; k < 50; ++k) ppl::sample(ppl::addr(id == 0 ? "a" : "b", k), d::Normal(0.0, 1.0));
    };
    auto tr = ppl::trace(prog);
    for (const auto& s : tr)
      if (s.name[0] != (id == 0 ? 'a' : 'b')) ++seen_other;
    CHECK(tr.size() == 50);
  };
  std::thread t0(traced, 0), t1(traced, 1);
  t0.join();
  t1.join();
  CHECK(seen_other == 0);
}
