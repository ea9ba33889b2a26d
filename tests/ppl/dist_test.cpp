// Distribution tables: log densities against values computed independently
// (scipy.stats, or the closed form in float128), invalid parameters, sampler
// goodness of fit, and gradients against finite differences.
#include <catch2/catch.hpp>

#include <ppl/core/random.hpp>
#include <ppl/dist.hpp>

#include "test_util.hpp"

#include <ppl/core/handlers.hpp>

namespace d = ppl::dist;
using ppl::test::finite_difference;
using ppl::test::ks_critical;
using ppl::test::ks_statistic;
using ppl::test::t;
using ppl::test::tv;

TEST_CASE("log densities match independently computed values", "[dist]") {
  // Reference numbers: scipy.stats 1.10 logpdf / logpmf; ContinuousBernoulli
  // and RelaxedBernoulli from their closed forms evaluated in numpy.
  ppl::test::check_log_probs({
      {"Normal(0.5, 2) at 1.3", [] { return d::Normal(t(0.5), t(2.0)).clone(); }, t(1.3), -1.6920857137646181},
      {"Normal(-1, 0.1) at -1.05", [] { return d::Normal(t(-1), t(0.1)).clone(); }, t(-1.05), 1.2586465597893726},
      {"Laplace(0.5, 2) at -1.3", [] { return d::Laplace(t(0.5), t(2.0)).clone(); }, t(-1.3), -2.2862943611198907},
      {"Laplace(0, 0.3) at 0.1", [] { return d::Laplace(t(0), t(0.3)).clone(); }, t(0.1), 0.17749229043265746},
      {"Uniform(-1, 2) at 0.5", [] { return d::Uniform(t(-1), t(2)).clone(); }, t(0.5), -1.0986122886681096},
      {"Beta(2.5, 0.7) at 0.3", [] { return d::Beta(t(2.5), t(0.7)).clone(); }, t(0.3), -1.3591020131569613},
      {"Beta(0.5, 0.5) at 0.9", [] { return d::Beta(t(0.5), t(0.5)).clone(); }, t(0.9), 0.05924291847653618},
      {"Gamma(2.5, 1.5) at 0.8", [] { return d::Gamma(t(2.5), t(1.5)).clone(); }, t(0.8), -0.8057354271738228},
      {"Gamma(0.7, 3) at 2", [] { return d::Gamma(t(0.7), t(3.0)).clone(); }, t(2.0), -5.699782798631973},
      {"Bernoulli(0.3) at 1", [] { return d::Bernoulli(t(0.3)).clone(); }, t(1), -1.2039728043259361},
      {"Bernoulli(0.3) at 0", [] { return d::Bernoulli(t(0.3)).clone(); }, t(0), -0.35667494393873245},
      {"Bernoulli(logits -2) at 1", [] { return d::Bernoulli(d::logits(t(-2.0))).clone(); }, t(1), -2.1269280110429727},
      {"Categorical([.2 .5 .3]) at 2", [] { return d::Categorical(tv({0.2, 0.5, 0.3})).clone(); },
       torch::tensor(2, torch::kLong), -1.203972804325936},
      {"Categorical(logits [1 -.5 2]) at 0", [] { return d::Categorical(d::logits(tv({1.0, -0.5, 2.0}))).clone(); },
       torch::tensor(0, torch::kLong), -1.371539031852683},
      {"ContinuousBernoulli(0.8) at 0.3", [] { return d::ContinuousBernoulli(t(0.8)).clone(); }, t(0.3),
       -0.35608972035386144},
      {"ContinuousBernoulli(0.1) at 0.9", [] { return d::ContinuousBernoulli(t(0.1)).clone(); }, t(0.9),
       -1.0725240757695695},
      {"ContinuousBernoulli(0.4999) at 0.3 (Taylor region)", [] { return d::ContinuousBernoulli(t(0.4999)).clone(); },
       t(0.3), 7.999333439982239e-05},
      {"RelaxedBernoulli(T=0.5, p=0.6) at 0.3", [] { return d::RelaxedBernoulli(t(0.5), d::probs(t(0.6))).clone(); },
       t(0.3), -0.6859432563652366},
      {"RelaxedBernoulli(T=2, p=0.2) at 0.8", [] { return d::RelaxedBernoulli(t(2.0), d::probs(t(0.2))).clone(); },
       t(0.8), -1.6641628121233474},
      {"Delta(1.5) at 1.5", [] { return d::Delta(t(1.5)).clone(); }, t(1.5), 0.0},
  });
  CHECK(std::isinf(d::Delta(t(1.5)).log_prob(t(1.0)).item<double>()));
  CHECK(std::isinf(d::Uniform(t(-1), t(2)).log_prob(t(2.5)).item<double>()));
}

