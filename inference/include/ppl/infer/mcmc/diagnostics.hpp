#pragma once
/// Convergence diagnostics of MCMC draws, as the Stan reference manual
/// defines them (after Vehtari, Gelman, Simpson, Carpenter and Buerkner
/// 2021, "Rank-normalization, folding, and localization: an improved R-hat"):
/// split R-hat, rank-normalised split R-hat, bulk and tail effective sample
/// sizes, and the table that `Mcmc::summary()` prints.
///
/// Draws of one scalar quantity are `Chains`: M chains of N draws each.
/// With fewer than 4 draws per chain, draws that are not finite, or draws
/// that are all equal, the diagnostics are NaN.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace ppl::infer::mcmc {

/// chains[m][n]: draw n of chain m (every chain the same length).
using Chains = std::vector<std::vector<double>>;

/// Each chain cut into its first and second half (the middle draw dropped
/// when N is odd): 2M chains of N/2 draws.
Chains split_chains(const Chains& chains);

/// Draws replaced by their normal scores z = Phi^-1((r - 3/8) / (MN + 1/4)),
/// r the rank among all MN draws (ties get their average rank).
Chains rank_normalize(const Chains& chains);

/// The potential scale reduction of the chains as given,
/// sqrt(var+ / W), var+ = (N - 1)/N W + B/N, W the mean within-chain
/// variance, B/N the variance of the chain means.
double rhat_basic(const Chains& chains);

/// Classic split R-hat: `rhat_basic(split_chains(x))`.
double split_rhat(const Chains& chains);

/// Stan's R-hat: the larger of the rank-normalised split R-hat of the draws
/// and of the draws folded about their median, |x - median|.
double rank_normalized_rhat(const Chains& chains);

/// The effective sample size of the chains as given: MN / tau, with
///
///     rho_t = 1 - (W - mean_m acov_m(t)) / var+,     rho_0 = 1,
///
/// acov_m(t) = (1/N) sum_n (x_mn - xbar_m)(x_m(n+t) - xbar_m), summed in
/// pairs P_k = rho_2k + rho_2k+1 while they stay positive (Geyer's initial
/// positive sequence, lags up to N - 3), each pair capped by the one
/// before (the initial monotone sequence); tau = -1 + 2 sum_k P_k plus the
/// even lag of the first non-positive pair when it is positive (at the lag
/// limit: the last pair counts with its even lag only), and tau at least
/// 1 / log10(MN). The same numbers as Stan's (rstan's `ess_rfun` on chains
/// whose length has no prime factor above 5, where its FFT is exact).
double ess_basic(const Chains& chains);

/// ESS of the mean: `ess_basic(split_chains(x))`.
double ess_mean(const Chains& chains);

/// Bulk-ESS: the ESS of the rank-normalised split chains.
double ess_bulk(const Chains& chains);

/// Tail-ESS: the smaller ESS of the indicators x <= q05 and x <= q95 (split
/// chains), q the pooled draws' 5 % and 95 % quantiles.
double ess_tail(const Chains& chains);

/// The quantile `prob` of all draws pooled, linearly interpolated between
/// order statistics (numpy's and R's default).
double quantile(const Chains& chains, double prob);

/// One row of a summary: a scalar element of a latent site.
struct SummaryRow {
  std::string name;  ///< "mu", "theta[3]", "L[1,0]"
  double mean = 0;
  double sd = 0;            ///< of the pooled draws
  double mcse_mean = 0;     ///< sd / sqrt(ess_mean)
  std::vector<double> quantiles;
  double rhat = 0;          ///< rank-normalised split R-hat
  double ess_bulk = 0;
  double ess_tail = 0;
};

/// The diagnostics of one scalar quantity.
SummaryRow summarize(std::string name, const Chains& chains, const std::vector<double>& probs);

/// What `Mcmc::summary()` gives: a row per scalar element of every latent
/// site, and the sampler's diagnostics after warm-up.
struct Summary {
  std::vector<double> probs;     ///< the quantiles' probabilities
  std::vector<SummaryRow> rows;
  int64_t chains = 0;
  int64_t draws = 0;             ///< per chain
  std::vector<int64_t> divergences;  ///< per chain, after warm-up
  std::vector<double> step_size;     ///< per chain, after warm-up
  std::vector<double> mean_accept_prob;  ///< per chain, after warm-up
  std::vector<double> mean_tree_depth;   ///< per chain, after warm-up (NUTS)
  std::vector<double> warmup_seconds, sampling_seconds;  ///< per chain

  /// The row of element `name` ("theta[3]"); ppl::Error listing the names otherwise.
  const SummaryRow& row(const std::string& name) const;
  /// The sum of `divergences`.
  int64_t total_divergences() const;
  /// The smallest bulk-ESS over every row per second of sampling (after
  /// warm-up), the chains' times summed: effective draws of the slowest
  /// parameter per second of one core, whether the chains ran in parallel
  /// or one after another.
  double min_ess_per_second() const;
  /// A table: one line per row (mean, sd, mcse, quantiles, R-hat, ESS),
  /// then the divergences and step sizes.
  std::string to_string() const;
};

std::ostream& operator<<(std::ostream& os, const Summary& summary);

}  // namespace ppl::infer::mcmc
