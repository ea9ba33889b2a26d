#pragma once
// Shared helpers for the core tests: finite differences, goodness-of-fit
// statistics, moment checks and pathwise-gradient checks.
#include <cmath>
#include <functional>
#include <tuple>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <ppl/core/random.hpp>

namespace ppl::test {

/// A 0-dim double tensor.
inline torch::Tensor t(double v) { return torch::tensor(v, torch::kDouble); }
/// A double vector.
inline torch::Tensor tv(std::vector<double> v) { return torch::tensor(v, torch::kDouble); }
/// A double matrix, row by row.
inline torch::Tensor mat(const std::vector<std::vector<double>>& rows) {
  std::vector<torch::Tensor> r;
  for (const auto& row : rows) r.push_back(tv(row));
  return torch::stack(r);
}

/// Central finite-difference gradient of scalar f at x (double tensors).
inline torch::Tensor finite_difference(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                       const torch::Tensor& x, double h = 1e-6) {
  auto g = torch::zeros_like(x);
  auto flat = x.detach().clone().reshape({-1});
  auto gf = g.reshape({-1});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    auto plus = flat.clone(), minus = flat.clone();
    plus[i] += h;
    minus[i] -= h;
    const double fp = f(plus.reshape(x.sizes())).item<double>();
    const double fm = f(minus.reshape(x.sizes())).item<double>();
    gf[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/// Kolmogorov-Smirnov statistic of `samples` against the CDF obtained by
/// integrating `density` (trapezoid rule) over [low, high] on a fine grid.
inline double ks_statistic(const torch::Tensor& samples, const std::function<torch::Tensor(const torch::Tensor&)>& density,
                           double low, double high, int64_t grid = 200001) {
  auto x = torch::linspace(low, high, grid, torch::kDouble);
  auto p = density(x).nan_to_num(0.0, 0.0, 0.0);
  auto mid = (p.narrow(0, 1, grid - 1) + p.narrow(0, 0, grid - 1)) * 0.5 * (high - low) / (grid - 1);
  auto cdf = torch::cat({torch::zeros({1}, torch::kDouble), mid.cumsum(0)});
  cdf = cdf / cdf[-1];
  auto s = std::get<0>(samples.to(torch::kDouble).reshape({-1}).sort());
  const auto n = s.numel();
  auto idx = torch::searchsorted(x, s).clamp(1, grid - 1);
  auto x0 = x.index_select(0, idx - 1), x1 = x.index_select(0, idx);
  auto c0 = cdf.index_select(0, idx - 1), c1 = cdf.index_select(0, idx);
  auto f = c0 + (c1 - c0) * (s - x0) / (x1 - x0);
  auto i = torch::arange(1, n + 1, torch::kDouble);
  auto d1 = (i / n - f).max().item<double>();
  auto d2 = (f - (i - 1) / n).max().item<double>();
  return std::max(d1, d2);
}

/// The KS critical value at level 0.001 for n samples.
inline double ks_critical(int64_t n) { return 1.95 / std::sqrt(static_cast<double>(n)); }

/// The chi-square critical value at level 0.001 for `df` degrees of freedom
/// (Wilson-Hilferty's normal approximation, z = 3.09).
inline double chi_square_critical(int64_t df) {
  const double k = static_cast<double>(df), z = 3.0902323061678132;
  return k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
}

/// Pearson's chi-square statistic of integer draws `x` against the
/// probabilities `probs(k)` of a distribution on {low, low + 1, ...}: one
/// cell per value below `high` and one for all values from `high` up (with
/// the probability left over), adjacent cells pooled until each expects at
/// least 5 draws. Returns {statistic, degrees of freedom}.
inline std::pair<double, int64_t> chi_square(const torch::Tensor& x, const std::function<double(int64_t)>& probs,
                                            int64_t low, int64_t high) {
  const auto v = x.to(torch::kLong).reshape({-1}).clamp(low, high) - low;
  const auto n = static_cast<double>(v.numel());
  const auto counts = torch::bincount(v, {}, high - low + 1).to(torch::kDouble);
  std::vector<double> expected, observed;
  double mass = 0;
  for (int64_t k = low; k <= high; ++k) {
    const double p = k < high ? probs(k) : std::max(0.0, 1 - mass);
    mass += p;
    expected.push_back(p * n);
    observed.push_back(counts[k - low].item<double>());
  }
  std::vector<std::pair<double, double>> pools;  // (expected, observed)
  double e = 0, o = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    e += expected[i];
    o += observed[i];
    if (e >= 5) {
      pools.emplace_back(e, o);
      e = o = 0;
    }
  }
  if (pools.empty()) pools.emplace_back(e, o);
  else {
    pools.back().first += e;
    pools.back().second += o;
  }
  double stat = 0;
  for (const auto& [pe, po] : pools) stat += pe > 0 ? (po - pe) * (po - pe) / pe : (po > 0 ? INFINITY : 0.0);
  return {stat, static_cast<int64_t>(pools.size()) - 1};
}

/// How far the sample moments of the draws `x` [n, ...] lie from `mean` and
/// `variance` (broadcast to x's trailing shape), in standard errors: the
/// largest |sample mean - mean| / sqrt(variance / n) and
/// |sample variance - variance| / sqrt((m4 - s^4) / n) over the elements,
/// with the fourth central moment m4 estimated from the draws.
inline std::pair<double, double> moment_z(const torch::Tensor& x, const torch::Tensor& mean,
                                          const torch::Tensor& variance) {
  const auto d = x.to(torch::kDouble);
  const auto n = static_cast<double>(d.size(0));
  const auto m = d.mean(0);
  const auto c = d - m;
  const auto s2 = c.pow(2).sum(0) / (n - 1);
  const auto m4 = c.pow(4).mean(0);
  const auto mu = mean.to(torch::kDouble), var = variance.to(torch::kDouble);
  const auto z_mean = (m - mu).abs() / (var / n).sqrt();
  const auto z_var = (s2 - var).abs() / ((m4 - s2.pow(2)) / n).sqrt();
  return {z_mean.max().item<double>(), z_var.max().item<double>()};
}

/// Per-sample pathwise gradients: `draw(theta)` builds a distribution from
/// the parameter vector theta = [theta0] * n (n independent copies) and
/// returns one reparameterised draw per copy, `f` maps the draws to one
/// number per copy; returns d f_i / d theta_i by autograd [n].
inline torch::Tensor pathwise_gradients(const std::function<torch::Tensor(const torch::Tensor&)>& draw,
                                        const std::function<torch::Tensor(const torch::Tensor&)>& f, double theta0,
                                        int64_t n, uint64_t seed) {
  ppl::random::SeedScope scope(seed);
  auto theta = torch::full({n}, theta0, torch::kDouble).requires_grad_(true);
  return torch::autograd::grad({f(draw(theta)).sum()}, {theta})[0];
}

/// The same derivatives by central differences with common random numbers
/// (the same seed on both sides) [n].
inline torch::Tensor common_random_differences(const std::function<torch::Tensor(const torch::Tensor&)>& draw,
                                               const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                               double theta0, int64_t n, uint64_t seed, double h = 1e-6) {
  torch::NoGradGuard no_grad;
  auto run = [&](double theta) {
    ppl::random::SeedScope scope(seed);
    return f(draw(torch::full({n}, theta, torch::kDouble)));
  };
  return (run(theta0 + h) - run(theta0 - h)) / (2 * h);
}

/// d/dtheta of E[f(x)] under the density exp(log_density(theta, x)), by
/// central differences of the trapezoid rule on a fine grid over [low, high].
inline double expectation_derivative(const std::function<torch::Tensor(double, const torch::Tensor&)>& log_density,
                                     const std::function<torch::Tensor(const torch::Tensor&)>& f, double theta0,
                                     double low, double high, double h = 1e-4, int64_t grid = 400001) {
  const auto x = torch::linspace(low, high, grid, torch::kDouble);
  auto expectation = [&](double theta) {
    const auto w = log_density(theta, x).exp().nan_to_num(0.0, 0.0, 0.0) * f(x);
    return torch::trapezoid(w, x).item<double>();
  };
  return (expectation(theta0 + h) - expectation(theta0 - h)) / (2 * h);
}

/// log |det J| of y = f(x) by autograd, J over the free coordinates: x's
/// trailing dimension (a vector per batch element) and the entries of
/// f(x)'s events that `pick` selects as a vector. x [B, n]; returns [B].
inline torch::Tensor autograd_log_det(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                      const std::function<torch::Tensor(const torch::Tensor&)>& pick,
                                      const torch::Tensor& x) {
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < x.size(0); ++b) {
    auto xb = x[b].detach().clone().requires_grad_(true);
    const auto y = pick(f(xb));
    std::vector<torch::Tensor> rows;
    for (int64_t i = 0; i < y.numel(); ++i)
      rows.push_back(torch::autograd::grad({y[i]}, {xb}, {}, /*retain_graph=*/true)[0]);
    out.push_back(std::get<1>(torch::linalg_slogdet(torch::stack(rows))));
  }
  return torch::stack(out);
}

}  // namespace ppl::test

