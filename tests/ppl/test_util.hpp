#pragma once
// Shared helpers for the core tests: finite differences and a KS statistic.
#include <functional>

#include <torch/torch.h>

namespace ppl::test {

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

}  // namespace ppl::test
