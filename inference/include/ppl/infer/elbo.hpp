#pragma once
/// The evidence lower bound and its gradient estimator (see docs/inference.md).
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <ppl/core/archive.hpp>
#include <ppl/core/enumerate.hpp>
#include <ppl/core/errors.hpp>
#include <ppl/core/handlers.hpp>
#include <ppl/core/plate.hpp>
#include <ppl/core/trace.hpp>
#include <ppl/infer/distributed.hpp>
#include <ppl/infer/enum/elimination_stats.hpp>

namespace ppl::infer {

/// A site's log_prob, a parameter's gradient or the objective went NaN or
/// infinite; the message names the site or parameter.
class NonFiniteError : public Error {
 public:
  using Error::Error;
};

/// One execution of a guide and of the model replayed against it.
struct TracePair {
  Trace guide;
  Trace model;
};

/// Runs the guide under trace, then the model under trace with the guide's
/// values replayed.
using Runner = std::function<TracePair()>;

/// Name of the outer plate of vectorised particles (Elbo, log_marginal).
inline constexpr const char* kParticlePlate = "_particles";

namespace detail {
/// One run of the guide under trace and of the model replayed against it;
/// with `particles` > 0 both inside an outer plate of that many particles at
/// `dim`. `score_guide`: compute each guide site's log_prob as it is drawn
/// (see handlers::TraceHandler); off where the guide's log-densities go unused.
/// `enum_dim` < 0: both run under parallel enumeration, its dims starting
/// there (the guide's variables keep theirs; the model's recycle along its
/// Markov chains); 0: no enumeration.
template <class M, class G, class... Args>
TracePair run_pair(bool score_guide, int64_t particles, int64_t dim, int64_t enum_dim, M& model, G& guide,
                   Args&... args) {
  TracePair out;
  std::optional<handlers::EnumerationState> state;
  if (enum_dim != 0) state.emplace(enum_dim);
  {
    handlers::TraceHandler record(score_guide);
    HandlerScope scope(record);
    std::optional<handlers::EnumerateHandler> enumerate;
    std::optional<HandlerScope> enumerating;
    if (state) {
      enumerate.emplace(*state, /*recycle=*/false);
      enumerating.emplace(*enumerate);
    }
    std::optional<Plate> plate;
    if (particles > 0) plate.emplace(kParticlePlate, particles, PlateOptions{.dim = dim});
    guide(args...);
    plate.reset();
    out.guide = std::move(record.trace());
  }
  {
    handlers::TraceHandler record;
    handlers::ReplayHandler replay(out.guide);
    HandlerScope outer(record);
    std::optional<handlers::EnumerateHandler> enumerate;
    std::optional<HandlerScope> enumerating;
    if (state) {
      enumerate.emplace(*state);
      enumerating.emplace(*enumerate);
    }
    HandlerScope inner(replay);
    std::optional<Plate> plate;
    if (particles > 0) plate.emplace(kParticlePlate, particles, PlateOptions{.dim = dim});
    model(args...);
    plate.reset();
    out.model = std::move(record.trace());
  }
  return out;
}

template <class M, class G, class... Args>
Runner make_runner(bool score_guide, int64_t enum_dim, M& model, G& guide, Args&... args) {
  return [score_guide, enum_dim, &model, &guide, &args...]() {
    return run_pair(score_guide, 0, -1, enum_dim, model, guide, args...);
  };
}
}  // namespace detail

/// Checks that guide and model sites pair by name: every latent (unobserved
/// sample) site of the model has a guide sample site, every guide sample site
/// is visited by the model as a latent, and the guide observes nothing; a
/// latent the model enumerated needs no guide site. Throws SiteError naming
/// the first site at fault.
void check_pairing(const TracePair& traces, std::string_view who = "Elbo");

/// Options of `Elbo`. Aggregate: `Elbo({.particles = 4, .beta = {{"z_what", 4.0}}})`.
struct ElboOptions {
  /// Number of particles (independent guide draws) averaged per estimate;
  /// with `iwae`, the K of the importance-weighted bound.
  int particles = 1;
  /// KL weights per site group: a latent site whose name starts with a key
  /// has its log p(z) - log q(z) multiplied by the value of the longest
  /// matching key (beta-VAE; sites matching no key weigh 1).
  std::map<std::string, double> beta{};
  /// Use -KL(q || p) in closed form instead of log p(z) - log q(z) for
  /// latent sites whose distribution pair has one (ppl::dist::has_kl).
  bool analytic_kl = false;
  /// Score-function sites get a decaying-average baseline (NVIL's c).
  bool decaying_baseline = true;
  /// Decay of the running mean and variance of the learning signal.
  double baseline_decay = 0.9;
  /// Divide the centred learning signal by max(1, running standard
  /// deviation), as NVIL; rescales the gradient, so off by default.
  bool normalise_variance = false;
  /// Sites whose names start with one of these prefixes share one running
  /// mean and variance (kept under the prefix), pooled over all their
  /// elements, instead of one per site: the DooD authors' NVIL statistics,
  /// one for the on/off choices of every step (`{"o/"}`).
  std::vector<std::string> pooled_baselines{};
  /// Multiplies the latent sites' log p(z) - log q(z) terms (on top of
  /// `beta`) in the score-function learning signals only; the pathwise
  /// objective keeps weight 1. A KL weight that steers the discrete choices
  /// without pulling the reparameterised latents to the prior (DooD's
  /// authors divide the likelihood by beta in the o_t signal alone).
  double signal_kl_weight = 1.0;
  /// Each score-function site sees only the costs downstream of it (true),
  /// or the whole ELBO (false; for comparison, higher variance).
  bool downstream_only = true;
  /// Optimise the importance-weighted bound (Burda et al. 2016, Eq. 8) with
  /// `particles` samples instead of the ELBO.
  bool iwae = false;
  /// Check the objective for NaN / infinity and name the site at fault.
  bool check_finite = true;
  /// Draw the `particles` in one run of guide and model, inside an outer
  /// plate "_particles" at dim -(max_plate_nesting + 1); the programs must
  /// broadcast over that leading dimension. The same estimator as the loop
  /// (each particle's learning signals are its own), far fewer calls.
  bool vectorise = false;
  /// The number of nested plates the programs use (for `vectorise` and
  /// `enumerate`).
  int max_plate_nesting = 1;
  /// Sum the model's `.enumerate` sites out exactly (they need no guide
  /// site) by tensor variable elimination over the plates, and weight the
  /// guide's `.enumerate` sites by their probabilities instead of drawing
  /// them (Pyro's TraceEnum_ELBO). Enumeration dims start at
  /// -(max_plate_nesting + 1), one further left with `vectorise`. Not with
  /// `iwae` or `analytic_kl`.
  bool enumerate = false;

