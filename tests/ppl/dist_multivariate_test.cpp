// MultivariateNormal, LowRankMultivariateNormal, Dirichlet and LKJCholesky:
// log densities against closed forms (mpmath with explicit matrix inverses
// and determinants; LKJ from its row densities integrated numerically),
// invalid parameters, samplers (moments, KS tests of projections and
// marginals), pathwise gradients, and the equality of a diagonal
// MultivariateNormal with Normal(...).to_event(1).
#include <catch2/catch.hpp>

#include <ppl/core/random.hpp>
#include <ppl/dist.hpp>

#include "test_util.hpp"

namespace d = ppl::dist;
using ppl::test::check_log_probs;
using ppl::test::check_throws;
using ppl::test::ks_critical;
using ppl::test::ks_statistic;
using ppl::test::mat;
using ppl::test::moment_z;
using ppl::test::sample_at_site;
using ppl::test::t;
using ppl::test::tv;

namespace {
const auto kS2 = [] { return mat({{2, 0.6}, {0.6, 1}}); };
const auto kS3 = [] { return mat({{1.5, 0.3, -0.2}, {0.3, 1, 0.4}, {-0.2, 0.4, 0.8}}); };
const auto kW = [] { return mat({{1, 0.5}, {0.2, -0.3}, {0.4, 0.1}}); };
/// A Cholesky factor of a 3 x 3 correlation matrix (rows of unit norm).
torch::Tensor corr_factor() {
  return mat({{1, 0, 0}, {0.3, std::sqrt(1 - 0.09), 0}, {-0.2, 0.5, std::sqrt(1 - 0.04 - 0.25)}});
}
}  // namespace

TEST_CASE("multivariate families: log densities match closed forms", "[dist][multivariate]") {
  check_log_probs({
      {"MultivariateNormal(covariance) 2-d",
       [] { return d::MultivariateNormal(tv({0.3, -0.1}), {.covariance = kS2()}).clone(); }, tv({1, 0.5}),
       -2.3004690897664234},
      // The same law through its factor (2 x 2 Cholesky by hand) and its precision (2 x 2 inverse by hand).
      {"MultivariateNormal(scale_tril) 2-d",
       [] {
         return d::MultivariateNormal(tv({0.3, -0.1}), {.scale_tril = mat({{1.4142135623730950, 0},
                                                                           {0.42426406871192851, 0.90553851381374166}})})
             .clone();
       },
       tv({1, 0.5}), -2.3004690897664234},
      {"MultivariateNormal(precision) 2-d",
       [] {
         return d::MultivariateNormal(tv({0.3, -0.1}), {.precision = mat({{0.60975609756097561, -0.36585365853658537},
                                                                          {-0.36585365853658537, 1.2195121951219512}})})
             .clone();
       },
       tv({1, 0.5}), -2.3004690897664234},
      {"MultivariateNormal(covariance) 3-d", [] { return d::MultivariateNormal(tv({0, 1, -1}), {.covariance = kS3()}).clone(); },
       tv({0.5, 0.5, 0.5}), -5.9280563239569133},
      {"LowRankMultivariateNormal", [] { return d::LowRankMultivariateNormal(tv({0.1, 0.2, 0.3}), kW(), tv({0.5, 1, 0.8})).clone(); },
       tv({1, -1, 0.5}), -3.914723551230659},
      {"Dirichlet([2 3.5 .7])", [] { return d::Dirichlet(tv({2, 3.5, 0.7})).clone(); }, tv({0.2, 0.5, 0.3}),
       0.68934391642237051},
      {"Dirichlet([1 1 1]) (uniform)", [] { return d::Dirichlet(tv({1, 1, 1})).clone(); }, tv({0.1, 0.1, 0.8}),
       0.69314718055994531},
      {"Dirichlet([1 2 1]) on the boundary", [] { return d::Dirichlet(tv({1, 2, 1})).clone(); }, tv({0, 0.5, 0.5}),
       1.0986122886681097},
      {"LKJCholesky(2, 2) at r = .3", [] { return d::LKJCholesky(2, t(2)).clone(); },
       mat({{1, 0}, {0.3, std::sqrt(1 - 0.09)}}), -0.38199275192302225},
      {"LKJCholesky(2, .5) at r = -.8", [] { return d::LKJCholesky(2, t(0.5)).clone(); }, mat({{1, 0}, {-0.8, 0.6}}),
       -0.63390426208340949},
      {"LKJCholesky(3, 1.5)", [] { return d::LKJCholesky(3, t(1.5)).clone(); }, corr_factor(), -1.292502684137646},
  });
  // The three parameterisations describe one law.
  const d::MultivariateNormal by_cov(tv({0.3, -0.1}), {.covariance = kS2()});
  const d::MultivariateNormal by_precision(tv({0.3, -0.1}), {.precision = torch::linalg_inv(kS2())});
  CHECK(torch::allclose(by_cov.scale_tril(), by_precision.scale_tril()));
  CHECK(torch::allclose(by_cov.precision(), by_precision.precision()));
  CHECK(torch::allclose(by_precision.covariance(), kS2()));
  const d::LowRankMultivariateNormal low(tv({0.1, 0.2, 0.3}), kW(), tv({0.5, 1, 0.8}));
  CHECK(torch::allclose(low.covariance(), torch::matmul(kW(), kW().t()) + torch::diag(tv({0.5, 1, 0.8}))));
}

