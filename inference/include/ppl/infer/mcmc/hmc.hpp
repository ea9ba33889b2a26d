#pragma once
/// Hamiltonian Monte Carlo: the Hamiltonian dynamics that HMC and NUTS share
/// (Euclidean metric, leapfrog integrator, warm-up adaptation), and static
/// HMC with a fixed number of leapfrog steps (Neal 2011).
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

#include <ppl/infer/mcmc/adaptation.hpp>
#include <ppl/infer/mcmc/kernel.hpp>

namespace ppl::infer {

/// Options of `Hmc`. Aggregate: `Hmc(model, {.step_size = 0.1, .num_steps = 20})`.
struct HmcOptions {
  /// The initial step size (adapted during warm-up unless `adapt_step_size`
  /// is false). Must be positive and finite.
  double step_size = 1.0;
  /// Leapfrog steps per transition (at least 1).
  int64_t num_steps = 10;
  /// The mean acceptance probability that step-size adaptation aims at, in (0, 1).
  double target_accept = 0.8;
  /// Initial (constrained) values by site name; other sites start
  /// uniformly in (-init_radius, init_radius) in unconstrained space.
  std::map<std::string, torch::Tensor> init{};
  double init_radius = 2.0;
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

/// The settings every Hamiltonian kernel reads (from HmcOptions or NutsOptions).
struct HamiltonianSettings {
  std::string who = "HMC";  ///< the kernel's name, for messages
  double step_size = 1.0;
  double target_accept = 0.8;
  bool adapt_step_size = true;
  bool adapt_mass_matrix = true;
  bool dense_mass = false;
  double max_energy_error = 1000.0;
  AdaptationOptions adaptation{};
  ValueMap init{};
  double init_radius = 2.0;
  int max_plate_nesting = 1;
};

/// Checks the settings; ArgumentError naming `who` and the option at fault.
void check_settings(std::string_view who, const HamiltonianSettings& s);

/// The settings in `options` (HmcOptions or NutsOptions), checked.
template <class Options>
HamiltonianSettings hamiltonian_settings(std::string who, const Options& options) {
  HamiltonianSettings s{.who = std::move(who),
                        .step_size = options.step_size,
                        .target_accept = options.target_accept,
                        .adapt_step_size = options.adapt_step_size,
                        .adapt_mass_matrix = options.adapt_mass_matrix,
                        .dense_mass = options.dense_mass,
                        .max_energy_error = options.max_energy_error,
                        .adaptation = options.adaptation,
                        .init = options.init,
                        .init_radius = options.init_radius,
                        .max_plate_nesting = options.max_plate_nesting};
  check_settings(s.who, s);
  return s;
}

/// The Euclidean metric of the kinetic energy K(p) = p^T M^-1 p / 2, from
/// the inverse mass matrix M^-1: diagonal or dense.
class Metric {
 public:
  Metric(int64_t dim, bool dense);
  /// Sets M^-1: the diagonal [D], or the dense matrix [D * D] row by row
  /// (symmetric positive definite; its Cholesky factor is computed here).
  void set_inverse(std::vector<double> inverse);
  const std::vector<double>& inverse() const { return inverse_; }
  bool dense() const { return dense_; }
  /// K(p).
  double kinetic(const std::vector<double>& p) const;
  /// dK/dp = M^-1 p (the velocity).
  void velocity(const std::vector<double>& p, std::vector<double>& v) const;
  /// p ~ N(0, M).
  void sample_momentum(std::mt19937_64& rng, std::vector<double>& p) const;

 private:
  int64_t dim_;
  bool dense_;
  std::vector<double> inverse_;
  std::vector<double> cholesky_;  ///< lower L with L L^T = M^-1 (dense)
};

/// A point of phase space: position q, momentum p, U(q) and dU/dq.
struct PhasePoint {
  std::vector<double> q, p, grad;
  double potential = 0;
};

/// The state of one chain of a Hamiltonian kernel: its point, metric, step
/// size and adaptation. HMC and NUTS differ only in `transition`.
class HamiltonianChain : public ChainKernel {
 public:
  HamiltonianChain(Potential& potential, HamiltonianSettings settings, uint64_t seed);

