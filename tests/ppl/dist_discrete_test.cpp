// The discrete families of the second wave and RelaxedOneHotCategorical:
// log probabilities against textbook values (mpmath, 50 digits), invalid
// parameters, chi-square tests and moments of 100,000 draws, and the
// relaxation's gradients and straight-through option.
#include <catch2/catch.hpp>

#include <ppl/core/random.hpp>
#include <ppl/dist.hpp>

#include "test_util.hpp"

namespace d = ppl::dist;
using ppl::test::check_log_probs;
using ppl::test::check_throws;
using ppl::test::chi_square;
using ppl::test::chi_square_critical;
using ppl::test::moment_z;
using ppl::test::sample_at_site;
using ppl::test::t;
using ppl::test::tv;

TEST_CASE("discrete families: log probabilities match textbook values", "[dist][discrete]") {
  check_log_probs({
      {"Poisson(3.5) at 0 (boundary)", [] { return d::Poisson(t(3.5)).clone(); }, t(0), -3.5},
      {"Poisson(3.5) at 5", [] { return d::Poisson(t(3.5)).clone(); }, t(5), -2.023676900305206},
      {"Poisson(0) at 0", [] { return d::Poisson(t(0)).clone(); }, t(0), 0.0},
      {"DiscreteUniform(-2, 3) at -2 (boundary)", [] { return d::DiscreteUniform(t(-2), t(3)).clone(); }, t(-2),
       -1.791759469228055},
      {"DiscreteUniform(-2, 3) at 3 (boundary)", [] { return d::DiscreteUniform(t(-2), t(3)).clone(); }, t(3),
       -1.791759469228055},
      {"Binomial(10, 0.3) at 0", [] { return d::Binomial(t(10), t(0.3)).clone(); }, t(0), -3.5667494393873238},
      {"Binomial(10, 0.3) at 10", [] { return d::Binomial(t(10), t(0.3)).clone(); }, t(10), -12.03972804325936},
      {"Binomial(10, 0.3) at 4", [] { return d::Binomial(t(10), t(0.3)).clone(); }, t(4), -1.6088333502186696},
      {"Binomial(5, logits -1) at 2", [] { return d::Binomial(t(5), d::logits(t(-1))).clone(); }, t(2),
       -1.2637233445970685},
      {"Binomial(7, 1) at 7 (p at its bound)", [] { return d::Binomial(t(7), t(1.0)).clone(); }, t(7), 0.0},
      {"NegativeBinomial(3.5, 0.4) at 0", [] { return d::NegativeBinomial(t(3.5), t(0.4)).clone(); }, t(0),
       -1.7878896831809674},
      {"NegativeBinomial(3.5, 0.4) at 6", [] { return d::NegativeBinomial(t(3.5), t(0.4)).clone(); }, t(6),
       -3.3765254679858045},
      {"NegativeBinomial(2, logits 0.7) at 2", [] { return d::NegativeBinomial(t(2), d::logits(t(0.7))).clone(); },
       t(2), -1.9141319068737219},
      {"Geometric(0.3) at 0", [] { return d::Geometric(t(0.3)).clone(); }, t(0), -1.203972804325936},
      {"Geometric(0.3) at 4", [] { return d::Geometric(t(0.3)).clone(); }, t(4), -2.6306725800808655},
      {"Geometric(logits 1.2) at 3", [] { return d::Geometric(d::logits(t(1.2))).clone(); }, t(3), -4.6531298693521248},
      {"Geometric(1) at 0 (p at its bound)", [] { return d::Geometric(t(1.0)).clone(); }, t(0), 0.0},
      {"Multinomial(5, [.2 .5 .3]) at [1 3 1]", [] { return d::Multinomial(5, tv({0.2, 0.5, 0.3})).clone(); },
       tv({1, 3, 1}), -1.8971199848858813},
      {"Multinomial(5, [.2 .5 .3]) at [5 0 0]", [] { return d::Multinomial(5, tv({0.2, 0.5, 0.3})).clone(); },
       tv({5, 0, 0}), -8.0471895621705019},
      {"Multinomial(4, logits [1 -.5 2]) at [0 1 3]",
       [] { return d::Multinomial(4, d::logits(tv({1, -0.5, 2}))).clone(); }, tv({0, 1, 3}), -2.599861766290841},
      {"Multinomial(3, [.5 .5 0]) at [1 2 0]", [] { return d::Multinomial(3, tv({0.5, 0.5, 0})).clone(); },
       tv({1, 2, 0}), -0.9808292530117262},
      {"OneHotCategorical([.2 .5 .3]) at [0 0 1]", [] { return d::OneHotCategorical(tv({0.2, 0.5, 0.3})).clone(); },
       tv({0, 0, 1}), -1.203972804325936},
      {"RelaxedOneHotCategorical(0.7, [.2 .5 .3]) at [.1 .6 .3]",
       [] { return d::RelaxedOneHotCategorical(t(0.7), tv({0.2, 0.5, 0.3})).clone(); }, tv({0.1, 0.6, 0.3}),
       0.65874865006849111},
      {"RelaxedOneHotCategorical(2, logits [1 -.5 2]) at [.5 .2 .3]",
       [] { return d::RelaxedOneHotCategorical(t(2), d::logits(tv({1, -0.5, 2}))).clone(); }, tv({0.5, 0.2, 0.3}),
       1.0489179332032828},
  });
  CHECK(std::isinf(d::DiscreteUniform(t(-2), t(3)).log_prob(t(4)).item<double>()));
  CHECK(std::isinf(d::DiscreteUniform(t(-2), t(3)).log_prob(t(0.5)).item<double>()));
  // K = 2: the relaxed one-hot vector's first entry is RelaxedBernoulli with
  // logits l0 - l1 and the same temperature, with the same density.
  for (double y : {0.1, 0.45, 0.93}) {
    const auto two = d::RelaxedOneHotCategorical(t(0.6), d::logits(tv({0.4, -0.9}))).log_prob(tv({y, 1 - y}));
    const auto one = d::RelaxedBernoulli(t(0.6), d::logits(t(1.3))).log_prob(t(y));
    CHECK(two.item<double>() == Approx(one.item<double>()).epsilon(1e-10));
  }
}

