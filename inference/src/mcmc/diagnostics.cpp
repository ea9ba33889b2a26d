// R-hat, effective sample sizes and the summary table (see diagnostics.hpp).
#include <ppl/infer/mcmc/diagnostics.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <ostream>

#include <boost/math/special_functions/erf.hpp>
#include <fmt/format.h>

#include <ppl/core/errors.hpp>

namespace ppl::infer::mcmc {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// M and N; ArgumentError for ragged chains.
std::pair<size_t, size_t> dims(const Chains& chains) {
  const size_t m = chains.size(), n = m > 0 ? chains[0].size() : 0;
  for (const auto& c : chains)
    if (c.size() != n)
      throw ArgumentError(fmt::format("MCMC diagnostics: chains of {} and {} draws; every chain needs the same number",
                                      n, c.size()));
  return {m, n};
}

double mean(const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size()); }

/// The unbiased variance of x.
double variance(const std::vector<double>& x) {
  const double mu = mean(x);
  double sum = 0;
  for (double v : x) sum += (v - mu) * (v - mu);
  return sum / static_cast<double>(x.size() - 1);
}

std::vector<double> pooled(const Chains& chains) {
  std::vector<double> all;
  for (const auto& c : chains) all.insert(all.end(), c.begin(), c.end());
  return all;
}

/// True when the diagnostics are defined: at least 4 draws per chain, all
/// finite, and not all equal.
bool usable(const Chains& chains) {
  const auto [m, n] = dims(chains);
  if (m == 0 || n < 4) return false;
  bool varies = false;
  for (const auto& c : chains) {
    if (!std::all_of(c.begin(), c.end(), [](double v) { return std::isfinite(v); })) return false;
    varies = varies || std::any_of(c.begin(), c.end(), [&](double v) { return v != chains[0][0]; });
  }
  return varies;
}

/// Within-chain and total variance estimates: W and var+.
std::pair<double, double> variances(const Chains& chains) {
  const auto [m, n] = dims(chains);
  std::vector<double> means, vars;
  for (const auto& c : chains) {
    means.push_back(mean(c));
    vars.push_back(variance(c));
  }
  const double w = mean(vars);
  const double nn = static_cast<double>(n);
  double var_plus = w * (nn - 1) / nn;
  if (m > 1) var_plus += variance(means);
  return {w, var_plus};
}

/// The folded draws |x - median(x)|.
Chains fold(const Chains& chains) {
  const double median = quantile(chains, 0.5);
  Chains out = chains;
  for (auto& c : out)
    for (auto& v : c) v = std::abs(v - median);
  return out;
}
}  // namespace

Chains split_chains(const Chains& chains) {
  const auto [m, n] = dims(chains);
  const size_t half = n / 2;
  Chains out;
  out.reserve(2 * m);
  for (const auto& c : chains) {
    out.emplace_back(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(half));
    out.emplace_back(c.end() - static_cast<std::ptrdiff_t>(half), c.end());
  }
  return out;
}

Chains rank_normalize(const Chains& chains) {
  const auto all = pooled(chains);
  const size_t s = all.size();
  std::vector<size_t> order(s);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return all[a] < all[b]; });
  std::vector<double> rank(s);
  for (size_t i = 0; i < s;) {
    size_t j = i;
    while (j + 1 < s && all[order[j + 1]] == all[order[i]]) ++j;
    const double average = (static_cast<double>(i) + static_cast<double>(j)) / 2 + 1;  // 1-based
    for (size_t k = i; k <= j; ++k) rank[order[k]] = average;
    i = j + 1;
  }
  Chains out = chains;
  size_t k = 0;
  const double total = static_cast<double>(s);
  for (auto& c : out)
    for (auto& v : c) {
      const double p = (rank[k++] - 0.375) / (total + 0.25);
      v = std::sqrt(2.0) * boost::math::erf_inv(2 * p - 1);
    }
  return out;
}

double rhat_basic(const Chains& chains) {
  if (!usable(chains)) return kNaN;
  const auto [w, var_plus] = variances(chains);
  return std::sqrt(var_plus / w);
}

double split_rhat(const Chains& chains) { return rhat_basic(split_chains(chains)); }

double rank_normalized_rhat(const Chains& chains) {
  if (!usable(chains)) return kNaN;
  const auto split = split_chains(chains);
  const double bulk = rhat_basic(rank_normalize(split));
  const double tail = rhat_basic(rank_normalize(fold(split)));
  return std::max(bulk, tail);
}