  void start(std::vector<double> q, int64_t warmup) override;
  TransitionStats step() override;
  const std::vector<double>& position() const override { return z_.q; }
  double step_size() const override { return step_size_; }
  std::vector<double> inverse_mass_matrix() const override { return metric_.inverse(); }

 protected:
  /// One transition from z_ with a fresh momentum; leaves the new point in z_.
  virtual TransitionStats transition() = 0;

  /// One leapfrog step of size `eps` (negative: backwards in time). Returns
  /// false, leaving U = +inf, where the potential is not finite or the model
  /// rejects the point.
  bool leapfrog(PhasePoint& z, double eps);
  /// H = U(q) + K(p); +inf for NaN.
  double hamiltonian(const PhasePoint& z) const;
  /// U and dU/dq at z.q; false (U = +inf) where not finite or rejected.
  bool evaluate(PhasePoint& z);
  /// A uniform draw in [0, 1).
  double uniform();

  Potential& potential_;
  HamiltonianSettings settings_;
  Metric metric_;
  PhasePoint z_;
  double step_size_;
  std::mt19937_64 rng_;

 private:
  /// Stan's heuristic: doubles or halves the step size until one leapfrog
  /// step from z_ crosses an acceptance probability of 0.8.
  void find_reasonable_step_size();

  int64_t warmup_ = 0, iteration_ = 0;
  DualAveraging dual_averaging_;
  WarmupSchedule schedule_;
  WelfordCovariance estimator_;
};

/// A chain of static HMC: `num_steps` leapfrog steps and a Metropolis
/// correction at the end.
class HmcChain : public HamiltonianChain {
 public:
  HmcChain(Potential& potential, HamiltonianSettings settings, int64_t num_steps, uint64_t seed);

 protected:
  TransitionStats transition() override;

 private:
  int64_t num_steps_;
};

/// A Hamiltonian kernel with its options (the model comes with `Hmc` or `Nuts`).
template <class Options>
class HamiltonianKernel : public Kernel {
 public:
  std::string_view name() const override { return settings_.who; }
  const ValueMap& init_values() const override { return settings_.init; }
  double init_radius() const override { return settings_.init_radius; }
  int max_plate_nesting() const override { return settings_.max_plate_nesting; }
  const Options& options() const { return options_; }

 protected:
  HamiltonianKernel(std::string who, Options options)
      : options_(std::move(options)), settings_(hamiltonian_settings(std::move(who), options_)) {}
  Options options_;
  HamiltonianSettings settings_;
};

/// The HMC algorithm with its options.
class HmcKernel : public HamiltonianKernel<HmcOptions> {
 public:
  explicit HmcKernel(HmcOptions options);
  std::unique_ptr<ChainKernel> chain(Potential& potential, uint64_t seed) const override;
};

}  // namespace mcmc

/// Static Hamiltonian Monte Carlo over the model's continuous latents in
/// unconstrained space: `ppl::infer::Hmc kernel(model, {.step_size = 0.1,
/// .num_steps = 20});` then `ppl::infer::Mcmc(kernel, {...}).run(args...)`.
/// Throws ArgumentError for a bad option, naming it.
template <class Model>
class Hmc : public mcmc::ModelKernel<Model, mcmc::HmcKernel> {
 public:
  Hmc(Model model, HmcOptions options = {}) : mcmc::ModelKernel<Model, mcmc::HmcKernel>(std::move(model), std::move(options)) {}
};

template <class Model>
Hmc(Model, HmcOptions) -> Hmc<Model>;
template <class Model>
Hmc(Model) -> Hmc<Model>;

}  // namespace ppl::infer