TEST_CASE("invalid parameters throw a message naming the distribution, argument and value", "[dist]") {
  ppl::test::check_throws({
      {[] { d::Normal(0.0, tv({1, 2, 3, -0.5})).sample(); }, "Normal: scale[3] is -0.5, but must be positive"},
      {[] { d::Normal(NAN, 1.0).sample(); }, "Normal: loc is nan, but must be finite"},
      {[] { d::Laplace(0.0, 0.0).sample(); }, "Laplace: scale is 0, but must be positive"},
      {[] { d::Uniform(2.0, 1.0).sample(); }, "Uniform: low is 2, but must be less than high (1)"},
      {[] { d::Beta(0.0, 1.0).sample(); }, "Beta: concentration1 is 0, but must be positive"},
      {[] { d::Gamma(1.0, -1.0).sample(); }, "Gamma: rate is -1, but must be positive"},
      {[] { d::Bernoulli(1.5).sample(); }, "Bernoulli: probs is 1.5, but must be in [0, 1]"},
      {[] { d::Categorical(tv({0.5, -0.1})).sample(); }, "Categorical: probs[1] is -0.1"},
      {[] { d::ContinuousBernoulli(-0.1).sample(); }, "ContinuousBernoulli: probs is -0.1, but must be in [0, 1]"},
      {[] { d::RelaxedBernoulli(0.0, d::probs(0.5)).rsample(); }, "RelaxedBernoulli: temperature is 0, but must be positive"},
      {[] { d::Bernoulli(0.5).rsample(); }, "Bernoulli: rsample is not available"},
      {[] { d::Normal(torch::zeros({3}), 1.0).to_event(2); }, "to_event(2) needs 2 batch dimensions"},
      {[] { d::Normal(torch::zeros({3}), torch::ones({4})); }, "do not broadcast"},
      // A multi-dimensional index (torch's nonzero can return a transposed layout).
      {[] {
         auto loc = torch::zeros({16, 1, 3, 3});
         loc[8][0][2][1] = NAN;
         d::Laplace(loc, torch::ones({1, 3, 3})).sample();
       },
       "Laplace: loc[8, 0, 2, 1] is nan, but must be finite"},
  });
  CHECK_THROWS_AS(d::Normal(0.0, -1.0).sample(), ppl::ArgumentError);
}

TEST_CASE("non-finite parameters, non-finite observations and empty categories are checked errors", "[dist]") {
  using ppl::test::sample_at_site;
  CHECK_THROWS_WITH(sample_at_site(d::Normal(0.0, INFINITY)),
                    Catch::Contains("Normal: scale is inf, but must be finite (site \"z_what/2\""));
  CHECK_THROWS_WITH(sample_at_site(d::Gamma(INFINITY, 1.0)), Catch::Contains("Gamma: concentration is inf, but must be finite"));
  auto observe = [](const d::Distribution& dist, const torch::Tensor& v) {
    ppl::trace([&] { ppl::observe("x", dist, v); });
  };
  CHECK_THROWS_WITH(observe(d::Normal(0.0, 1.0), t(INFINITY)),
                    Catch::Contains("Normal: value is inf, but must be finite (the support) (site \"x\", dist_test.cpp:"));
  CHECK_THROWS_WITH(observe(d::Gamma(2.0, 1.0), tv({1.0, INFINITY})),
                    Catch::Contains("Gamma: value[1] is inf, but must be positive and finite (the support)"));
  CHECK_THROWS_WITH(sample_at_site(d::Categorical(torch::zeros({2, 3}))),
                    Catch::Contains("Categorical: sum(probs)[0] is 0, but must be positive (site \"z_what/2\""));
  CHECK_THROWS_WITH(sample_at_site(d::Categorical(d::logits(torch::full({3}, -INFINITY)))),
                    Catch::Contains("Categorical: max(logits) is -inf, but must be greater than -inf (site \"z_what/2\""));
  CHECK_THROWS_AS(d::Categorical(torch::zeros({3})).sample(), ppl::ArgumentError);
  // Masked elements may hold placeholders, infinities included.
  ppl::trace([&] { ppl::observe("y", d::Normal(0.0, 1.0), tv({0.5, INFINITY}), {.mask = torch::tensor({true, false})}); });
}

