// MixtureSameFamily, TransformedDistribution, Independent and
// FoldedDistribution: each against the family it must equal, densities
// written out by hand, samplers, gradients and JSON; and the analytic KL
// divergences of the second wave against quadrature, sums and Monte Carlo.
#include <numbers>

#include <catch2/catch.hpp>

#include <ppl/core/random.hpp>
#include <ppl/dist.hpp>
#include <ppl/transforms.hpp>

#include "test_util.hpp"

namespace d = ppl::dist;
namespace tr = ppl::transforms;
using ppl::test::ks_critical;
using ppl::test::ks_statistic;
using ppl::test::moment_z;
using ppl::test::t;
using ppl::test::tv;

namespace {
/// The normal density written out.
double normal_pdf(double x, double m, double s) {
  return std::exp(-0.5 * (x - m) * (x - m) / (s * s)) / (s * std::sqrt(2 * std::numbers::pi));
}
}  // namespace

TEST_CASE("TransformedDistribution(Normal, Exp) equals LogNormal", "[dist][combinators]") {
  const d::TransformedDistribution td(d::Normal(t(0.3), t(0.8)), {tr::Exp()});
  const d::LogNormal ln(t(0.3), t(0.8));
  CHECK(td.has_rsample());
  CHECK(td.support() == ppl::constraints::positive);
  const auto x = tv({0.05, 0.7, 1.7, 9.0});
  CHECK(torch::allclose(td.log_prob(x), ln.log_prob(x), 1e-12, 1e-12));
  ppl::random::SeedScope seed(4);
  const int64_t n = 100000;
  const auto s = td.sample({n});
  CHECK(ks_statistic(s, [&](const torch::Tensor& v) { return ln.log_prob(v).exp(); }, 0, 60) < ks_critical(n));
  const auto [mz, vz] = moment_z(s, ln.mean(), ln.variance());
  CHECK(mz < 5);
  CHECK(vz < 5);
  // Pathwise gradients: the same draws as LogNormal's at the same noise.
  const auto draw = [](const torch::Tensor& th) { return d::TransformedDistribution(d::Normal(th, 0.8), {tr::Exp()}).rsample(); };
  const auto grads = ppl::test::pathwise_gradients(draw, [](const torch::Tensor& v) { return v.pow(2); }, 0.3, 5000, 1);
  const auto fd = ppl::test::common_random_differences(draw, [](const torch::Tensor& v) { return v.pow(2); }, 0.3, 5000, 1);
  CHECK(std::abs(grads.mean().item<double>() - fd.mean().item<double>()) <=
        5 * (grads - fd).std().item<double>() / std::sqrt(5000.0) + 1e-6);
  // An affine map of a Normal is a Normal.
  const d::TransformedDistribution shifted(d::Normal(t(0.5), t(2.0)), {tr::Affine(1.0, -3.0)});
  CHECK(torch::allclose(shifted.log_prob(x), d::Normal(t(-0.5), t(6.0)).log_prob(x), 1e-12, 1e-12));
}