#include <ppl/core/handlers.hpp>
#include <ppl/core/sites.hpp>

namespace ppl::test {

/// One row of a log-density table: a distribution, a value, and the log
/// density computed independently.
struct LogProbRow {
  const char* what;
  std::function<std::shared_ptr<ppl::dist::Distribution>()> make;
  torch::Tensor value;
  double expected;
};
inline void check_log_probs(const std::vector<LogProbRow>& rows) {
  for (const auto& row : rows) {
    INFO(row.what);
    CHECK(row.make()->log_prob(row.value).item<double>() == Approx(row.expected).epsilon(1e-10).margin(1e-12));
  }
}

/// One row of an error table: something to run and a part of the message it must throw.
struct ThrowRow {
  std::function<void()> run;
  const char* message;
};
inline void check_throws(const std::vector<ThrowRow>& rows) {
  for (const auto& row : rows) {
    INFO(row.message);
    CHECK_THROWS_WITH(row.run(), Catch::Contains(row.message));
  }
}

/// Samples `dist` at the site "z_what/2" of a traced program, so that its
/// parameter checks run as they do in a model (messages name the site).
inline void sample_at_site(const ppl::dist::Distribution& dist) {
  ppl::trace([&] { ppl::sample("z_what/2", dist); });
}

/// Draws of `dist` [n, ...] with their moment distances (standard errors) and
/// Kolmogorov-Smirnov statistic against the density integrated over
/// [low, high]: {z of the mean, z of the variance, KS statistic}.
struct SamplerReport {
  double mean_z = 0, variance_z = 0, ks = 0;
};
inline SamplerReport sampler_report(const ppl::dist::Distribution& dist, int64_t n, double low, double high,
                                    bool moments = true) {
  const auto x = dist.sample({n});
  SamplerReport r;
  if (moments) std::tie(r.mean_z, r.variance_z) = moment_z(x, dist.mean(), dist.variance());
  r.ks = ks_statistic(x, [&](const torch::Tensor& v) { return dist.log_prob(v).exp(); }, low, high);
  return r;
}

}  // namespace ppl::test