TEST_CASE("shapes: batch, event, to_event, expand, sample shapes", "[dist]") {
  auto n = d::Normal(torch::zeros({4, 3}), 1.0);
  CHECK(n.batch_shape() == std::vector<int64_t>{4, 3});
  CHECK(n.event_shape().empty());
  auto e = n.to_event(1);
  CHECK(e.batch_shape() == std::vector<int64_t>{4});
  CHECK(e.event_shape() == std::vector<int64_t>{3});
  CHECK(e.sample({5}).sizes() == c10::IntArrayRef({5, 4, 3}));
  CHECK(e.log_prob(torch::zeros({4, 3})).sizes() == c10::IntArrayRef({4}));
  // to_event sums the elementwise log densities.
  auto x = torch::randn({4, 3});
  CHECK(torch::allclose(e.log_prob(x), n.log_prob(x).sum(-1)));
  auto big = e.expand({2, 4});
  CHECK(big.batch_shape() == std::vector<int64_t>{2, 4});
  CHECK(big.event_shape() == std::vector<int64_t>{3});
  auto c = d::Categorical(torch::ones({2, 5}));
  CHECK(c.batch_shape() == std::vector<int64_t>{2});
  CHECK(c.sample({7}).sizes() == c10::IntArrayRef({7, 2}));
  CHECK(c.sample().scalar_type() == torch::kLong);
}

TEST_CASE("masking zeroes the log density where the mask is false, before the event sum", "[dist]") {
  auto n = d::Normal(torch::zeros({2, 3}), 1.0);
  auto mask = torch::tensor({true, false});
  auto x = torch::randn({2, 3});
  auto lp = n.mask(mask.unsqueeze(-1)).to_event(1).log_prob(x);
  CHECK(lp[0].item<double>() == Approx(n.log_prob(x)[0].sum().item<double>()));
  CHECK(lp[1].item<double>() == 0.0);
  auto lp2 = n.to_event(1).mask(mask).log_prob(x);
  CHECK(torch::allclose(lp, lp2));
}

TEST_CASE("analytic KL divergences match quadrature", "[dist]") {
  // Reference numbers: scipy.integrate.quad of p log(p/q).
  CHECK(d::kl(d::Normal(t(0.3), t(1.2)), d::Normal(t(-0.5), t(0.7))).item<double>() == Approx(1.08345247885915));
  CHECK(d::kl(d::Laplace(t(0.3), t(1.2)), d::Laplace(t(-0.5), t(0.7))).item<double>() == Approx(0.4840042746212184));
  CHECK(d::kl(d::Beta(t(2.0), t(3.0)), d::Beta(t(1.5), t(0.8))).item<double>() == Approx(0.5369946355931733));
  CHECK(d::kl(d::Gamma(t(2.0), t(1.5)), d::Gamma(t(3.0), t(0.5))).item<double>() == Approx(2.2328663781299745));
  CHECK(d::kl(d::Uniform(t(0), t(1)), d::Uniform(t(-1), t(3))).item<double>() == Approx(1.3862943611198906));
  CHECK(std::isinf(d::kl(d::Uniform(t(-1), t(3)), d::Uniform(t(0), t(1))).item<double>()));
  CHECK(d::kl(d::Bernoulli(t(0.3)), d::Bernoulli(t(0.6))).item<double>() == Approx(0.18378689738681217));
  CHECK(d::kl(d::Categorical(tv({0.2, 0.5, 0.3})), d::Categorical(tv({0.4, 0.4, 0.2}))).item<double>() ==
        Approx(0.09458187197756508));
  CHECK(d::kl(d::ContinuousBernoulli(t(0.8)), d::ContinuousBernoulli(t(0.3))).item<double>() ==
        Approx(0.20103591570967988).epsilon(1e-6));
  CHECK(d::ContinuousBernoulli(t(0.8)).mean().item<double>() == Approx(0.6119858128888516));
  // to_event sums; pairs without a closed form are an error.
  auto p = d::Normal(torch::zeros({3}, torch::kDouble), 1.0).to_event(1);
  auto q = d::Normal(torch::ones({3}, torch::kDouble), 1.0).to_event(1);
  CHECK(d::kl(p, q).item<double>() == Approx(1.5));
  CHECK_FALSE(d::has_kl(d::Normal(0.0, 1.0), d::Laplace(0.0, 1.0)));
  CHECK_THROWS_WITH(d::kl(d::Normal(0.0, 1.0), d::Laplace(0.0, 1.0)), Catch::Contains("no closed form"));
}

