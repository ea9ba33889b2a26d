// The univariate continuous families of the second wave: log densities
// against textbook values (computed independently in mpmath at 50 digits,
// boundaries of the support included), invalid parameters, sampler moments
// and Kolmogorov-Smirnov tests, and pathwise gradients against finite
// differences with common random numbers.
#include <catch2/catch.hpp>

#include <ppl/core/random.hpp>
#include <ppl/dist.hpp>

#include "test_util.hpp"

namespace d = ppl::dist;
using ppl::test::ks_critical;
using ppl::test::sample_at_site;
using ppl::test::sampler_report;
using ppl::test::t;

namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

TEST_CASE("continuous families: log densities match textbook values", "[dist][continuous]") {
  ppl::test::check_log_probs({
      {"Exponential(2.5) at 0 (boundary)", [] { return d::Exponential(t(2.5)).clone(); }, t(0.0), 0.91629073187415507},
      {"Exponential(2.5) at 1.3", [] { return d::Exponential(t(2.5)).clone(); }, t(1.3), -2.3337092681258449},
      {"Exponential(0.4) at 7", [] { return d::Exponential(t(0.4)).clone(); }, t(7.0), -3.7162907318741551},
      {"LogNormal(0.3, 0.8) at 1.7", [] { return d::LogNormal(t(0.3), t(0.8)).clone(); }, t(1.7), -1.2679774440370049},
      {"LogNormal(-1, 2) at 0.05", [] { return d::LogNormal(t(-1), t(2)).clone(); }, t(0.05), 0.8857781463262502},
      {"HalfNormal(1.5) at 0 (boundary)", [] { return d::HalfNormal(t(1.5)).clone(); }, t(0.0), -0.63125646075289181},
      {"HalfNormal(1.5) at 2.2", [] { return d::HalfNormal(t(1.5)).clone(); }, t(2.2), -1.7068120163084474},
      {"HalfCauchy(2) at 0 (boundary)", [] { return d::HalfCauchy(t(2)).clone(); }, t(0.0), -1.1447298858494002},
      {"HalfCauchy(2) at 3.5", [] { return d::HalfCauchy(t(2)).clone(); }, t(3.5), -2.546528433505256},
      {"Cauchy(0.5, 2) at -3", [] { return d::Cauchy(t(0.5), t(2)).clone(); }, t(-3.0), -3.2396756140652014},
      {"Cauchy(0, 1) at 0", [] { return d::Cauchy(t(0), t(1)).clone(); }, t(0.0), -1.1447298858494002},
      {"StudentT(3, 0.5, 2) at 1.7", [] { return d::StudentT(t(3), t(0.5), t(2)).clone(); }, t(1.7), -1.9206934007974614},
      {"StudentT(0.7) at -12", [] { return d::StudentT(t(0.7)).clone(); }, t(-12.0), -5.7536505225631938},
      {"StudentT(30, -1, 0.5) at -1", [] { return d::StudentT(t(30), t(-1), t(0.5)).clone(); }, t(-1.0),
       -0.23412314481890034},
      {"InverseGamma(2.5, 1.5) at 0.8", [] { return d::InverseGamma(t(2.5), t(1.5)).clone(); }, t(0.8),
       -0.36501767060277406},
      {"InverseGamma(0.5, 3) at 10", [] { return d::InverseGamma(t(0.5), t(3)).clone(); }, t(10.0), -3.7769364380817138},
      {"Chi2(3) at 2.5", [] { return d::Chi2(t(3)).clone(); }, t(2.5), -1.7107931672675952},
      {"Chi2(1) at 0.3", [] { return d::Chi2(t(1)).clone(); }, t(0.3), -0.46695213104170475},
      {"Weibull(2, 1.5) at 1.3", [] { return d::Weibull(t(2), t(1.5)).clone(); }, t(1.3), -1.0271202841374138},
      {"Weibull(1, 1) at 0 (boundary)", [] { return d::Weibull(t(1), t(1)).clone(); }, t(0.0), 0.0},
      {"Weibull(0.5, 3) at 0.7", [] { return d::Weibull(t(0.5), t(3)).clone(); }, t(0.7), -0.27929605752951914},
      {"VonMises(0.5, 2) at -1", [] { return d::VonMises(t(0.5), t(2)).clone(); }, t(-1.0), -2.5203962045568959},
      {"VonMises(0, 0) at 1 (uniform)", [] { return d::VonMises(t(0), t(0)).clone(); }, t(1.0), -1.8378770664093455},
      {"VonMises(3, 50) at pi (boundary)", [] { return d::VonMises(t(3), t(50)).clone(); }, t(kPi), 0.5341722617411228},
  });
}