TEST_CASE("MultivariateNormal with a diagonal scale equals Normal(...).to_event(1)", "[dist][multivariate]") {
  ppl::random::SeedScope seed(8);
  const auto loc = torch::randn({4, 3}, torch::kDouble);
  const auto scale = torch::rand({4, 3}, torch::kDouble) + 0.5;
  const d::MultivariateNormal mvn(loc, {.scale_tril = torch::diag_embed(scale)});
  const auto normal = d::Normal(loc, scale).to_event(1);
  CHECK(mvn.batch_shape() == normal.batch_shape());
  CHECK(mvn.event_shape() == normal.event_shape());
  const auto x = torch::randn({5, 4, 3}, torch::kDouble);
  CHECK(torch::allclose(mvn.log_prob(x), normal.log_prob(x), 1e-12, 1e-12));
  CHECK(torch::allclose(mvn.mean(), normal.mean()));
  CHECK(torch::allclose(mvn.variance(), normal.variance()));
  // Same noise, same draws.
  ppl::random::SeedScope a(9);
  const auto xa = mvn.sample({2});
  ppl::random::SeedScope b(9);
  CHECK(torch::allclose(xa, normal.sample({2})));
  CHECK(torch::allclose(d::kl(mvn, d::MultivariateNormal(torch::zeros({3}, torch::kDouble),
                                                         {.covariance = torch::eye(3, torch::kDouble)})),
                        d::kl(normal, d::Normal(torch::zeros({3}, torch::kDouble), 1.0).to_event(1))));
}