TEST_CASE("samplers pass a goodness-of-fit test", "[dist]") {
  ppl::random::SeedScope seed(1234);
  const int64_t n = 20000;
  struct Row {
    const char* what;
    std::shared_ptr<d::Distribution> dist;
    double low, high;
  };
  const std::vector<Row> rows = {
      {"Normal", d::Normal(t(0.5), t(2.0)).clone(), -15, 16},
      {"Laplace", d::Laplace(t(-1.0), t(0.5)).clone(), -15, 13},
      {"Uniform", d::Uniform(t(-1.0), t(2.0)).clone(), -1, 2},
      {"Beta", d::Beta(t(2.0), t(3.0)).clone(), 0, 1},
      {"Gamma", d::Gamma(t(2.5), t(1.5)).clone(), 1e-12, 30},
      {"ContinuousBernoulli", d::ContinuousBernoulli(t(0.8)).clone(), 0, 1},
      {"RelaxedBernoulli", d::RelaxedBernoulli(t(2.0), d::probs(t(0.3))).clone(), 1e-9, 1 - 1e-9},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    auto s = row.dist->sample({n});
    auto dist = row.dist;
    const double D = ks_statistic(s, [&](const torch::Tensor& x) { return dist->log_prob(x).exp(); }, row.low, row.high);
    CHECK(D < ks_critical(n));
  }
  // Discrete samplers: chi-square against the probabilities (df = 2, p = 0.001 -> 13.8).
  auto probs = tv({0.2, 0.5, 0.3});
  auto counts = torch::bincount(d::Categorical(probs).sample({n}), {}, 3).to(torch::kDouble);
  auto expected = probs * n;
  CHECK(((counts - expected).pow(2) / expected).sum().item<double>() < 13.8);
  auto ones = d::Bernoulli(t(0.3)).sample({n}).sum().item<double>();
  CHECK(std::abs(ones - 0.3 * n) < 4.5 * std::sqrt(n * 0.3 * 0.7));
  CHECK(torch::equal(d::Delta(t(2.5)).sample({3}), torch::full({3}, 2.5, torch::kDouble)));
}