  /// Chained setters: `ElboOptions().with_particles(4).with_beta("z_what", 4.0)`.
  ElboOptions& with_particles(int k) { particles = k; return *this; }
  ElboOptions& with_beta(const std::string& prefix, double weight) { beta[prefix] = weight; return *this; }
  ElboOptions& with_analytic_kl(bool on = true) { analytic_kl = on; return *this; }
  ElboOptions& with_iwae(bool on = true) { iwae = on; return *this; }
};

/// `ElboOptions` as JSON and back; missing keys keep their defaults, unknown
/// keys and values of the wrong type are a ppl::Error naming the key. The
/// two-argument forms let nlohmann's `j.get<ElboOptions>()` work.
nlohmann::json to_json(const ElboOptions& options);
ElboOptions elbo_options_from_json(const nlohmann::json& j);
void to_json(nlohmann::json& j, const ElboOptions& options);
void from_json(const nlohmann::json& j, ElboOptions& options);

/// What one evaluation of the objective produced.
struct ElboResult {
  /// Differentiable surrogate loss: its gradient is an unbiased estimate of
  /// -grad ELBO (plus the squared-error loss of the neural baselines).
  torch::Tensor loss;
  /// The (beta-weighted) ELBO or IWAE estimate, detached.
  torch::Tensor objective;
  /// Names of the param sites of the guide and model traces, in order.
  std::vector<std::string> params;
  /// Leaf tensors that the `.baseline` tensors depend on (baseline networks).
  std::vector<torch::Tensor> baseline_params;
  /// With `enumerate`: the work of summing the model's enumerated sites out
  /// (over all particles).
  EliminationStats elimination;
};

/// The ELBO objective, L = E_q[log p(x, z) - log q(z | x)], with a surrogate
/// whose gradient is unbiased (docs/inference.md, Eq. 3):
///   surrogate = sum_sites [log p - log q]
///             + sum_{t non-reparam} log q(z_t) * stop_grad(A_t - b_t)
///             - sum_t (A_t - c_t - b_t)^2  (neural baselines)
/// where A_t holds only the costs at or after site t in the same plate
/// element (Schulman et al. 2015), c_t a decaying average and b_t the site's
/// `.baseline` (Mnih & Gregor 2014). Keeps the running baseline statistics
/// between calls; they and the baseline regression count only the elements
/// a site's mask (its `mask` option, a `mask` handler, or its distribution's
/// mask) leaves on, since masked elements give no gradient.
class Elbo {
 public:
  /// Throws ArgumentError for particles < 1, baseline_decay outside [0, 1),
  /// a negative beta or signal_kl_weight, signal_kl_weight != 1 with iwae,
  /// or enumerate with iwae or analytic_kl.
  explicit Elbo(ElboOptions options = {});

