#pragma once
/// The MCMC kernel interface: what `Mcmc` asks of a kernel (`Nuts`, `Hmc`).
///
/// A kernel samples a target over R^D, the unconstrained coordinates of the
/// model's continuous latents, given as a potential energy U(q) (minus the
/// log joint density and the transforms' log-determinants; potential.hpp).
/// `Mcmc` runs one `ChainKernel` per chain, each with its own potential, seed
/// and adaptation, on its own thread.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <ppl/core/enumerate.hpp>
#include <ppl/core/handlers.hpp>
#include <ppl/core/trace.hpp>

namespace ppl::infer::mcmc {

/// Latent values by site name (constrained), as a substitute handler takes them.
using ValueMap = std::map<std::string, torch::Tensor>;

/// A model bound to its arguments: runs it once with the given latent values
/// substituted (sites not given are drawn, those marked `.enumerate` take
/// their whole support along an enumeration dim), hidden from the handlers
/// outside, and returns its trace.
using ModelRunner = std::function<Trace(const ValueMap& values)>;

/// A potential energy U over R^D.
class Potential {
 public:
  virtual ~Potential() = default;
  /// D.
  virtual int64_t dim() const = 0;
  /// U(q), with dU/dq written to `grad` (size D). Returns +infinity (and
  /// leaves `grad` unspecified) where the density is zero or not finite;
  /// may throw where the model rejects q (see `Mcmc` for what is caught).
  virtual double operator()(const std::vector<double>& q, std::vector<double>& grad) = 0;
};

/// What one transition did (Stan's sampler diagnostics).
struct TransitionStats {
  /// Mean Metropolis acceptance probability over the trajectory (NUTS) or
  /// of its end point (HMC): what step-size adaptation steers.
  double accept_prob = 0;
  /// The trajectory hit an energy error above the kernel's limit, or a
  /// point where the model's density is zero.
  bool diverging = false;
  /// Leapfrog steps taken.
  int64_t num_steps = 0;
  /// NUTS: the number of doublings (0 for HMC).
  int64_t tree_depth = 0;
  /// The Hamiltonian at the chosen point.
  double energy = 0;
  /// The step size used.
  double step_size = 0;
};

/// One chain's transition kernel: a stateful sampler over R^D.
class ChainKernel {
 public:
  virtual ~ChainKernel() = default;
  /// Starts at `q` (where the potential is finite) and plans `warmup`
  /// adapting iterations.
  virtual void start(std::vector<double> q, int64_t warmup) = 0;
  /// One transition; adapts while warm-up iterations remain (and fixes the
  /// adapted step size after the last one).
  virtual TransitionStats step() = 0;
  /// The current point.
  virtual const std::vector<double>& position() const = 0;
  /// The step size now.
  virtual double step_size() const = 0;
  /// The inverse mass matrix: its diagonal [D], or the dense matrix [D * D]
  /// row by row.
  virtual std::vector<double> inverse_mass_matrix() const = 0;
};

/// The kernel given to `Mcmc`: makes the chains' transition kernels and
/// says how chains start. `Nuts` and `Hmc` derive from it with their model.
class Kernel {
 public:
  virtual ~Kernel() = default;
  /// "NUTS", "HMC": the start of every message.
  virtual std::string_view name() const = 0;
  /// A chain's kernel on `potential`, with its random stream seeded by `seed`.
  virtual std::unique_ptr<ChainKernel> chain(Potential& potential, uint64_t seed) const = 0;
  /// Initial (constrained) values by site name; other sites start uniformly
  /// in (-init_radius, init_radius) in unconstrained space.
  virtual const ValueMap& init_values() const = 0;
  virtual double init_radius() const = 0;
  /// The number of nested plates the model uses: enumeration dims lie left of them.
  virtual int max_plate_nesting() const = 0;
};

/// A kernel `Base` (the algorithm) with its model: `bind(args...)` gives the
/// model's runner (the arguments copied, so each chain may run it).
template <class Model, class Base>
class ModelKernel : public Base {
 public:
  template <class Options>
  ModelKernel(Model model, Options options) : Base(std::move(options)), model_(std::move(model)) {}

  template <class... Args>
  ModelRunner bind(Args&&... args) const {
    const int64_t first_enum_dim = -(this->max_plate_nesting() + 1);
    return [model = model_, first_enum_dim,
            ... args = std::decay_t<Args>(std::forward<Args>(args))](const ValueMap& values) mutable {
      handlers::BlockHandler block([](const Message&) { return true; });
      handlers::TraceHandler record;
      handlers::EnumerationState state(first_enum_dim);
      handlers::EnumerateHandler enumerate(state);
      handlers::SubstituteHandler substitute(values);
      HandlerScope hide(block);
      HandlerScope outer(record);
      HandlerScope enumerating(enumerate);
      HandlerScope inner(substitute);
      model(args...);
      return std::move(record.trace());
    };
  }

 private:
  Model model_;
};

}  // namespace ppl::infer::mcmc