TEST_CASE("multivariate families: invalid parameters name the distribution, argument, value and site",
          "[dist][multivariate]") {
  check_throws({
      {[] { d::MultivariateNormal(tv({0, 0}), {}); },
       "MultivariateNormal: give exactly one of scale_tril, covariance or precision (given: none)"},
      {[] { d::MultivariateNormal(tv({0, 0}), {.covariance = kS2(), .precision = kS2()}); },
       "(given: covariance, precision)"},
      {[] { sample_at_site(d::MultivariateNormal(tv({0, 0}), {.covariance = mat({{1, 2}, {2, 1}})})); },
       "MultivariateNormal: covariance is [[1, 2], [2, 1]], but must be symmetric positive definite (site "
       "\"z_what/2\", "},
      {[] { sample_at_site(d::MultivariateNormal(tv({0, 0}), {.precision = mat({{1, 0.5}, {0.4, 1}})})); },
       "MultivariateNormal: precision is [[1, 0.5], [0.4, 1]], but must be symmetric positive definite"},
      {[] {
         sample_at_site(d::MultivariateNormal(torch::zeros({2, 2}, torch::kDouble),
                                              {.scale_tril = torch::stack({torch::eye(2, torch::kDouble), mat({{1, 0}, {0.5, -1}})})}));
       },
       "MultivariateNormal: scale_tril[1] is [[1, 0], [0.5, -1]], but must be lower triangular with a positive diagonal"},
      {[] { d::MultivariateNormal(tv({0, 0}), {.covariance = kS3()}); },
       "MultivariateNormal: covariance has shape [3, 3], but must be [..., 2, 2] (loc has shape [2])"},
      {[] { d::MultivariateNormal(0.0, {.covariance = kS2()}); }, "MultivariateNormal: loc has shape [] (a number)"},
      {[] { sample_at_site(d::MultivariateNormal(tv({NAN, 0}), {.covariance = kS2()})); },
       "MultivariateNormal: loc[0] is nan, but must be finite"},
      {[] { d::LowRankMultivariateNormal(tv({0, 0}), kW(), tv({1, 1})); },
       "LowRankMultivariateNormal: loc has shape [2], cov_factor [3, 2] and cov_diag [2]"},
      {[] { sample_at_site(d::LowRankMultivariateNormal(tv({0, 0, 0}), kW(), tv({1, 0, 1}))); },
       "LowRankMultivariateNormal: cov_diag[1] is 0, but must be positive"},
      {[] { sample_at_site(d::Dirichlet(tv({1, -0.5, 2}))); },
       "Dirichlet: concentration[1] is -0.5, but must be positive (site \"z_what/2\", "},
      {[] { d::Dirichlet(2.0); }, "Dirichlet: concentration has shape [] (a number), but must have at least 1 dimension"},
      {[] { d::LKJCholesky(1); }, "LKJCholesky: dim is 1, but must be at least 2"},
      {[] { sample_at_site(d::LKJCholesky(3, 0.0)); }, "LKJCholesky: concentration is 0, but must be positive"},
      {[] { d::LKJCholesky(3).rsample(); }, "LKJCholesky: rsample is not available"},
      {[] { ppl::trace([] { ppl::observe("x", d::Dirichlet(tv({1, 1})), tv({0.5, 0.6})); }); },
       "Dirichlet: value is [0.5, 0.6], but must be in the simplex (nonnegative, summing to 1) (the support) (site \"x\""},
      {[] { ppl::trace([] { ppl::observe("x", d::LKJCholesky(2), mat({{1, 0}, {0.6, 0.6}})); }); },
       "LKJCholesky: value is [[1, 0], [0.6, 0.6]], but must be the Cholesky factor of a correlation matrix"},
  });
}

