// The sites beyond sample/observe/param: sample with .obs, factor,
// deterministic, and the callable form of plate; and the handlers that
// rewrite sites: substitute, do_, uncondition, scope, scale by a tensor. Each
// against a log joint computed by hand.
#include <cmath>

#include <catch2/catch.hpp>

#include <ppl/ppl.hpp>

namespace d = ppl::dist;
namespace h = ppl::handlers;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

/// log N(x; m, s), written out.
double log_normal(double x, double m, double s) {
  return -0.5 * ((x - m) / s) * ((x - m) / s) - std::log(s) - 0.5 * std::log(2 * M_PI);
}

/// mu ~ N(0, 1); y = 2 mu (deterministic); x_n ~ N(mu, 0.5), observed when
/// x is defined, drawn otherwise; a factor -mu^2 / 2 on top.
torch::Tensor model(const torch::Tensor& x, int64_t n) {
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
  ppl::deterministic("y", 2 * mu);
  ppl::factor("penalty", -0.5 * mu * mu);
  return ppl::plate("data", n, [&](const ppl::Plate&) {
    return ppl::sample("x", d::Normal(mu, 0.5), {.obs = x});
  });
}

}  // namespace

TEST_CASE("sample with .obs observes when given data and draws otherwise, factor and deterministic",
          "[sites]") {
  const auto x = torch::tensor({0.3, -0.2, 1.1}, kF64);
  auto fit = ppl::trace(h::condition(model, {{"mu", torch::tensor(0.4, kF64)}}), x, int64_t{3});
  const auto& xs = fit.site("x");
  CHECK(xs.kind == ppl::SiteKind::observe);
  CHECK(xs.observed);
  CHECK(torch::equal(xs.value, x));
  // The joint by hand: prior, penalty, three observations; y adds nothing.
  double expected = log_normal(0.4, 0, 1) - 0.5 * 0.4 * 0.4;
  for (double v : {0.3, -0.2, 1.1}) expected += log_normal(v, 0.4, 0.5);
  CHECK(fit.log_prob_sum().item<double>() == Approx(expected).epsilon(1e-12));
  const auto& y = fit.site("y");
  CHECK(y.kind == ppl::SiteKind::deterministic);
  CHECK(y.value.item<double>() == Approx(0.8));
  CHECK_FALSE(y.is_random());
  CHECK(fit.site("penalty").log_prob_sum().item<double>() == Approx(-0.08));
  // Deterministic sites survive the JSON round trip.
  auto back = ppl::Trace::from_json(fit.to_json());
  CHECK(back.site("y").kind == ppl::SiteKind::deterministic);
  CHECK(back.log_prob_sum().item<double>() == Approx(expected).epsilon(1e-12));

  // The same model simulates: x is drawn, one value per plate element.
  auto sim = ppl::trace(h::seed(model, 3), torch::Tensor(), int64_t{5});
  CHECK(sim.site("x").kind == ppl::SiteKind::sample);
  CHECK_FALSE(sim.site("x").observed);
  CHECK(sim.site("x").value.sizes() == torch::IntArrayRef({5}));
  CHECK(sim.result<torch::Tensor>().sizes() == torch::IntArrayRef({5}));
  // The plate's callable form returns the body's value and ends with it.
  CHECK(sim.site("x").plates.size() == 1);
  CHECK(ppl::plate("p", 4, [](const ppl::Plate& p) { return p.size(); }) == 4);

  CHECK_THROWS_WITH(ppl::factor("f", torch::tensor(1)), Catch::Contains("factor: log_weight is a Long tensor"));
  CHECK_THROWS_WITH(ppl::deterministic("d", torch::Tensor()), Catch::Contains("value is an undefined tensor") &&
                                                                  Catch::Contains("site \"d\""));
}