TEST_CASE("gradients of log_prob match finite differences", "[dist]") {
  using Make = std::function<torch::Tensor(const torch::Tensor& params, const torch::Tensor& value)>;
  struct Row {
    const char* what;
    Make lp;
    torch::Tensor params, value;
  };
  const std::vector<Row> rows = {
      {"Normal", [](auto p, auto v) { return d::Normal(p[0], p[1]).log_prob(v); }, tv({0.3, 1.7}), t(-0.4)},
      {"Laplace", [](auto p, auto v) { return d::Laplace(p[0], p[1]).log_prob(v); }, tv({0.3, 1.7}), t(-0.4)},
      {"Beta", [](auto p, auto v) { return d::Beta(p[0], p[1]).log_prob(v); }, tv({2.3, 1.7}), t(0.35)},
      {"Gamma", [](auto p, auto v) { return d::Gamma(p[0], p[1]).log_prob(v); }, tv({2.3, 1.7}), t(0.8)},
      {"Uniform", [](auto p, auto v) { return d::Uniform(p[0], p[1]).log_prob(v); }, tv({-1.0, 2.5}), t(0.3)},
      {"Bernoulli", [](auto p, auto v) { return d::Bernoulli(d::logits(p[0])).log_prob(v); }, tv({0.4}), t(1)},
      {"Categorical", [](auto p, auto v) { return d::Categorical(d::logits(p)).log_prob(v); }, tv({0.4, -1.0, 2.0}),
       torch::tensor(1, torch::kLong)},
      {"ContinuousBernoulli", [](auto p, auto v) { return d::ContinuousBernoulli(p[0]).log_prob(v); }, tv({0.7}), t(0.2)},
      {"RelaxedBernoulli", [](auto p, auto v) { return d::RelaxedBernoulli(p[0], d::logits(p[1])).log_prob(v); },
       tv({0.7, 0.3}), t(0.6)},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    auto p = row.params.clone().requires_grad_(true);
    row.lp(p, row.value).backward();
    auto fd = finite_difference([&](const torch::Tensor& q) { return row.lp(q, row.value); }, row.params);
    CHECK(torch::allclose(p.grad(), fd, 1e-5, 1e-6));
    const std::string what = row.what;
    if (torch::isFloatingType(row.value.scalar_type()) && what != "Bernoulli" && what != "Uniform") {
      auto v = row.value.clone().requires_grad_(true);
      row.lp(row.params, v).backward();
      auto fdv = finite_difference([&](const torch::Tensor& x) { return row.lp(row.params, x); }, row.value);
      CHECK(torch::allclose(v.grad(), fdv, 1e-5, 1e-6));
    }
  }
}

TEST_CASE("gradients of rsample match finite differences at fixed noise", "[dist]") {
  using Draw = std::function<torch::Tensor(const torch::Tensor& params)>;
  struct Row {
    const char* what;
    Draw draw;
    torch::Tensor params;
  };
  const std::vector<Row> rows = {
      {"Normal", [](auto p) { return d::Normal(p[0], p[1]).rsample({5}).sum(); }, tv({0.3, 1.7})},
      {"Laplace", [](auto p) { return d::Laplace(p[0], p[1]).rsample({5}).sum(); }, tv({0.3, 1.7})},
      {"Uniform", [](auto p) { return d::Uniform(p[0], p[1]).rsample({5}).sum(); }, tv({-1.0, 2.5})},
      {"ContinuousBernoulli", [](auto p) { return d::ContinuousBernoulli(p[0]).rsample({5}).sum(); }, tv({0.8})},
      {"RelaxedBernoulli", [](auto p) { return d::RelaxedBernoulli(p[0], d::logits(p[1])).rsample({5}).sum(); },
       tv({0.7, 0.3})},
      {"Delta", [](auto p) { return d::Delta(p[0]).rsample({5}).sum(); }, tv({0.7})},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    auto seeded = [&](const torch::Tensor& q) {
      ppl::random::SeedScope seed(7);
      return row.draw(q);
    };
    auto p = row.params.clone().requires_grad_(true);
    seeded(p).backward();
    auto fd = finite_difference(seeded, row.params);
    CHECK(torch::allclose(p.grad(), fd, 1e-4, 1e-6));
  }
}

TEST_CASE("Gamma and Beta rsample gradients: implicit reparameterisation", "[dist]") {
  ppl::random::SeedScope seed(11);
  // Gamma(a, 1): dz/da = -(dF/da)(z) / p(z), F the regularised incomplete gamma.
  auto a = t(2.3).requires_grad_(true);
  auto z = d::Gamma(a, 1.0).rsample({6});
  auto grad = torch::autograd::grad({z.sum()}, {a})[0];
  auto zd = z.detach();
  const double h = 1e-6;
  auto dF = (torch::igamma(t(2.3 + h), zd) - torch::igamma(t(2.3 - h), zd)) / (2 * h);
  auto density = d::Gamma(t(2.3), 1.0).log_prob(zd).exp();
  CHECK(grad.item<double>() == Approx((-dF / density).sum().item<double>()).epsilon(1e-4));
  // Unbiased mean gradients: d E[x]/d alpha for Gamma(alpha, rate) is 1/rate;
  // for Beta(alpha, beta) it is beta / (alpha + beta)^2.
  const int64_t n = 40000;
  auto ga = t(1.5).requires_grad_(true);
  d::Gamma(ga, t(2.0)).rsample({n}).mean().backward();
  CHECK(ga.grad().item<double>() == Approx(0.5).margin(0.02));
  auto ba = t(2.0).requires_grad_(true);
  auto bb = t(3.0).requires_grad_(true);
  d::Beta(ba, bb).rsample({n}).mean().backward();
  CHECK(ba.grad().item<double>() == Approx(3.0 / 25.0).margin(0.006));
  CHECK(bb.grad().item<double>() == Approx(-2.0 / 25.0).margin(0.006));
}