TEST_CASE("continuous families: invalid parameters name the distribution, argument, value and site",
          "[dist][continuous]") {
  ppl::test::check_throws({
      {[] { sample_at_site(d::Exponential(torch::tensor({1.0, -0.5}))); },
       "Exponential: rate[1] is -0.5, but must be positive (site \"z_what/2\", "},
      {[] { sample_at_site(d::LogNormal(0.0, INFINITY)); }, "LogNormal: scale is inf, but must be finite (site"},
      {[] { sample_at_site(d::HalfNormal(0.0)); }, "HalfNormal: scale is 0, but must be positive (site"},
      {[] { sample_at_site(d::HalfCauchy(-1.0)); }, "HalfCauchy: scale is -1, but must be positive"},
      {[] { sample_at_site(d::Cauchy(NAN, 1.0)); }, "Cauchy: loc is nan, but must be finite"},
      {[] { sample_at_site(d::StudentT(0.0)); }, "StudentT: df is 0, but must be positive"},
      {[] { sample_at_site(d::InverseGamma(-2.0, 1.0)); }, "InverseGamma: concentration is -2, but must be positive"},
      {[] { sample_at_site(d::Chi2(-1.0)); }, "Chi2: df is -1, but must be positive"},
      {[] { sample_at_site(d::Weibull(1.0, 0.0)); }, "Weibull: concentration is 0, but must be positive"},
      {[] { sample_at_site(d::VonMises(0.0, -1.0)); }, "VonMises: concentration is -1, but must be nonnegative"},
      {[] { d::VonMises(0.0, 1.0).rsample(); }, "VonMises: rsample is not available"},
      {[] { d::StudentT(torch::ones({2}), torch::zeros({3})); }, "StudentT: parameter shapes [2] and [3] do not broadcast"},
      {[] { d::Cauchy(0.0, 1.0).mean(); }, "Cauchy: the mean is not available"},
  });
  // Observed values outside the support, infinities included.
  auto observe = [](const d::Distribution& dist, double v) {
    ppl::trace([&] { ppl::observe("x", dist, t(v)); });
  };
  CHECK_THROWS_WITH(observe(d::Exponential(1.0), -0.1),
                    Catch::Contains("Exponential: value is -0.1, but must be nonnegative and finite (the support) (site \"x\""));
  CHECK_THROWS_WITH(observe(d::LogNormal(0.0, 1.0), 0.0), Catch::Contains("value is 0, but must be positive"));
  CHECK_THROWS_WITH(observe(d::StudentT(3.0), INFINITY), Catch::Contains("StudentT: value is inf, but must be finite"));
  CHECK_THROWS_WITH(observe(d::VonMises(0.0, 1.0), 4.0), Catch::Contains("value is 4, but must be in [-3.14159"));
  CHECK_NOTHROW(observe(d::HalfCauchy(1.0), 0.0));
}

