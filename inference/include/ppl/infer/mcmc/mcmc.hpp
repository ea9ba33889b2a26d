#pragma once
/// The MCMC driver: runs chains of a kernel (`Nuts`, `Hmc`) over a model,
/// one thread per chain, and keeps their draws and diagnostics.
///
///   ppl::infer::Nuts kernel(model);
///   ppl::infer::Mcmc mcmc(kernel, {.warmup = 1000, .samples = 1000, .chains = 4, .seed = 1});
///   mcmc.run(x, y);
///   auto draws = mcmc.samples();       // name -> [C, S, ...]
///   std::cout << mcmc.summary();       // mean, sd, quantiles, R-hat, ESS, divergences
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <ppl/infer/mcmc/diagnostics.hpp>
#include <ppl/infer/mcmc/kernel.hpp>

namespace ppl::infer {

/// Options of `Mcmc`. Aggregate: `{.warmup = 500, .samples = 500, .chains = 4, .seed = 3}`.
struct McmcOptions {
  /// Warm-up (adapting) iterations per chain, discarded.
  int64_t warmup = 1000;
  /// Draws kept per chain.
  int64_t samples = 1000;
  /// Number of chains, run in parallel threads.
  int64_t chains = 1;
  /// Seed of the chains' random streams (chain c gets a stream of its own);
  /// unset: one drawn from torch's generator (so `torch::manual_seed` or
  /// `ppl::handlers::seed` around `run` repeat a run).
  std::optional<uint64_t> seed{};
  /// A progress bar per chain on stderr (plain lines when it is not a terminal).
  bool progress = true;
  /// Run the chains on threads of their own (each with one libtorch
  /// intra-op thread); false: one after another on the calling thread.
  bool parallel = true;
  /// Argument validation (ppl::set_validation) inside the transitions too.
  /// Off by default: the prototype run and each chain's initial point are
  /// validated as usual; in the transitions every latent lies in its
  /// support by construction, and a density that is not finite is rejected
  /// either way, while the checks cost more than the model itself.
  bool validate_transitions = false;
};

void to_json(nlohmann::json& j, const McmcOptions& options);
/// Missing keys keep their defaults; an unknown key is a ppl::Error naming it.
void from_json(const nlohmann::json& j, McmcOptions& options);

namespace mcmc {

/// What one chain reports, after warm-up.
struct ChainResult {
  double step_size = 0;
  /// The adapted inverse mass matrix: diagonal [D] or dense [D, D].
  torch::Tensor inverse_mass_matrix;
  int64_t warmup_divergences = 0;
  double warmup_seconds = 0, sampling_seconds = 0;
};

/// Runs the chains of `kernel` on the model of `runner`. Throws what the
/// model or the kernel throws (the first chain's error, after every chain
/// stopped).
class Results;
Results run_chains(const Kernel& kernel, const ModelRunner& runner, const McmcOptions& options);

/// The draws and diagnostics of a run: the part of `Mcmc` that does not
/// depend on the kernel's type.
class Results {
 public:
  /// Constrained draws of every latent site: name -> [C, S, ...] (the
  /// site's dtype). ppl::Error before `run`.
  const std::map<std::string, torch::Tensor>& samples() const;
  /// The draws with the chains one after another: name -> [C * S, ...],
  /// as `Predictive`'s `posterior_samples` takes them.
  std::map<std::string, torch::Tensor> flat_samples() const;
  /// Per-draw statistics of the sampler after warm-up, name -> [C, S]
  /// (double): "accept_prob", "diverging", "num_steps", "tree_depth",
  /// "energy", "step_size".
  const std::map<std::string, torch::Tensor>& sample_stats() const;
  /// Per chain: adapted step size and mass matrix, warm-up divergences, times.
  const std::vector<ChainResult>& chains() const;
  /// Divergent transitions after warm-up, all chains.
  int64_t divergences() const;
  /// Mean, sd, quantiles `probs`, rank-normalised split R-hat, bulk- and
  /// tail-ESS of every scalar element of every latent site, with the
  /// divergences, step sizes and times.
  mcmc::Summary summary(const std::vector<double>& probs = {0.05, 0.5, 0.95}) const;

 private:
  friend Results run_chains(const Kernel&, const ModelRunner&, const McmcOptions&);
  void require_run() const;
  bool done_ = false;
  std::map<std::string, torch::Tensor> samples_;
  std::map<std::string, torch::Tensor> stats_;
  std::vector<ChainResult> chains_;
};

/// Checks the options; ArgumentError naming the option at fault.
void check_options(const McmcOptions& options);

}  // namespace mcmc

/// Markov chain Monte Carlo with `kernel` (`Nuts`, `Hmc`): `run(args...)`
/// runs `options.chains` chains of `warmup + samples` transitions each over
/// the model called with `args...` (copied), then `samples()`,
/// `flat_samples()`, `summary()` and `sample_stats()` give the results.
template <class K>
class Mcmc : public mcmc::Results {
 public:
  Mcmc(K kernel, McmcOptions options) : kernel_(std::move(kernel)), options_(std::move(options)) {
    mcmc::check_options(options_);
  }

  template <class... Args>
  void run(Args&&... args) {
    static_cast<mcmc::Results&>(*this) = mcmc::run_chains(kernel_, kernel_.bind(std::forward<Args>(args)...), options_);
  }

  const K& kernel() const { return kernel_; }
  const McmcOptions& options() const { return options_; }

 private:
  K kernel_;
  McmcOptions options_;
};

template <class K>
Mcmc(K, McmcOptions) -> Mcmc<K>;

}  // namespace ppl::infer