TEST_CASE("straight-through RelaxedBernoulli: hard values, soft gradients and density", "[dist]") {
  ppl::random::SeedScope seed(3);
  auto l = t(0.4).requires_grad_(true);
  auto st = d::RelaxedBernoulli(0.5, d::logits(l), /*straight_through=*/true);
  auto y = st.rsample({8});
  CHECK(((y == 0).logical_or(y == 1)).all().item<bool>());
  y.sum().backward();
  CHECK(l.grad().abs().item<double>() > 0);
  // log_prob of the returned tensor is the density of the soft value behind it.
  ppl::random::SeedScope again(3);
  auto soft = d::RelaxedBernoulli(0.5, d::logits(t(0.4))).rsample({8});
  auto lp = st.log_prob(y);
  auto expected = d::RelaxedBernoulli(0.5, d::logits(t(0.4))).log_prob(soft.detach());
  CHECK(torch::allclose(lp.detach(), expected));
}

namespace {
// The two-component bivariate mixture of the GaussianMixture tests, from a
// flat parameter vector: logits[2], loc[2, 2], then per component the
// lower-triangular entries (L00, L10, L11).
d::GaussianMixture mixture_from(const torch::Tensor& p) {
  auto logits = p.narrow(0, 0, 2);
  auto loc = p.narrow(0, 2, 4).reshape({2, 2});
  std::vector<torch::Tensor> ls;
  for (int64_t k = 0; k < 2; ++k) {
    auto e = p.narrow(0, 6 + 3 * k, 3);
    auto zero = torch::zeros({}, p.options());
    ls.push_back(torch::stack({torch::stack({e[0], zero}), torch::stack({e[1], e[2]})}));
  }
  return d::GaussianMixture(d::logits(logits), loc, torch::stack(ls));
}
torch::Tensor mixture_params() {
  // weights 0.3 / 0.7; loc (0.5, -1), (-2, 1.5); L = [[1.2, 0], [0.5, 0.8]], [[0.6, 0], [-0.3, 1.5]].
  return tv({std::log(0.3), std::log(0.7), 0.5, -1.0, -2.0, 1.5, 1.2, 0.5, 0.8, 0.6, -0.3, 1.5});
}
}  // namespace

TEST_CASE("GaussianMixture: log density against the closed form with the explicit covariance inverse", "[dist]") {
  const auto g = mixture_from(mixture_params());
  // Reference: sum_k w_k N(x; mu_k, S_k), S_k = L_k L_k^T inverted by the 2x2
  // formula (not by the triangular substitution the distribution uses).
  CHECK(g.log_prob(tv({0.1, 0.4})).item<double>() == Approx(-4.9357254058008655).epsilon(1e-12));
  CHECK(g.log_prob(tv({-1.7, 2.2})).item<double>() == Approx(-2.374746873160953).epsilon(1e-12));
  // A 3-d single component against Normal's log density after whitening by
  // torch's triangular solve: log N(x; mu, L L^T) = sum log N(z; 0, 1) - log|det L|.
  auto l3 = torch::tensor({{0.9, 0.0, 0.0}, {0.4, 1.3, 0.0}, {-0.2, 0.7, 0.5}}, torch::kDouble);
  auto mu3 = tv({0.3, -0.1, 1.0});
  auto x3 = tv({1.1, 0.2, -0.4});
  auto g3 = d::GaussianMixture(d::probs(torch::ones({1}, torch::kDouble)), mu3.unsqueeze(0), l3.unsqueeze(0));
  auto z = torch::linalg_solve_triangular(l3, (x3 - mu3).unsqueeze(-1), /*upper=*/false).squeeze(-1);
  const double expected = (d::Normal(0.0, 1.0).log_prob(z).sum() - l3.diagonal().log().sum()).item<double>();
  CHECK(g3.log_prob(x3).item<double>() == Approx(expected).epsilon(1e-12));
  CHECK(g3.has_rsample());
  CHECK_FALSE(g.has_rsample());
}