double ess_basic(const Chains& chains) {
  if (!usable(chains)) return kNaN;
  const auto [m, n] = dims(chains);
  const auto [w, var_plus] = variances(chains);
  std::vector<double> means;
  for (const auto& c : chains) means.push_back(mean(c));
  const double nn = static_cast<double>(n);
  // rho_t from the chains' autocovariances at lag t, computed as needed.
  const auto rho = [&](size_t t) {
    double acov = 0;
    for (size_t c = 0; c < m; ++c) {
      const auto& x = chains[c];
      double sum = 0;
      for (size_t i = 0; i + t < n; ++i) sum += (x[i] - means[c]) * (x[i + t] - means[c]);
      acov += sum / nn;
    }
    return 1 - (w - acov / static_cast<double>(m)) / var_plus;
  };
  // Pairs P_k = rho_2k + rho_2k+1 while positive, lags up to N - 3.
  std::vector<double> pairs = {1 + rho(1)};
  double last_even = 1;  // the even lag of the last pair examined
  bool limit = true;     // every pair up to the lag limit was positive
  for (size_t k = 1; 2 * k + 1 <= n - 3; ++k) {
    const double even = rho(2 * k), odd = rho(2 * k + 1);
    if (!(even + odd > 0)) {
      last_even = std::max(even, 0.0);
      limit = false;
      break;
    }
    pairs.push_back(even + odd);
    last_even = even;
  }
  // At the lag limit the last pair counts with its even lag only, as a
  // first non-positive pair would.
  if (limit && pairs.size() > 1) pairs.pop_back();
  for (size_t k = 1; k < pairs.size(); ++k) pairs[k] = std::min(pairs[k], pairs[k - 1]);
  double tau = -1 + 2 * std::accumulate(pairs.begin(), pairs.end(), 0.0) + last_even;
  const double total = static_cast<double>(m * n);
  tau = std::max(tau, 1 / std::log10(total));
  return total / tau;
}

double ess_mean(const Chains& chains) { return ess_basic(split_chains(chains)); }

double ess_bulk(const Chains& chains) {
  if (!usable(chains)) return kNaN;
  return ess_basic(rank_normalize(split_chains(chains)));
}

double ess_tail(const Chains& chains) {
  if (!usable(chains)) return kNaN;
  const auto split = split_chains(chains);
  double out = std::numeric_limits<double>::infinity();
  for (double prob : {0.05, 0.95}) {
    const double q = quantile(chains, prob);
    Chains indicator = split;
    for (auto& c : indicator)
      for (auto& v : c) v = v <= q ? 1.0 : 0.0;
    out = std::min(out, ess_basic(indicator));
  }
  return out;
}

double quantile(const Chains& chains, double prob) {
  auto all = pooled(chains);
  if (all.empty()) return kNaN;
  std::sort(all.begin(), all.end());
  const double h = prob * static_cast<double>(all.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, all.size() - 1);
  return all[lo] + (h - static_cast<double>(lo)) * (all[hi] - all[lo]);
}

SummaryRow summarize(std::string name, const Chains& chains, const std::vector<double>& probs) {
  SummaryRow row;
  row.name = std::move(name);
  const auto all = pooled(chains);
  row.mean = mean(all);
  row.sd = all.size() > 1 ? std::sqrt(variance(all)) : kNaN;
  row.mcse_mean = row.sd / std::sqrt(ess_mean(chains));
  for (double p : probs) row.quantiles.push_back(quantile(chains, p));
  row.rhat = rank_normalized_rhat(chains);
  row.ess_bulk = ess_bulk(chains);
  row.ess_tail = ess_tail(chains);
  return row;
}

const SummaryRow& Summary::row(const std::string& name) const {
  for (const auto& r : rows)
    if (r.name == name) return r;
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(r.name);
  throw Error(fmt::format("Summary: no row \"{}\" (rows: {})", name, fmt::join(names, ", ")));
}

int64_t Summary::total_divergences() const { return std::accumulate(divergences.begin(), divergences.end(), int64_t{0}); }

double Summary::min_ess_per_second() const {
  double ess = std::numeric_limits<double>::infinity();
  for (const auto& r : rows) ess = std::min(ess, r.ess_bulk);
  return ess / std::accumulate(sampling_seconds.begin(), sampling_seconds.end(), 0.0);
}

std::string Summary::to_string() const {
  size_t width = 4;
  for (const auto& r : rows) width = std::max(width, r.name.size());
  std::string out = fmt::format("{:<{}} {:>10} {:>10} {:>9}", "", width, "mean", "sd", "mcse");
  for (double p : probs) out += fmt::format(" {:>9}", fmt::format("{:g}%", 100 * p));
  out += fmt::format(" {:>7} {:>8} {:>8}\n", "r_hat", "ess_bulk", "ess_tail");
  for (const auto& r : rows) {
    out += fmt::format("{:<{}} {:>10.4g} {:>10.4g} {:>9.3g}", r.name, width, r.mean, r.sd, r.mcse_mean);
    for (double q : r.quantiles) out += fmt::format(" {:>9.4g}", q);
    out += fmt::format(" {:>7.3f} {:>8.0f} {:>8.0f}\n", r.rhat, r.ess_bulk, r.ess_tail);
  }
  out += fmt::format("{} chains x {} draws; divergences after warm-up: {} ({}); step size: {:.3g}",
                     chains, draws, total_divergences(), fmt::join(divergences, ", "), fmt::join(step_size, ", "));
  out += fmt::format("; mean accept prob: {:.2f}", fmt::join(mean_accept_prob, ", "));
  if (std::any_of(mean_tree_depth.begin(), mean_tree_depth.end(), [](double d) { return d > 0; }))
    out += fmt::format("; mean tree depth: {:.1f}", fmt::join(mean_tree_depth, ", "));
  out += "\n";
  return out;
}

std::ostream& operator<<(std::ostream& os, const Summary& summary) { return os << summary.to_string(); }

}  // namespace ppl::infer::mcmc