TEST_CASE("continuous families: 100,000 draws match mean and variance and pass a KS test", "[dist][continuous]") {
  ppl::random::SeedScope seed(2024);
  const int64_t n = 100000;
  struct Row {
    const char* what;
    std::shared_ptr<d::Distribution> dist;
    double low, high;
    bool moments;
  };
  const std::vector<Row> rows = {
      {"Exponential", d::Exponential(t(1.7)).clone(), 0, 30, true},
      {"LogNormal", d::LogNormal(t(0.2), t(0.5)).clone(), 0, 40, true},
      {"HalfNormal", d::HalfNormal(t(1.3)).clone(), 0, 12, true},
      {"HalfCauchy", d::HalfCauchy(t(0.8)).clone(), 0, 5000, false},
      {"Cauchy", d::Cauchy(t(0.5), t(1.2)).clone(), -4000, 4000, false},
      {"StudentT", d::StudentT(t(10), t(0.5), t(1.5)).clone(), -60, 60, true},
      {"InverseGamma", d::InverseGamma(t(10), t(4)).clone(), 0, 20, true},
      {"Chi2", d::Chi2(t(4)).clone(), 0, 80, true},
      {"Weibull", d::Weibull(t(1.5), t(2.0)).clone(), 0, 15, true},
      {"VonMises", d::VonMises(t(0.7), t(2.5)).clone(), -kPi, kPi, false},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    const auto r = sampler_report(*row.dist, n, row.low, row.high, row.moments);
    CHECK(r.mean_z < 5);
    CHECK(r.variance_z < 5);
    CHECK(r.ks < ks_critical(n));
  }
  // VonMises: the circular mean and variance. E[cos(x - loc)] = I1/I0(kappa)
  // = 1 - variance(), E[sin(x - loc)] = 0.
  const d::VonMises vm(t(2.9), t(0.8));  // near the wrap at pi
  const auto x = vm.sample({n});
  const auto c = torch::cos(x - 2.9), s = torch::sin(x - 2.9);
  const double se_c = c.std().item<double>() / std::sqrt(n), se_s = s.std().item<double>() / std::sqrt(n);
  CHECK(std::abs(c.mean().item<double>() - (1 - vm.variance().item<double>())) < 5 * se_c);
  CHECK(std::abs(s.mean().item<double>()) < 5 * se_s);
  CHECK(((x >= -kPi).logical_and(x < kPi)).all().item<bool>());
  // Near kappa = 0 the sampler is uniform, and exactly uniform at 0.
  for (double kappa : {0.0, 1e-7}) {
    const auto u = d::VonMises(t(0), t(kappa)).sample({n});
    CHECK(ppl::test::ks_statistic(u, [](const torch::Tensor& v) { return torch::ones_like(v); }, -kPi, kPi) <
          ks_critical(n));
  }
}