TEST_CASE("GaussianMixture: shapes, to_event, expand, mask and JSON", "[dist]") {
  auto loc = torch::randn({4, 3, 2}, torch::kDouble);
  auto tril = torch::eye(2, torch::kDouble).expand({4, 3, 2, 2});
  auto g = d::GaussianMixture(d::logits(torch::zeros({3}, torch::kDouble)), loc, tril);
  CHECK(g.batch_shape() == std::vector<int64_t>{4});
  CHECK(g.event_shape() == std::vector<int64_t>{2});
  CHECK(g.num_components() == 3);
  CHECK(g.sample({5}).sizes() == c10::IntArrayRef({5, 4, 2}));
  CHECK(g.log_prob(torch::zeros({5, 4, 2}, torch::kDouble)).sizes() == c10::IntArrayRef({5, 4}));
  auto e = g.to_event(1);
  CHECK(e.batch_shape().empty());
  CHECK(e.event_shape() == std::vector<int64_t>{4, 2});
  auto x = torch::randn({4, 2}, torch::kDouble);
  CHECK(torch::allclose(e.log_prob(x), g.log_prob(x).sum()));
  auto big = g.expand({6, 4});
  CHECK(big.batch_shape() == std::vector<int64_t>{6, 4});
  CHECK(big.event_shape() == std::vector<int64_t>{2});
  CHECK(big.sample().sizes() == c10::IntArrayRef({6, 4, 2}));
  auto masked = g.mask(torch::tensor({true, false, true, false}));
  auto lp = masked.log_prob(x);
  CHECK(lp[1].item<double>() == 0.0);
  CHECK(lp[0].item<double>() == Approx(g.log_prob(x)[0].item<double>()));
  // Values are checked against the event shape.
  CHECK_THROWS_WITH(g.check_value({"GaussianMixture"}, torch::zeros({4, 3}, torch::kDouble)),
                    Catch::Contains("event shape [2]"));
  auto back = d::from_json(e.to_json());
  CHECK(back->type_name() == "GaussianMixture");
  CHECK(back->event_shape() == std::vector<int64_t>{4, 2});
  CHECK(torch::allclose(back->log_prob(x), e.log_prob(x)));
}

TEST_CASE("GaussianMixture: invalid parameters and shapes are named", "[dist]") {
  auto mix = d::logits(torch::zeros({2}));
  auto loc = torch::zeros({2, 2});
  auto eye = torch::eye(2).expand({2, 2, 2}).clone();
  auto bad_diag = eye.clone();
  bad_diag[1][1][1] = -0.5;
  auto upper = eye.clone();
  upper[0][0][1] = 0.3;
  CHECK_THROWS_WITH(d::GaussianMixture(mix, loc, bad_diag).sample(),
                    Catch::Contains("GaussianMixture: scale_tril[1, 1, 1] is -0.5, but must be positive (a diagonal entry)"));
  CHECK_THROWS_WITH(d::GaussianMixture(mix, loc, upper).sample(),
                    Catch::Contains("scale_tril[0, 0, 1] is 0.3, but must be 0 (an entry above the diagonal"));
  CHECK_THROWS_WITH(d::GaussianMixture(mix, torch::zeros({3, 2}), eye),
                    Catch::Contains("loc has shape [3, 2], but logits has 2 components"));
  CHECK_THROWS_WITH(d::GaussianMixture(mix, loc, torch::eye(3).expand({2, 3, 3})),
                    Catch::Contains("scale_tril has shape [2, 3, 3], but must be [..., 2, 2, 2]"));
  CHECK_THROWS_WITH(d::GaussianMixture(mix, 0.0, eye), Catch::Contains("loc has shape [] (a number)"));
  CHECK_THROWS_WITH(d::GaussianMixture(mix, loc, eye).rsample(), Catch::Contains("rsample is not available"));
}

