#pragma once
/// The No-U-Turn sampler (Hoffman and Gelman 2014) in the form Stan uses:
/// trajectories doubled forwards or backwards in time until the generalised
/// no-U-turn criterion fails (checked across every merged pair of subtrees
/// and across their boundaries), points drawn multinomially with weights
/// exp(-H), biased towards the newest subtree at the top level (Betancourt
/// 2017, "A conceptual introduction to Hamiltonian Monte Carlo", A.3).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <torch/types.h>

#include <ppl/infer/mcmc/hmc.hpp>

namespace ppl::infer {

/// Options of `Nuts`. Aggregate: `Nuts(model, {.target_accept = 0.9, .max_tree_depth = 8})`.
struct NutsOptions {
  /// The mean acceptance probability that step-size adaptation aims at, in (0, 1).
  double target_accept = 0.8;
  /// At most 2^max_tree_depth - 1 leapfrog steps per transition (1 to 30).
  int64_t max_tree_depth = 10;
  /// Initial (constrained) values by site name; other sites start
  /// uniformly in (-init_radius, init_radius) in unconstrained space.
  std::map<std::string, torch::Tensor> init{};
  double init_radius = 2.0;
  /// The initial step size (before the heuristic and dual averaging when
  /// `adapt_step_size`). Must be positive and finite.
  double step_size = 1.0;
  bool adapt_step_size = true;
  bool adapt_mass_matrix = true;
  /// A dense inverse mass matrix (the posterior covariance) instead of a diagonal one.
  bool dense_mass = false;
  /// An energy error H - H0 above this is a divergence.
  double max_energy_error = 1000.0;
  mcmc::AdaptationOptions adaptation{};
  /// The number of nested plates the model uses. Sites marked `.enumerate`
  /// are summed out exactly (tensor variable elimination over the plates,
  /// as `Elbo({.enumerate = true})` does) along dims left of
  /// -max_plate_nesting; the sampler sees only the continuous latents.
  int max_plate_nesting = 1;
};

namespace mcmc {

/// A chain of NUTS.
class NutsChain : public HamiltonianChain {
 public:
  NutsChain(Potential& potential, HamiltonianSettings settings, int64_t max_tree_depth, uint64_t seed);

 protected:
  TransitionStats transition() override;

 private:
  struct Subtree;
  /// Builds a subtree of 2^depth leapfrog steps from `edge` in direction
  /// `sign`, moving `edge` to its far end.
  Subtree build(int64_t depth, PhasePoint& edge, double sign, double h0, TransitionStats& stats);

  int64_t max_tree_depth_;
};

/// The NUTS algorithm with its options.
class NutsKernel : public HamiltonianKernel<NutsOptions> {
 public:
  explicit NutsKernel(NutsOptions options);
  std::unique_ptr<ChainKernel> chain(Potential& potential, uint64_t seed) const override;
};

}  // namespace mcmc

/// The No-U-Turn sampler over the model's continuous latents in
/// unconstrained space: `ppl::infer::Nuts kernel(model, {.target_accept =
/// 0.8});` then `ppl::infer::Mcmc(kernel, {...}).run(args...)`. Throws
/// ArgumentError for a bad option, naming it.
template <class Model>
class Nuts : public mcmc::ModelKernel<Model, mcmc::NutsKernel> {
 public:
  Nuts(Model model, NutsOptions options = {})
      : mcmc::ModelKernel<Model, mcmc::NutsKernel>(std::move(model), std::move(options)) {}
};

template <class Model>
Nuts(Model, NutsOptions) -> Nuts<Model>;
template <class Model>
Nuts(Model) -> Nuts<Model>;

}  // namespace ppl::infer