TEST_CASE("continuous families: rsample gradients match finite differences of the expectation",
          "[dist][continuous]") {
  using Fn = std::function<torch::Tensor(const torch::Tensor&)>;
  using LogDensity = std::function<torch::Tensor(double, const torch::Tensor&)>;
  struct Row {
    const char* what;
    Fn draw;  ///< theta [n] -> one draw per copy
    Fn f;     ///< draws -> one number per copy
    double theta;
    /// For the families drawn through ATen's gamma sampler: its rejection
    /// step makes the draws at fixed noise jump with the parameter, so the
    /// reference is the derivative of E[f] by quadrature of the density.
    LogDensity density = nullptr;
    double low = 0, high = 0;
  };
  const Fn square = [](const torch::Tensor& x) { return x.pow(2); };
  const Fn bounded = [](const torch::Tensor& x) { return torch::atan(x); };  // heavy tails: a bounded f
  const std::vector<Row> rows = {
      {"Exponential rate", [](auto th) { return d::Exponential(th).rsample(); }, square, 1.7},
      {"LogNormal loc", [](auto th) { return d::LogNormal(th, 0.5).rsample(); }, square, 0.2},
      {"LogNormal scale", [](auto th) { return d::LogNormal(0.2, th).rsample(); }, square, 0.5},
      {"HalfNormal scale", [](auto th) { return d::HalfNormal(th).rsample(); }, square, 1.3},
      {"HalfCauchy scale", [](auto th) { return d::HalfCauchy(th).rsample(); }, bounded, 0.8},
      {"Cauchy loc", [](auto th) { return d::Cauchy(th, 1.2).rsample(); }, bounded, 0.5},
      {"Cauchy scale", [](auto th) { return d::Cauchy(0.5, th).rsample(); }, bounded, 1.2},
      {"StudentT scale", [](auto th) { return d::StudentT(4.0, 0.5, th).rsample(); }, bounded, 1.5},
      {"InverseGamma rate", [](auto th) { return d::InverseGamma(3.0, th).rsample(); }, bounded, 4.0},
      {"Weibull scale", [](auto th) { return d::Weibull(th, 2.0).rsample(); }, square, 1.5},
      {"Weibull concentration", [](auto th) { return d::Weibull(1.5, th).rsample(); }, square, 2.0},
      {"StudentT df", [](auto th) { return d::StudentT(th, 0.5, 1.5).rsample(); }, bounded, 4.0,
       [](double th, const torch::Tensor& x) { return d::StudentT(t(th), t(0.5), t(1.5)).log_prob(x); }, -3000, 3000},
      {"InverseGamma concentration", [](auto th) { return d::InverseGamma(th, 4.0).rsample(); }, bounded, 3.0,
       [](double th, const torch::Tensor& x) { return d::InverseGamma(t(th), t(4.0)).log_prob(x); }, 0, 200},
      {"Chi2 df", [](auto th) { return d::Chi2(th).rsample(); }, bounded, 4.0,
       [](double th, const torch::Tensor& x) { return d::Chi2(t(th)).log_prob(x); }, 0, 200},
  };
  const int64_t n = 20000;
  for (const auto& row : rows) {
    INFO(row.what);
    const auto grads = ppl::test::pathwise_gradients(row.draw, row.f, row.theta, n, 99);
    const double mean = grads.mean().item<double>();
    if (!row.density) {
      const auto fd = ppl::test::common_random_differences(row.draw, row.f, row.theta, n, 99);
      const double se = (grads - fd).std().item<double>() / std::sqrt(n);
      INFO("autograd " << mean << ", differences " << fd.mean().item<double>() << ", se " << se);
      CHECK(std::abs(mean - fd.mean().item<double>()) <= 5 * se + 1e-6 * (1 + std::abs(mean)));
    } else {
      const double expected = ppl::test::expectation_derivative(row.density, row.f, row.theta, row.low, row.high);
      const double se = grads.std().item<double>() / std::sqrt(n);
      INFO("autograd " << mean << ", quadrature " << expected << ", se " << se);
      CHECK(std::abs(mean - expected) <= 5 * se + 1e-5);
    }
  }
}

TEST_CASE("continuous families: shapes, expand to the concrete type, to_event and JSON", "[dist][continuous]") {
  const auto e = d::Exponential(torch::tensor({1.0, 2.0}, torch::kDouble)).expand({3, 2}).to_event(1);
  CHECK(e.batch_shape() == std::vector<int64_t>{3});
  CHECK(e.event_shape() == std::vector<int64_t>{2});
  CHECK(e.rate().sizes() == c10::IntArrayRef({3, 2}));
  const auto n = d::Normal(0.0, 1.0).expand({3}).to_event(1);
  CHECK(n.event_shape() == std::vector<int64_t>{3});
  CHECK(n.sample({4}).sizes() == c10::IntArrayRef({4, 3}));
  CHECK_THROWS_WITH(d::Normal(torch::zeros({2}), 1.0).expand({3}), Catch::Contains("cannot expand batch shape [2] to [3]"));
  const std::vector<std::shared_ptr<d::Distribution>> all = {
      d::Exponential(t(1.5)).clone(),     d::LogNormal(t(0.1), t(0.6)).clone(), d::HalfNormal(t(2)).clone(),
      d::HalfCauchy(t(2)).clone(),        d::Cauchy(t(0), t(3)).clone(),       d::StudentT(t(4), t(1), t(2)).clone(),
      d::InverseGamma(t(3), t(2)).clone(), d::Chi2(t(5)).clone(),              d::Weibull(t(1), t(3)).clone(),
      d::VonMises(t(1), t(2)).clone()};
  for (const auto& dist : all) {
    INFO(dist->type_name());
    const auto back = d::from_json(dist->to_json());
    CHECK(back->type_name() == dist->type_name());
    CHECK(back->log_prob(t(0.7)).item<double>() == Approx(dist->log_prob(t(0.7)).item<double>()));
  }
}