TEST_CASE("GaussianMixture: sampler moments and a projected goodness-of-fit test", "[dist]") {
  ppl::random::SeedScope seed(99);
  const int64_t n = 20000;
  const auto g = mixture_from(mixture_params());
  const auto x = g.sample({n});  // [n, 2]
  // Closed-form mean and covariance: sum_k w_k mu_k and sum_k w_k (S_k + mu_k mu_k^T) - mu mu^T.
  const auto w = g.mixture_probs();
  const auto s = torch::matmul(g.scale_tril(), g.scale_tril().transpose(-1, -2));
  const auto mean = (w.unsqueeze(-1) * g.loc()).sum(0);
  const auto second = (w.view({2, 1, 1}) * (s + g.loc().unsqueeze(-1) * g.loc().unsqueeze(-2))).sum(0);
  const auto cov = second - mean.unsqueeze(-1) * mean.unsqueeze(-2);
  const auto sample_mean = x.mean(0);
  const auto centred = x - sample_mean;
  const auto sample_cov = torch::matmul(centred.t(), centred) / (n - 1);
  CHECK(torch::allclose(sample_mean, mean, 0, 0.05));
  CHECK(torch::allclose(sample_cov, cov, 0.05, 0.05));
  // mean() and variance() are the closed forms (the covariance's diagonal).
  CHECK(torch::allclose(g.mean(), mean, 1e-12, 1e-12));
  CHECK(torch::allclose(g.variance(), cov.diagonal(), 1e-12, 1e-12));
  // The projection a^T x is a 1-d mixture with means a^T mu_k and variances a^T S_k a.
  const auto a = tv({0.6, -0.8});
  const auto proj_loc = torch::matmul(g.loc(), a).unsqueeze(-1);                            // [2, 1]
  const auto proj_sd = (torch::matmul(s, a) * a).sum(-1).sqrt().view({2, 1, 1});  // [2, 1, 1]
  const auto proj = d::GaussianMixture(d::probs(w), proj_loc, proj_sd);
  const double stat = ks_statistic(torch::matmul(x, a),
                                   [&](const torch::Tensor& v) { return proj.log_prob(v.unsqueeze(-1)).exp(); }, -20, 20);
  CHECK(stat < ks_critical(n));
}

TEST_CASE("GaussianMixture: gradients of log_prob and of the one-component rsample match finite differences",
          "[dist]") {
  auto lp = [](const torch::Tensor& p) { return mixture_from(p).log_prob(tv({0.1, 0.4})); };
  auto p = mixture_params().requires_grad_(true);
  lp(p).backward();
  CHECK(torch::allclose(p.grad(), finite_difference(lp, mixture_params()), 1e-5, 1e-6));
  auto lv = [](const torch::Tensor& v) { return mixture_from(mixture_params()).log_prob(v); };
  auto v = tv({-0.7, 0.9}).requires_grad_(true);
  lv(v).backward();
  CHECK(torch::allclose(v.grad(), finite_difference(lv, tv({-0.7, 0.9})), 1e-5, 1e-6));
  // One component: rsample = loc + L eps is pathwise in loc and L.
  auto draw = [](const torch::Tensor& q) {
    ppl::random::SeedScope seed(5);
    auto loc = q.narrow(0, 0, 2).reshape({1, 2});
    auto zero = torch::zeros({}, q.options());
    auto l = torch::stack({torch::stack({q[2], zero}), torch::stack({q[3], q[4]})}).unsqueeze(0);
    return d::GaussianMixture(d::probs(torch::ones({1}, q.options())), loc, l).rsample({4}).pow(2).sum();
  };
  auto q = tv({0.3, -0.2, 1.1, 0.4, 0.7}).requires_grad_(true);
  draw(q).backward();
  CHECK(torch::allclose(q.grad(), finite_difference(draw, tv({0.3, -0.2, 1.1, 0.4, 0.7})), 1e-4, 1e-6));
}