TEST_CASE("multivariate families: 100,000 draws match moments, projections and marginals", "[dist][multivariate]") {
  ppl::random::SeedScope seed(31);
  const int64_t n = 100000;
  const auto check_moments = [&](const d::Distribution& dist, const torch::Tensor& x) {
    const auto [mz, vz] = moment_z(x, dist.mean(), dist.variance());
    CHECK(mz < 5);
    CHECK(vz < 5);
  };
  // Gaussians: a^T x is Normal(a^T loc, a^T S a).
  const auto a = tv({0.6, -0.8, 0.5});
  const auto projection_ks = [&](const torch::Tensor& x, const torch::Tensor& loc, const torch::Tensor& cov) {
    const d::Normal p(torch::dot(a, loc), torch::dot(a, torch::mv(cov, a)).sqrt());
    return ks_statistic(torch::mv(x, a), [&](const torch::Tensor& v) { return p.log_prob(v).exp(); }, -30, 30);
  };
  const d::MultivariateNormal mvn(tv({0, 1, -1}), {.covariance = kS3()});
  const auto xm = mvn.sample({n});
  check_moments(mvn, xm);
  CHECK(projection_ks(xm, tv({0, 1, -1}), kS3()) < ks_critical(n));
  const d::LowRankMultivariateNormal low(tv({0.1, 0.2, 0.3}), kW(), tv({0.5, 1, 0.8}));
  const auto xl = low.sample({n});
  check_moments(low, xl);
  CHECK(projection_ks(xl, low.loc(), low.covariance()) < ks_critical(n));
  // Dirichlet: each x_i is Beta(alpha_i, alpha_0 - alpha_i).
  const auto alpha = tv({2, 3.5, 0.7});
  const d::Dirichlet dir(alpha);
  const auto xd = dir.sample({n});
  CHECK(ppl::constraints::simplex.check(xd).all().item<bool>());
  check_moments(dir, xd);
  for (int64_t i = 0; i < 3; ++i) {
    INFO("Dirichlet marginal " << i);
    const d::Beta marginal(alpha[i], alpha.sum() - alpha[i]);
    CHECK(ks_statistic(xd.select(-1, i), [&](const torch::Tensor& v) { return marginal.log_prob(v).exp(); }, 0, 1) <
          ks_critical(n));
  }
  // LKJCholesky: every correlation of L L^T has (r + 1) / 2 ~ Beta(b, b),
  // b = eta - 1 + D / 2.
  const int64_t dim = 4;
  const double eta = 1.5;
  const auto l = d::LKJCholesky(dim, t(eta)).sample({n});
  CHECK(ppl::constraints::corr_cholesky.check(l).all().item<bool>());
  const auto corr = torch::matmul(l, l.transpose(-1, -2));
  const d::Beta marginal(eta - 1 + dim / 2.0, eta - 1 + dim / 2.0);
  for (auto [i, j] : {std::pair{1, 0}, {3, 0}, {3, 2}}) {
    INFO("LKJ correlation " << i << ", " << j);
    const auto r = (corr.select(-2, i).select(-1, j) + 1) / 2;
    CHECK(ks_statistic(r, [&](const torch::Tensor& v) { return marginal.log_prob(v).exp(); }, 0, 1) < ks_critical(n));
  }
}

TEST_CASE("multivariate families: rsample gradients match finite differences of the expectation",
          "[dist][multivariate]") {
  using Fn = std::function<torch::Tensor(const torch::Tensor&)>;
  const Fn norm2 = [](const torch::Tensor& x) { return x.pow(2).sum(-1); };
  /// [n, 2] rows (a, b) built from theta [n] and a constant.
  const auto pair = [](const torch::Tensor& th, double other, bool first) {
    const auto c = torch::full_like(th, other);
    return first ? torch::stack({th, c}, -1) : torch::stack({c, th}, -1);
  };
  const auto with_entry = [](const torch::Tensor& th, torch::Tensor base, int64_t i, int64_t j) {
    auto m = base.expand({th.size(0), base.size(0), base.size(1)}).clone();
    m.select(-2, i).select(-1, j).copy_(th);
    return m;
  };
  const std::vector<std::pair<const char*, Fn>> rows = {
      {"MultivariateNormal loc",
       [&](auto th) { return d::MultivariateNormal(pair(th, 0.3, true), {.covariance = kS2()}).rsample(); }},
      {"MultivariateNormal scale_tril",
       [&](auto th) {
         return d::MultivariateNormal(tv({0.3, -0.1}), {.scale_tril = with_entry(th, mat({{1.2, 0}, {0, 0.8}}), 1, 0)}).rsample();
       }},
      {"MultivariateNormal covariance",
       [&](auto th) {
         auto s = with_entry(th, kS2(), 1, 0);
         s.select(-2, 0).select(-1, 1).copy_(th);
         return d::MultivariateNormal(tv({0.3, -0.1}), {.covariance = s}).rsample();
       }},
      {"MultivariateNormal precision",
       [&](auto th) {
         auto p = with_entry(th, mat({{1.5, 0}, {0, 1.2}}), 1, 0);
         p.select(-2, 0).select(-1, 1).copy_(th);
         return d::MultivariateNormal(tv({0.3, -0.1}), {.precision = p}).rsample();
       }},
      {"LowRankMultivariateNormal cov_factor",
       [&](auto th) {
         return d::LowRankMultivariateNormal(tv({0.1, 0.2, 0.3}), with_entry(th, kW(), 2, 1), tv({0.5, 1, 0.8})).rsample();
       }},
      {"LowRankMultivariateNormal cov_diag",
       [&](auto th) {
         const auto diag = torch::stack({th, torch::full_like(th, 1.0), torch::full_like(th, 0.8)}, -1);
         return d::LowRankMultivariateNormal(tv({0.1, 0.2, 0.3}), kW(), diag).rsample();
       }},
  };
  const int64_t n = 20000;
  for (const auto& [what, draw] : rows) {
    INFO(what);
    const auto grads = ppl::test::pathwise_gradients(draw, norm2, 0.4, n, 17);
    const auto fd = ppl::test::common_random_differences(draw, norm2, 0.4, n, 17);
    const double se = (grads - fd).std().item<double>() / std::sqrt(n);
    INFO("autograd " << grads.mean().item<double>() << ", differences " << fd.mean().item<double>());
    CHECK(std::abs(grads.mean().item<double>() - fd.mean().item<double>()) <= 5 * se + 1e-6);
  }
  // Dirichlet: through ATen's gamma gradient, whose draws at fixed noise jump
  // with the parameter; the reference is d/d alpha_0 of E[x_0^2] under x_0's
  // Beta(alpha_0, alpha_1 + alpha_2) marginal, by quadrature.
  const Fn draw = [](const torch::Tensor& th) {
    return d::Dirichlet(torch::stack({th, torch::full_like(th, 3.5), torch::full_like(th, 0.7)}, -1)).rsample();
  };
  const Fn first_squared = [](const torch::Tensor& x) { return x.select(-1, 0).pow(2); };
  const auto grads = ppl::test::pathwise_gradients(draw, first_squared, 2.0, n, 17);
  const double expected = ppl::test::expectation_derivative(
      [](double th, const torch::Tensor& x) { return d::Beta(t(th), t(4.2)).log_prob(x); },
      [](const torch::Tensor& x) { return x.pow(2); }, 2.0, 0, 1);
  CHECK(std::abs(grads.mean().item<double>() - expected) <= 5 * grads.std().item<double>() / std::sqrt(n) + 1e-5);
}