TEST_CASE("TransformedDistribution: vector transforms move batch dimensions into the event", "[dist][combinators]") {
  // Normal over R^3, stick-broken onto the simplex in R^4.
  const d::TransformedDistribution simplex(d::Normal(torch::zeros({2, 3}, torch::kDouble), 1.0), {tr::StickBreaking()});
  CHECK(simplex.batch_shape() == std::vector<int64_t>{2});
  CHECK(simplex.event_shape() == std::vector<int64_t>{4});
  CHECK(simplex.support() == ppl::constraints::simplex);
  const auto y = simplex.sample({5});
  CHECK(y.sizes() == c10::IntArrayRef({5, 2, 4}));
  CHECK(ppl::constraints::simplex.check(y).all().item<bool>());
  // log p(y) = log N(x) - log|det J| with x = inverse(y).
  const tr::StickBreaking sb;
  const auto x = sb.inverse(y);
  const auto expected = d::Normal(0.0, 1.0).log_prob(x).sum(-1) - sb.log_abs_det_jacobian(x, y);
  CHECK(torch::allclose(simplex.log_prob(y), expected, 1e-10, 1e-10));
  CHECK(simplex.expand({3, 2}).batch_shape() == std::vector<int64_t>{3, 2});
  CHECK(simplex.expand({3, 2}).sample().sizes() == c10::IntArrayRef({3, 2, 4}));
  const auto back = d::from_json(simplex.to_json());
  CHECK(back->type_name() == "TransformedDistribution");
  CHECK(torch::allclose(back->log_prob(y), simplex.log_prob(y)));
  // A Wishart-like prior on Cholesky factors: 6 normals onto 3 x 3 factors.
  const d::TransformedDistribution factors(d::Normal(torch::zeros({6}, torch::kDouble), 1.0), {tr::LowerCholesky()});
  CHECK(factors.event_shape() == std::vector<int64_t>{3, 3});
  CHECK(ppl::constraints::lower_cholesky.check(factors.sample({4})).all().item<bool>());
  CHECK_THROWS_WITH(d::TransformedDistribution(d::Normal(0.0, 1.0), {tr::StickBreaking()}),
                    Catch::Contains("the transforms act on 1-dimensional events, but the base Normal has shape []"));
}

TEST_CASE("MixtureSameFamily: one component equals the component, and two match their closed form",
          "[dist][combinators]") {
  const auto x = tv({-2.0, 0.1, 1.3, 4.0});
  const d::MixtureSameFamily one(d::Categorical(tv({1.0})), d::Normal(tv({0.4}), tv({1.3})));
  CHECK(one.batch_shape().empty());
  CHECK(torch::allclose(one.log_prob(x), d::Normal(t(0.4), t(1.3)).log_prob(x), 1e-12, 1e-12));
  const d::MixtureSameFamily one_mvn(d::Categorical(tv({1.0})),
                                     d::MultivariateNormal(tv({0.3, -0.1}).unsqueeze(0),
                                                           {.covariance = torch::tensor({{{2.0, 0.6}, {0.6, 1.0}}}, torch::kDouble)}));
  CHECK(one_mvn.event_shape() == std::vector<int64_t>{2});
  CHECK(one_mvn.log_prob(tv({1, 0.5})).item<double>() == Approx(-2.3004690897664234).epsilon(1e-10));
  // 0.3 N(-1, 0.5) + 0.7 N(2, 1), written out.
  const d::MixtureSameFamily two(d::Categorical(tv({0.3, 0.7})), d::Normal(tv({-1, 2}), tv({0.5, 1})));
  for (double v : {-2.0, -0.5, 0.7, 3.1}) {
    const double expected = std::log(0.3 * normal_pdf(v, -1, 0.5) + 0.7 * normal_pdf(v, 2, 1));
    CHECK(two.log_prob(t(v)).item<double>() == Approx(expected).epsilon(1e-12));
  }
  CHECK(two.mean().item<double>() == Approx(0.3 * -1 + 0.7 * 2));
  CHECK(two.variance().item<double>() == Approx(0.3 * (0.25 + 1) + 0.7 * (1 + 4) - std::pow(0.3 * -1 + 0.7 * 2, 2)));
  ppl::random::SeedScope seed(6);
  const int64_t n = 100000;
  const auto report = ppl::test::sampler_report(two, n, -10, 10);
  CHECK(report.mean_z < 5);
  CHECK(report.variance_z < 5);
  CHECK(report.ks < ks_critical(n));
  CHECK_FALSE(two.has_rsample());
  CHECK_THROWS_WITH(d::MixtureSameFamily(d::Categorical(tv({0.5, 0.5})), d::Normal(tv({0, 1, 2}), 1.0)),
                    Catch::Contains("MixtureSameFamily: the component has batch shape [3], but its last batch "
                                    "dimension must be the mixture's 2 categories"));
  // Parameter checks reach the parts, naming the site.
  CHECK_THROWS_WITH(ppl::test::sample_at_site(d::MixtureSameFamily(d::Categorical(tv({0.5, 0.5})), d::Normal(tv({0, 1}), tv({1, -1})))),
                    Catch::Contains("Normal: scale[1] is -1, but must be positive (site \"z_what/2\""));
}