TEST_CASE("discrete families: invalid parameters and values name the distribution, argument, value and site",
          "[dist][discrete]") {
  auto observe = [](const d::Distribution& dist, const torch::Tensor& v) {
    ppl::trace([&] { ppl::observe("x", dist, v); });
  };
  check_throws({
      {[] { sample_at_site(d::Poisson(-1.0)); }, "Poisson: rate is -1, but must be nonnegative (site \"z_what/2\", "},
      {[] { sample_at_site(d::Binomial(2.5, 0.5)); }, "Binomial: total_count is 2.5, but must be an integer (site"},
      {[] { sample_at_site(d::Binomial(10.0, 1.5)); }, "Binomial: probs is 1.5, but must be in [0, 1]"},
      {[] { sample_at_site(d::NegativeBinomial(2.0, 1.0)); }, "NegativeBinomial: probs is 1, but must be less than 1"},
      {[] { sample_at_site(d::NegativeBinomial(0.0, 0.5)); }, "NegativeBinomial: total_count is 0, but must be positive"},
      {[] { sample_at_site(d::Geometric(0.0)); }, "Geometric: probs is 0, but must be positive"},
      {[] { sample_at_site(d::Multinomial(3, tv({0.5, -0.5, 1}))); }, "Multinomial: probs[1] is -0.5, but must be nonnegative"},
      {[] { sample_at_site(d::Multinomial(3, torch::zeros({2, 3}, torch::kDouble))); },
       "Multinomial: sum(probs)[0] is 0, but must be positive"},
      {[] { sample_at_site(d::Multinomial(-1, tv({0.5, 0.5}))); }, "Multinomial: total_count is -1, but must be nonnegative"},
      {[] { sample_at_site(d::OneHotCategorical(d::logits(torch::full({3}, -INFINITY)))); },
       "OneHotCategorical: max(logits) is -inf, but must be greater than -inf (site"},
      {[] { sample_at_site(d::RelaxedOneHotCategorical(0.0, tv({0.5, 0.5}))); },
       "RelaxedOneHotCategorical: temperature is 0, but must be positive"},
      {[] { sample_at_site(d::DiscreteUniform(3.0, 1.0)); }, "DiscreteUniform: low is 3, but must be at most high"},
      {[] { sample_at_site(d::DiscreteUniform(0.5, 3.0)); }, "DiscreteUniform: low is 0.5, but must be an integer"},
      {[] { d::Multinomial(3, 0.5); }, "Multinomial: probs has shape [], but must have at least 1 dimension"},
      {[] { d::Poisson(1.0).rsample(); }, "Poisson: rsample is not available"},
      {[&] { observe(d::Poisson(2.0), tv({1, -1})); },
       "Poisson: value[1] is -1, but must be a nonnegative integer (the support) (site \"x\""},
      {[&] { observe(d::Poisson(2.0), t(1.5)); }, "value is 1.5, but must be a nonnegative integer"},
      {[&] { observe(d::Binomial(10.0, 0.5), t(11)); }, "Binomial: value is 11, but must be an integer in [0, 10]"},
      {[&] { observe(d::Multinomial(5, tv({0.2, 0.8})), tv({2, 2})); },
       "Multinomial: value is [2, 2], but must be nonnegative integers summing to 5 (the support)"},
      {[&] { observe(d::OneHotCategorical(tv({0.2, 0.8})), tv({1, 1})); },
       "OneHotCategorical: value is [1, 1], but must be one-hot"},
      {[&] { observe(d::RelaxedOneHotCategorical(1.0, tv({0.2, 0.8})), tv({0.5, 0.6})); },
       "value is [0.5, 0.6], but must be in the simplex"},
  });
}