TEST_CASE("substitute, do_, uncondition and scope against hand-computed joints", "[handlers]") {
  const auto x = torch::tensor({0.3, -0.2}, kF64);
  const auto mu = torch::tensor(0.7, kF64);
  double observations = 0;
  for (double v : {0.3, -0.2}) observations += log_normal(v, 0.7, 0.5);

  // substitute: mu keeps its prior density at 0.7.
  auto sub = ppl::trace(h::substitute(model, {{"mu", mu}}), x, int64_t{2});
  CHECK(sub.site("mu").kind == ppl::SiteKind::sample);
  CHECK(sub.log_prob_sum().item<double>() ==
        Approx(log_normal(0.7, 0, 1) - 0.5 * 0.49 + observations).epsilon(1e-12));
  // do_: mu is fixed from outside, its prior left out; downstream sites use it.
  auto intervened = ppl::trace(h::do_(model, {{"mu", mu}}), x, int64_t{2});
  CHECK(intervened.site("mu").kind == ppl::SiteKind::deterministic);
  CHECK(intervened.site("y").value.item<double>() == Approx(1.4));
  CHECK(intervened.log_prob_sum().item<double>() == Approx(-0.5 * 0.49 + observations).epsilon(1e-12));
  CHECK_THROWS_AS(ppl::trace(h::do_(model, {{"mu", torch::ones({3}, kF64)}}), x, int64_t{2}), ppl::ShapeError);

  // uncondition: the observed x is drawn instead (and scored at the draw).
  auto free = ppl::trace(h::uncondition(h::substitute(model, {{"mu", mu}})), x, int64_t{2});
  const auto& xs = free.site("x");
  CHECK(xs.kind == ppl::SiteKind::sample);
  CHECK_FALSE(xs.observed);
  CHECK_FALSE(torch::equal(xs.value, x));
  const auto a = xs.value[0].item<double>(), b = xs.value[1].item<double>();
  CHECK(free.log_prob_sum().item<double>() ==
        Approx(log_normal(0.7, 0, 1) - 0.5 * 0.49 + log_normal(a, 0.7, 0.5) + log_normal(b, 0.7, 0.5)).epsilon(1e-12));

  // scope: every site and parameter gets the prefix, so two fits coexist.
  ppl::param_store().clear();
  auto guide = [] {
    auto loc = ppl::param("loc", torch::tensor(0.5, kF64));
    return ppl::sample("mu", d::Normal(loc, 1.0));
  };
  auto one = ppl::trace(h::scope(guide, "fit1"));
  auto two = ppl::trace(h::scope(h::scope(guide, "b"), "fit2"));
  CHECK(one.contains("fit1/mu"));
  CHECK(one.contains("fit1/loc"));
  CHECK(two.contains("fit2/b/mu"));
  CHECK(ppl::param_store().contains("fit1/loc"));
  CHECK(ppl::param_store().contains("fit2/b/loc"));
  CHECK_FALSE(ppl::param_store().contains("loc"));
  // Parameters can be substituted too: the store is not read.
  auto fixed = ppl::trace(h::substitute(guide, {{"loc", torch::tensor(-3.0, kF64)}}));
  CHECK(fixed.site("loc").value.item<double>() == -3.0);
  CHECK_FALSE(ppl::param_store().contains("loc"));
  ppl::param_store().clear();
}

TEST_CASE("scale by a tensor multiplies each element's log-probability", "[handlers]") {
  const auto x = torch::tensor({0.3, -0.2, 1.1}, kF64);
  const auto w = torch::tensor({1.0, 0.0, 2.5}, kF64);
  auto scaled = ppl::trace(h::scale(h::condition(model, {{"mu", torch::tensor(0.4, kF64)}}), w), x, int64_t{3});
  const auto lp = scaled.site("x").log_prob();
  CHECK(lp[0].item<double>() == Approx(log_normal(0.3, 0.4, 0.5)));
  CHECK(lp[1].item<double>() == 0.0);
  CHECK(lp[2].item<double>() == Approx(2.5 * log_normal(1.1, 0.4, 0.5)));
  // mu has no batch: a [3] scale does broadcast with its [] shape, so the
  // site's log-probability is three scaled copies, as in Pyro.
  CHECK(scaled.site("mu").log_prob().sizes() == torch::IntArrayRef({3}));
  auto bad = h::scale(model, torch::ones({2}, kF64));
  CHECK_THROWS_WITH(ppl::trace(bad, x, int64_t{3}),
                    Catch::Contains("scale: site \"x\"") && Catch::Contains("shape [2]") && Catch::Contains("[3]"));
}