TEST_CASE("MixtureSameFamily: batches, multivariate components, expand, mask and JSON", "[dist][combinators]") {
  ppl::random::SeedScope seed(12);
  // Three mixtures of two Dirichlets each: batch [3], event [4].
  const auto conc = torch::rand({3, 2, 4}, torch::kDouble) + 0.5;
  const d::MixtureSameFamily mix(d::Categorical(d::logits(torch::randn({3, 2}, torch::kDouble))), d::Dirichlet(conc));
  CHECK(mix.batch_shape() == std::vector<int64_t>{3});
  CHECK(mix.event_shape() == std::vector<int64_t>{4});
  CHECK(mix.support() == ppl::constraints::simplex);
  const auto y = mix.sample({5});
  CHECK(y.sizes() == c10::IntArrayRef({5, 3, 4}));
  CHECK(ppl::constraints::simplex.check(y).all().item<bool>());
  CHECK(mix.log_prob(y).sizes() == c10::IntArrayRef({5, 3}));
  // log p = logsumexp_k(log w_k + log p_k(y)).
  const auto w = mix.mixture().logits();
  const auto expected = (w + d::Dirichlet(conc).log_prob(y.unsqueeze(-2))).logsumexp(-1);
  CHECK(torch::allclose(mix.log_prob(y), expected));
  const auto big = mix.expand({2, 3});
  CHECK(big.batch_shape() == std::vector<int64_t>{2, 3});
  CHECK(big.sample().sizes() == c10::IntArrayRef({2, 3, 4}));
  const auto masked = mix.mask(torch::tensor({true, false, true})).to_event(1);
  CHECK(masked.log_prob(y).sizes() == c10::IntArrayRef({5}));
  CHECK(torch::allclose(masked.log_prob(y), mix.log_prob(y).select(-1, 0) + mix.log_prob(y).select(-1, 2)));
  const auto back = d::from_json(masked.to_json());
  CHECK(back->type_name() == "MixtureSameFamily");
  CHECK(back->event_shape() == std::vector<int64_t>{3, 4});
  CHECK(torch::allclose(back->log_prob(y), masked.log_prob(y)));
  // A mixture broadcasting one weight vector over a batch of components.
  const d::MixtureSameFamily shared(d::Categorical(tv({0.2, 0.8})), d::Normal(torch::zeros({6, 2}, torch::kDouble), 1.0));
  CHECK(shared.batch_shape() == std::vector<int64_t>{6});
  CHECK(shared.mixture().batch_shape() == std::vector<int64_t>{6});
}

