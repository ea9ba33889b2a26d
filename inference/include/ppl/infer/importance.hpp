#pragma once
/// Importance-sampling estimates of the marginal likelihood log p(x).
#include <optional>
#include <string>
#include <utility>

#include <torch/types.h>

#include <ppl/core/plate.hpp>
#include <ppl/infer/elbo.hpp>

namespace ppl::infer {

/// Runs guide and model once for `n` particles in parallel (see
/// ImportanceOptions::vectorise).
using VectorisedRunner = std::function<TracePair(int64_t n)>;

/// Options of `log_marginal`.
struct ImportanceOptions {
  /// K, the number of importance samples per data point.
  int64_t particles = 100;
  /// Particles whose log-weights are held at once before being folded into
  /// the running log-sum-exp: memory is O(chunk x data points).
  int64_t chunk = 100;
  /// Draw a chunk's particles in one run of each program, inside an outer
  /// plate "_particles" of size chunk at dim -(max_plate_nesting + 1): the
  /// programs must broadcast over that leading batch dimension. Unset (the
  /// default): tried on the first chunk, and where the programs do not
  /// broadcast (an error in that run), one run per particle instead, with
  /// the reason in the result's `note`. true: required; false: never.
  std::optional<bool> vectorise{};
  /// The number of nested plates the programs use (for `vectorise`).
  int max_plate_nesting = 1;
};

/// `ImportanceOptions` as JSON and back (unknown keys are a ppl::Error).
void to_json(nlohmann::json& j, const ImportanceOptions& options);
void from_json(const nlohmann::json& j, ImportanceOptions& options);

/// Result of `log_marginal`.
struct LogMarginal {
  /// log p(x_n) estimated per data point n (per element of the outermost
  /// plate of the observed sites; one value when they are in no plate).
  /// When a random site lies outside that plate (a global latent), log p(x)
  /// does not factorise per data point: one value, log p(x_1, ..., x_N).
  torch::Tensor log_likelihood;
  /// Effective sample size per estimate, (sum_k w_k)^2 / sum_k w_k^2, in [1, K].
  torch::Tensor ess;
  /// Standard error of each estimate by the delta method, sqrt(1/ESS - 1/K)
  /// (unreliable when the ESS is small).
  torch::Tensor standard_error;
  /// True for the joint estimate (a latent outside the data plate).
  bool joint = false;
  /// True when particles were drawn in vectorised runs.
  bool vectorised = false;
  /// Why particles were drawn one run at a time after vectorising was tried.
  std::string note;
};

/// log p(x_n) ~= logsumexp_k [log p(x_n, z_k) - log q(z_k | x_n)] - log K
/// with z_k ~ q (Burda et al. 2016, Eq. 8 evaluated for large K); with a
/// latent outside the data plate, the same for the whole data set. Runs
/// without gradient. Throws ArgumentError for particles or chunk < 1,
/// SiteError for unpaired sites.
LogMarginal log_marginal_impl(const Runner& run, const ImportanceOptions& options,
                              const VectorisedRunner& vectorised = {});

/// Per-data-point log-weights log p(x_n, z) - log q(z | x_n) of one trace
/// pair: each site's log_prob summed over every dimension except the data
/// plate's. Shape [N]; [1] without a data plate or when a random site lies
/// outside it (the joint weight); [n, N] or [n, 1] with vectorised particles.
torch::Tensor log_weights(const TracePair& traces, std::string_view who = "log_marginal");

/// True when the model has a data plate but some random site lies outside
/// it, so that the weights of `traces` are joint, not per data point.
bool is_joint(const TracePair& traces);

namespace detail {
/// Runs guide and model inside an outer plate of `n` particles.
template <class M, class G, class... Args>
VectorisedRunner make_vectorised_runner(M& model, G& guide, const ImportanceOptions& options, Args&... args) {
  if (!options.vectorise.value_or(true)) return {};
  const int64_t dim = -(options.max_plate_nesting + 1);
  return [&model, &guide, dim, &args...](int64_t n) { return run_pair(true, n, dim, dim - 1, model, guide, args...); };
}
/// One run per particle, enumeration dims from -(max_plate_nesting + 1).
template <class M, class G, class... Args>
Runner make_importance_runner(M& model, G& guide, const ImportanceOptions& options, Args&... args) {
  return make_runner(true, -(options.max_plate_nesting + 1), model, guide, args...);
}
}  // namespace detail

/// `log_marginal(model, guide, x, {.particles = K, .chunk = C})`.
template <class M, class G>
LogMarginal log_marginal(M&& model, G&& guide, ImportanceOptions options) {
  return log_marginal_impl(detail::make_importance_runner(model, guide, options), options,
                           detail::make_vectorised_runner(model, guide, options));
}
template <class M, class G, class A1>
LogMarginal log_marginal(M&& model, G&& guide, A1&& a1, ImportanceOptions options) {
  return log_marginal_impl(detail::make_importance_runner(model, guide, options, a1), options,
                           detail::make_vectorised_runner(model, guide, options, a1));
}
template <class M, class G, class A1, class A2>
LogMarginal log_marginal(M&& model, G&& guide, A1&& a1, A2&& a2, ImportanceOptions options) {
  return log_marginal_impl(detail::make_importance_runner(model, guide, options, a1, a2), options,
                           detail::make_vectorised_runner(model, guide, options, a1, a2));
}
template <class M, class G, class A1, class A2, class A3>
LogMarginal log_marginal(M&& model, G&& guide, A1&& a1, A2&& a2, A3&& a3, ImportanceOptions options) {
  return log_marginal_impl(detail::make_importance_runner(model, guide, options, a1, a2, a3), options,
                           detail::make_vectorised_runner(model, guide, options, a1, a2, a3));
}
template <class M, class G, class A1, class A2, class A3, class A4>
LogMarginal log_marginal(M&& model, G&& guide, A1&& a1, A2&& a2, A3&& a3, A4&& a4, ImportanceOptions options) {
  return log_marginal_impl(detail::make_importance_runner(model, guide, options, a1, a2, a3, a4), options,
                           detail::make_vectorised_runner(model, guide, options, a1, a2, a3, a4));
}

}  // namespace ppl::infer