TEST_CASE("discrete families: 100,000 draws pass a chi-square test and match mean and variance",
          "[dist][discrete]") {
  ppl::random::SeedScope seed(77);
  const int64_t n = 100000;
  struct Row {
    const char* what;
    std::shared_ptr<d::Distribution> dist;
    int64_t low, high;
  };
  const std::vector<Row> rows = {
      {"Poisson", d::Poisson(t(3.7)).clone(), 0, 20},
      {"DiscreteUniform", d::DiscreteUniform(t(-2), t(4)).clone(), -2, 4},
      {"Binomial", d::Binomial(t(12), t(0.35)).clone(), 0, 12},
      {"Binomial (logits)", d::Binomial(t(30), d::logits(t(2.0))).clone(), 0, 30},
      {"NegativeBinomial", d::NegativeBinomial(t(2.5), t(0.6)).clone(), 0, 40},
      {"Geometric", d::Geometric(t(0.3)).clone(), 0, 40},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    const auto x = row.dist->sample({n});
    const auto [mean_z, variance_z] = moment_z(x, row.dist->mean(), row.dist->variance());
    CHECK(mean_z < 5);
    CHECK(variance_z < 5);
    const auto [stat, df] = chi_square(
        x, [&](int64_t k) { return row.dist->log_prob(t(static_cast<double>(k))).exp().item<double>(); }, row.low,
        row.high);
    CHECK(stat < chi_square_critical(df));
  }
  // Multinomial(3, p): every outcome, against n! / prod x_k! prod p_k^x_k.
  const auto p = tv({0.2, 0.5, 0.3});
  const d::Multinomial mult(3, p);
  const auto m = mult.sample({n});
  CHECK((m.sum(-1) == 3).all().item<bool>());
  const auto [mz, vz] = moment_z(m, mult.mean(), mult.variance());
  CHECK(mz < 5);
  CHECK(vz < 5);
  const auto code = (m.select(-1, 0) * 16 + m.select(-1, 1) * 4 + m.select(-1, 2)).to(torch::kLong);
  const auto [mstat, mdf] = chi_square(
      code,
      [&](int64_t c) {
        const int64_t a = c / 16, b = (c / 4) % 4, e = c % 4;
        if (a + b + e != 3 || b > 3 || e > 3) return 0.0;
        const double pa = 0.2, pb = 0.5, pe = 0.3;
        return 6.0 / (std::tgamma(a + 1.0) * std::tgamma(b + 1.0) * std::tgamma(e + 1.0)) * std::pow(pa, a) *
               std::pow(pb, b) * std::pow(pe, e);
      },
      0, 63);
  CHECK(mstat < chi_square_critical(mdf));
  // OneHotCategorical: one-hot draws whose positions follow the probabilities.
  const auto q = tv({0.1, 0.2, 0.3, 0.4});
  const d::OneHotCategorical oh(q);
  const auto h = oh.sample({n});
  CHECK(ppl::constraints::one_hot.check(h).all().item<bool>());
  const auto [hz, hv] = moment_z(h, oh.mean(), oh.variance());
  CHECK(hz < 5);
  CHECK(hv < 5);
  const auto [hstat, hdf] = chi_square(h.argmax(-1), [&](int64_t k) { return q[k].item<double>(); }, 0, 3);
  CHECK(hstat < chi_square_critical(hdf));
  // RelaxedOneHotCategorical: the largest entry is Categorical(probs) at any
  // temperature (Gumbel-max); with K = 2 the first entry is RelaxedBernoulli.
  const auto r = d::RelaxedOneHotCategorical(t(0.8), q).sample({n});
  CHECK(ppl::constraints::simplex.check(r).all().item<bool>());
  const auto [rstat, rdf] = chi_square(r.argmax(-1), [&](int64_t k) { return q[k].item<double>(); }, 0, 3);
  CHECK(rstat < chi_square_critical(rdf));
  const auto r2 = d::RelaxedOneHotCategorical(t(1.5), d::logits(tv({0.4, -0.9}))).sample({n}).select(-1, 0);
  const d::RelaxedBernoulli rb(t(1.5), d::logits(t(1.3)));
  CHECK(ppl::test::ks_statistic(r2, [&](const torch::Tensor& v) { return rb.log_prob(v).exp(); }, 1e-9, 1 - 1e-9) <
        ppl::test::ks_critical(n));
}