TEST_CASE("Independent equals to_event, and FoldedDistribution folds a base onto the half-line from 0", "[dist][combinators]") {
  const auto loc = torch::randn({2, 3}, torch::kDouble);
  const d::Independent ind(d::Normal(loc, 1.5), 1);
  const auto ref = d::Normal(loc, 1.5).to_event(1);
  CHECK(ind.batch_shape() == ref.batch_shape());
  CHECK(ind.event_shape() == ref.event_shape());
  const auto x = torch::randn({4, 2, 3}, torch::kDouble);
  CHECK(torch::allclose(ind.log_prob(x), ref.log_prob(x)));
  CHECK(ind.has_rsample());
  CHECK(ind.sample({4}).sizes() == c10::IntArrayRef({4, 2, 3}));
  CHECK(torch::allclose(ind.mean(), loc));
  CHECK(ind.expand({5, 2}).batch_shape() == std::vector<int64_t>{5, 2});
  const auto back = d::from_json(ind.to_json());
  CHECK(back->type_name() == "Independent");
  CHECK(torch::allclose(back->log_prob(x), ind.log_prob(x)));
  CHECK(torch::allclose(d::kl(ind, d::Independent(d::Normal(torch::zeros({2, 3}, torch::kDouble), 1.0), 1)),
                        d::kl(ref, d::Normal(torch::zeros({2, 3}, torch::kDouble), 1.0).to_event(1))));
  CHECK_THROWS_WITH(d::Independent(d::Normal(0.0, 1.0), 1), Catch::Contains("to_event(1) needs 1 batch dimensions"));

  const d::FoldedDistribution folded(d::Normal(t(0.5), t(1.2)));
  for (double v : {0.0, 0.3, 2.5}) {
    const double expected = std::log(normal_pdf(v, 0.5, 1.2) + normal_pdf(-v, 0.5, 1.2));
    CHECK(folded.log_prob(t(v)).item<double>() == Approx(expected).epsilon(1e-12));
  }
  CHECK(torch::allclose(d::FoldedDistribution(d::Normal(t(0), t(1.7))).log_prob(tv({0, 1, 2})),
                        d::HalfNormal(t(1.7)).log_prob(tv({0, 1, 2}))));
  ppl::random::SeedScope seed(13);
  const int64_t n = 100000;
  const auto s = folded.sample({n});
  CHECK(ks_statistic(s, [&](const torch::Tensor& v) { return folded.log_prob(v).exp(); }, 0, 12) < ks_critical(n));
  CHECK_THROWS_WITH(d::FoldedDistribution(d::Dirichlet(tv({1, 1}))), Catch::Contains("must have scalar events"));
}