  /// Differentiable surrogate loss (negative ELBO estimate) for one step.
  /// Throws SiteError on unpaired sites, ShapeError on a baseline that does
  /// not broadcast to its site, NonFiniteError when the objective is NaN.
  template <class M, class G, class... Args>
  torch::Tensor loss(M&& model, G&& guide, Args&&... args) {
    return evaluate(loss_runner(model, guide, args...)).loss;
  }
  /// The runner `loss` evaluates (and `Svi` steps on): guide sites are scored
  /// as they are drawn, except with `analytic_kl`, which leaves most of their
  /// log q unused.
  template <class M, class G, class... Args>
  Runner loss_runner(M& model, G& guide, Args&... args) const {
    return runner(!options_.analytic_kl, model, guide, args...);
  }
  /// The plain ELBO estimate (no beta, no analytic KL), averaged over
  /// `particles` draws, without gradient.
  template <class M, class G, class... Args>
  double estimate(M&& model, G&& guide, Args&&... args) {
    return estimate_impl(runner(true, model, guide, args...));
  }

  /// One evaluation from traced executions (used by `loss` and `Svi`);
  /// updates the running baselines. Throws as `loss`.
  ElboResult evaluate(const Runner& run);
  /// `estimate` on a runner. Throws SiteError on unpaired sites.
  double estimate_impl(const Runner& run);

  /// The options given at construction.
  const ElboOptions& options() const { return options_; }
  /// The KL weight of site `name` (longest matching prefix of options().beta).
  double weight(const std::string& name) const;

  /// Data-parallel training: the moments of each step's learning signals are
  /// summed over the group's ranks before they move the running baselines,
  /// so every rank keeps the same statistics, those of the whole effective
  /// batch. Every rank must have the same score-function sites.
  void set_process_group(std::shared_ptr<ProcessGroup> group) { group_ = std::move(group); }

  /// Writes / reads the running baseline statistics as "<prefix><site>/mean"
  /// and "<prefix><site>/var" tensors (for checkpoints).
  void save_state(TensorArchive& archive, const std::string& prefix = "elbo/") const;
  void load_state(const TensorArchive& archive, const std::string& prefix = "elbo/");

 private:
  /// One run per call; with `vectorise`, all particles in one run.
  template <class M, class G, class... Args>
  Runner runner(bool score_guide, M& model, G& guide, Args&... args) const {
    const int64_t dim = -(options_.max_plate_nesting + 1);
    const int64_t enum_dim = options_.enumerate ? dim - (options_.vectorise ? 1 : 0) : 0;
    if (!options_.vectorise) return detail::make_runner(score_guide, enum_dim, model, guide, args...);
    const int64_t n = options_.particles;
    return [=, &model, &guide, &args...]() {
      return detail::run_pair(score_guide, n, dim, enum_dim, model, guide, args...);
    };
  }
  /// Runs per evaluation: 1 with `vectorise`, else `particles`.
  int runs() const { return options_.vectorise ? 1 : options_.particles; }

  struct Running {
    torch::Tensor mean, var;  ///< 0-dim, detached; undefined before the first update
  };
  ElboResult evaluate_elbo(const Runner& run);
  ElboResult evaluate_iwae(const Runner& run);
  /// The key of a site's running statistics: its pooled prefix, or its name.
  std::string stats_key(const std::string& site) const;
  /// The signal centred (and optionally normalised) by the statistics before
  /// this evaluation; adds its elements where `active` (undefined: all) to
  /// this evaluation's moments.
  torch::Tensor centre(const std::string& key, const torch::Tensor& signal, const torch::Tensor& active);
  /// Folds this evaluation's moments into the running statistics.
  void update_running();

  ElboOptions options_;
  std::map<std::string, Running> running_;
  /// This evaluation's sums over the active elements, by statistics key:
  /// [3] double (sum, sum of squares, count); cleared when an evaluation starts.
  std::map<std::string, torch::Tensor> batch_;
  std::shared_ptr<ProcessGroup> group_;
  /// Sums batch_ over the process group.
  void reduce_batch();
};

}  // namespace ppl::infer