TEST_CASE("RelaxedOneHotCategorical: pathwise gradients and the straight-through option", "[dist][discrete]") {
  using Fn = std::function<torch::Tensor(const torch::Tensor&)>;
  const Fn weigh = [](const torch::Tensor& y) { return (y * tv({1, 2, 3})).sum(-1).pow(2); };
  const std::vector<std::pair<const char*, Fn>> rows = {
      {"temperature",
       [](const torch::Tensor& th) { return d::RelaxedOneHotCategorical(th, d::logits(tv({0.3, -0.2, 0.5}))).rsample(); }},
      {"a logit",
       [](const torch::Tensor& th) {
         const auto l = torch::stack({th, torch::full_like(th, -0.2), torch::full_like(th, 0.5)}, -1);
         return d::RelaxedOneHotCategorical(0.7, d::logits(l)).rsample();
       }},
  };
  const int64_t n = 20000;
  for (const auto& [what, draw] : rows) {
    INFO(what);
    const auto grads = ppl::test::pathwise_gradients(draw, weigh, 0.7, n, 5);
    const auto fd = ppl::test::common_random_differences(draw, weigh, 0.7, n, 5);
    const double se = (grads - fd).std().item<double>() / std::sqrt(n);
    CHECK(std::abs(grads.mean().item<double>() - fd.mean().item<double>()) <= 5 * se + 1e-6);
  }
  ppl::random::SeedScope seed(3);
  auto l = tv({0.4, -0.3, 0.1}).requires_grad_(true);
  const d::RelaxedOneHotCategorical st(0.5, d::logits(l), /*straight_through=*/true);
  const auto y = st.rsample({6});
  CHECK(ppl::constraints::one_hot.check(y).all().item<bool>());
  (y * tv({1, 2, 3})).sum().backward();
  CHECK(l.grad().abs().sum().item<double>() > 0);
  // log_prob of the returned tensor is the density of the soft value behind it.
  ppl::random::SeedScope again(3);
  const auto soft = d::RelaxedOneHotCategorical(0.5, d::logits(tv({0.4, -0.3, 0.1}))).rsample({6});
  CHECK(torch::allclose(st.log_prob(y).detach(), d::RelaxedOneHotCategorical(0.5, d::logits(tv({0.4, -0.3, 0.1})))
                                                      .log_prob(soft.detach())));
}

TEST_CASE("discrete families: shapes, expand, to_event and JSON round trips", "[dist][discrete]") {
  const auto m = d::Multinomial(4, torch::ones({2, 3}, torch::kDouble)).expand({5, 2});
  CHECK(m.batch_shape() == std::vector<int64_t>{5, 2});
  CHECK(m.event_shape() == std::vector<int64_t>{3});
  CHECK(m.sample({7}).sizes() == c10::IntArrayRef({7, 5, 2, 3}));
  const auto oh = d::OneHotCategorical(torch::ones({4}, torch::kDouble)).expand({2}).to_event(1);
  CHECK(oh.event_shape() == std::vector<int64_t>{2, 4});
  CHECK(oh.log_prob(torch::eye(4, torch::kDouble).narrow(0, 0, 2)).item<double>() == Approx(2 * std::log(0.25)));
  const std::vector<std::pair<std::shared_ptr<d::Distribution>, torch::Tensor>> all = {
      {d::Poisson(t(2)).clone(), t(3)},
      {d::DiscreteUniform(t(0), t(5)).clone(), t(3)},
      {d::Binomial(t(6), d::logits(t(0.2))).clone(), t(3)},
      {d::NegativeBinomial(t(2), t(0.3)).clone(), t(3)},
      {d::Geometric(d::logits(t(-0.5))).clone(), t(3)},
      {d::Multinomial(3, tv({0.1, 0.9})).clone(), tv({1, 2})},
      {d::OneHotCategorical(d::logits(tv({0.1, 0.9}))).clone(), tv({0, 1})},
      {d::RelaxedOneHotCategorical(t(0.5), tv({0.1, 0.9}), true).clone(), tv({0.3, 0.7})},
  };
  for (const auto& [dist, value] : all) {
    INFO(dist->type_name());
    const auto back = d::from_json(dist->to_json());
    CHECK(back->to_json() == dist->to_json());
    CHECK(back->log_prob(value).item<double>() == Approx(dist->log_prob(value).item<double>()));
  }
}