TEST_CASE("analytic KL of the second-wave families against quadrature, sums and Monte Carlo", "[dist][kl]") {
  // Quadrature of p log(p / q) on a fine grid, from the (tested) densities.
  const auto quadrature = [](const d::Distribution& p, const d::Distribution& q, double low, double high) {
    const auto x = torch::linspace(low, high, 400001, torch::kDouble);
    const auto lp = p.log_prob(x), lq = q.log_prob(x);
    return torch::trapezoid((lp.exp() * (lp - lq)).nan_to_num(0.0, 0.0, 0.0), x).item<double>();
  };
  // Sums over the support for the discrete ones.
  const auto summed = [](const d::Distribution& p, const d::Distribution& q, int64_t high) {
    const auto k = torch::arange(0, high + 1, torch::kDouble);
    const auto lp = p.log_prob(k), lq = q.log_prob(k);
    return (lp.exp() * (lp - lq)).sum().item<double>();
  };
  CHECK(d::kl(d::Exponential(t(1.5)), d::Exponential(t(0.4))).item<double>() ==
        Approx(quadrature(d::Exponential(t(1.5)), d::Exponential(t(0.4)), 0, 60)).epsilon(1e-6));
  CHECK(d::kl(d::HalfNormal(t(1.5)), d::HalfNormal(t(0.7))).item<double>() ==
        Approx(quadrature(d::HalfNormal(t(1.5)), d::HalfNormal(t(0.7)), 0, 30)).epsilon(1e-6));
  CHECK(d::kl(d::LogNormal(t(0.2), t(0.5)), d::LogNormal(t(-0.3), t(0.9))).item<double>() ==
        Approx(quadrature(d::LogNormal(t(0.2), t(0.5)), d::LogNormal(t(-0.3), t(0.9)), 1e-9, 60)).epsilon(1e-6));
  CHECK(d::kl(d::InverseGamma(t(3), t(2)), d::InverseGamma(t(2), t(1))).item<double>() ==
        Approx(quadrature(d::InverseGamma(t(3), t(2)), d::InverseGamma(t(2), t(1)), 1e-9, 200)).epsilon(1e-5));
  CHECK(d::kl(d::Chi2(t(4)), d::Chi2(t(2.5))).item<double>() ==
        Approx(quadrature(d::Chi2(t(4)), d::Chi2(t(2.5)), 1e-12, 200)).epsilon(1e-6));
  CHECK(d::kl(d::Poisson(t(3.5)), d::Poisson(t(1.2))).item<double>() ==
        Approx(summed(d::Poisson(t(3.5)), d::Poisson(t(1.2)), 100)).epsilon(1e-10));
  CHECK(d::kl(d::Geometric(t(0.3)), d::Geometric(d::logits(t(0.4)))).item<double>() ==
        Approx(summed(d::Geometric(t(0.3)), d::Geometric(d::logits(t(0.4))), 400)).epsilon(1e-10));
  const auto p = tv({0.2, 0.5, 0.3}), q = tv({0.4, 0.4, 0.2});
  CHECK(d::kl(d::OneHotCategorical(p), d::OneHotCategorical(q)).item<double>() ==
        Approx(d::kl(d::Categorical(p), d::Categorical(q)).item<double>()));
  // Normal across batch shapes: p [3] against q [2, 1] gives [2, 3].
  const auto kn = d::kl(d::Normal(tv({0, 1, 2}), 1.0), d::Normal(tv({0.5, -0.5}).unsqueeze(-1), 2.0));
  CHECK(kn.sizes() == c10::IntArrayRef({2, 3}));
  CHECK(kn[1][2].item<double>() == Approx(d::kl(d::Normal(t(2), t(1)), d::Normal(t(-0.5), t(2))).item<double>()));
  // Monte Carlo E_p[log p - log q] for Dirichlet and MultivariateNormal.
  ppl::random::SeedScope seed(15);
  const auto monte_carlo = [](const d::Distribution& a, const d::Distribution& b) {
    const int64_t n = 200000;
    const auto x = a.sample({n});
    const auto r = a.log_prob(x) - b.log_prob(x);
    return std::pair{r.mean().item<double>(), r.std().item<double>() / std::sqrt(static_cast<double>(n))};
  };
  const d::Dirichlet da(tv({2, 3.5, 0.7})), db(tv({1, 1.5, 2}));
  const auto [mc_d, se_d] = monte_carlo(da, db);
  CHECK(std::abs(d::kl(da, db).item<double>() - mc_d) < 5 * se_d);
  const d::MultivariateNormal ma(tv({0, 1, -1}), {.covariance = torch::tensor({{1.5, 0.3, -0.2}, {0.3, 1.0, 0.4}, {-0.2, 0.4, 0.8}}, torch::kDouble)});
  const d::MultivariateNormal mb(tv({0.5, 0.5, 0}), {.scale_tril = torch::tensor({{1.0, 0.0, 0.0}, {0.2, 0.7, 0.0}, {-0.3, 0.1, 1.2}}, torch::kDouble)});
  const auto [mc_m, se_m] = monte_carlo(ma, mb);
  CHECK(std::abs(d::kl(ma, mb).item<double>() - mc_m) < 5 * se_m);
  // Pairs without a closed form list the ones with.
  CHECK_FALSE(d::has_kl(d::Cauchy(0.0, 1.0), d::Cauchy(0.0, 2.0)));
  CHECK(d::has_kl(d::Dirichlet(tv({1, 1})), d::Dirichlet(tv({2, 1}))));
  CHECK_THROWS_WITH(d::kl(d::Normal(0.0, 1.0), d::Cauchy(0.0, 1.0)),
                    Catch::Contains("kl: no closed form for KL(Normal || Cauchy); closed forms exist for Normal-Normal") &&
                        Catch::Contains("MultivariateNormal-MultivariateNormal") && Catch::Contains("Dirichlet-Dirichlet"));
}