TEST_CASE("multivariate families: batch shapes, expand, to_event and JSON round trips", "[dist][multivariate]") {
  const d::MultivariateNormal m(torch::zeros({4, 2}, torch::kDouble), {.covariance = kS2()});
  CHECK(m.batch_shape() == std::vector<int64_t>{4});
  CHECK(m.event_shape() == std::vector<int64_t>{2});
  const auto e = m.expand({3, 4}).to_event(1);
  CHECK(e.batch_shape() == std::vector<int64_t>{3});
  CHECK(e.event_shape() == std::vector<int64_t>{4, 2});
  CHECK(e.sample({5}).sizes() == c10::IntArrayRef({5, 3, 4, 2}));
  CHECK(e.log_prob(torch::zeros({3, 4, 2}, torch::kDouble)).sizes() == c10::IntArrayRef({3}));
  const auto lkj = d::LKJCholesky(3, tv({1.0, 2.0}));
  CHECK(lkj.event_shape() == std::vector<int64_t>{3, 3});
  CHECK(lkj.sample({2}).sizes() == c10::IntArrayRef({2, 2, 3, 3}));
  const std::vector<std::pair<std::shared_ptr<d::Distribution>, torch::Tensor>> all = {
      {e.clone(), torch::full({3, 4, 2}, 0.3, torch::kDouble)},
      {d::MultivariateNormal(tv({0, 1}), {.precision = kS2()}).clone(), tv({0.5, 0.5})},
      {d::LowRankMultivariateNormal(tv({0, 1, 2}), kW(), tv({1, 1, 1})).clone(), tv({0.5, 0.5, 0.5})},
      {d::Dirichlet(tv({1, 2, 3})).clone(), tv({0.2, 0.3, 0.5})},
      {d::LKJCholesky(3, t(1.5)).clone(), corr_factor()},
  };
  for (const auto& [dist, value] : all) {
    INFO(dist->type_name());
    const auto back = d::from_json(dist->to_json());
    CHECK(back->to_json() == dist->to_json());
    CHECK(torch::allclose(back->log_prob(value), dist->log_prob(value)));
  }
}
