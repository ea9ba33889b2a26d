#pragma once
/// The base of every distribution: shapes, to_event, masking, sampling,
/// log-densities, argument checks and the JSON form.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <ppl/constraints.hpp>
#include <ppl/core/errors.hpp>

namespace ppl::dist {

/// A distribution parameter given as a tensor or as a plain number. Numbers
/// take the dtype and device of the distribution's tensor parameters (or
/// torch's default dtype on the CPU when every parameter is a number).
struct Arg {
  torch::Tensor tensor;
  std::optional<double> number;

  Arg(torch::Tensor t) : tensor(std::move(t)) {}  // NOLINT(implicit)
  Arg(double v) : number(v) {}                    // NOLINT(implicit)
  Arg(float v) : number(v) {}                     // NOLINT(implicit)
  Arg(int v) : number(v) {}                       // NOLINT(implicit)
};

/// Tagged probabilities, for distributions parameterised by probs or logits:
/// `Bernoulli(probs(p))`, `Bernoulli(logits(l))`; a bare tensor means probs.
struct Probs {
  Arg value;
};
/// Tagged logits (log-odds, or unnormalised log-probabilities for Categorical).
struct Logits {
  Arg value;
};
inline Probs probs(Arg a) { return {std::move(a)}; }
inline Logits logits(Arg a) { return {std::move(a)}; }

/// The support of a distribution: one of the `ppl::constraints`.
using Constraint = constraints::Constraint;

/// Name and rank of a parameter: event_rank is the number of trailing
/// dimensions that belong to one draw (1 for Categorical's probs, else 0).
struct ParamSpec {
  const char* name;
  int event_rank;
};

/// Base class of every distribution in ppl::dist. Distributions are immutable
/// values; `to_event`, `expand` and `mask` return modified copies.
///
/// A distribution's base draw is a scalar or, for the multivariate families
/// (MultivariateNormal, Dirichlet, ...), a vector or matrix: its
/// `base_event_shape`. `to_event(n)` moves the rightmost n batch dimensions
/// into the event shape, so that `log_prob` sums over them (as Pyro's
/// `to_event`).
class Distribution {
 public:
  virtual ~Distribution() = default;

  /// "Normal", "Bernoulli", ...
  virtual std::string_view type_name() const = 0;
  /// True when `rsample` gives pathwise (reparameterised) gradients.
  virtual bool has_rsample() const = 0;
  /// The set of values with positive density.
  virtual Constraint support() const = 0;
  /// E[x], shape batch + event. Throws ArgumentError where the family has no
  /// finite closed-form mean.
  virtual torch::Tensor mean() const;
  /// Var[x] elementwise, shape batch + event. Throws ArgumentError where the
  /// family has no finite closed-form variance.
  virtual torch::Tensor variance() const;

  /// Shape of the independent, non-identical batch of distributions.
  std::vector<int64_t> batch_shape() const;
  /// Shape of one draw.
  std::vector<int64_t> event_shape() const;
  /// sample_shape + batch_shape + event_shape.
  std::vector<int64_t> shape(c10::IntArrayRef sample_shape = {}) const;
  /// Number of dimensions that `to_event` moved into the event.
  int64_t event_dims() const { return event_dims_; }

  /// True for the families whose support is finite and can be listed by
  /// `enumerate_support` (Bernoulli, Categorical, OneHotCategorical,
  /// DiscreteUniform, Binomial).
  virtual bool has_enumerate_support() const { return false; }
  /// Every value of the support along a new leading dimension of size n:
  /// shape [n] + [1] * batch rank + event shape, or with `expand` [n] +
  /// batch shape + event shape (Pyro's `enumerate_support`). Every batch
  /// element must have the same support. Throws ArgumentError for a family
  /// whose support is not finite, for event dimensions added by `to_event`
  /// (their support would be a cartesian product), and for a batch whose
  /// elements have different supports (Binomial counts, DiscreteUniform
  /// bounds).
  torch::Tensor enumerate_support(bool expand = false) const;

  /// A draw of shape `shape(sample_shape)`, with no gradient.
  torch::Tensor sample(c10::IntArrayRef sample_shape = {}) const;
  /// A reparameterised draw (gradients flow to the parameters). Throws
  /// ArgumentError when `has_rsample()` is false.
  torch::Tensor rsample(c10::IntArrayRef sample_shape = {}) const;
  /// log density of `value`, summed over the event dimensions and zero where
  /// the mask is false; shape = broadcast of value's batch part and batch_shape.
  torch::Tensor log_prob(const torch::Tensor& value) const;

  /// Validates the parameters (once per distribution object); `ctx` names the
  /// site in messages. Called by `ppl::sample`; public methods call it with no
  /// site. No-op when validation is off.
  void check_args(const CheckContext& ctx) const;
  /// Validates a value against the event shape and support (ShapeError /
  /// ArgumentError naming `ctx`). Elements where `mask` (broadcastable to
  /// the batch shape) is false are not checked: they may hold placeholders
  /// such as NaN for missing data.
  void check_value(const CheckContext& ctx, const torch::Tensor& value, const torch::Tensor& mask = {}) const;

  /// The mask given by `mask(m)` (undefined when none).
  const torch::Tensor& mask_tensor() const { return mask_; }
  /// Parameters by name, in declaration order.
  std::vector<std::pair<std::string, torch::Tensor>> named_params() const;
  /// Options of the parameters (dtype, device).
  torch::TensorOptions options() const;

  /// A copy of this distribution (same dynamic type).
  virtual std::shared_ptr<Distribution> clone() const = 0;
  /// A copy whose batch shape is `batch_shape` (parameters broadcast to it);
  /// `expand` on the concrete type returns that type. Throws ShapeError when
  /// the batch shape does not broadcast to `batch_shape`.
  std::shared_ptr<Distribution> expand_ptr(c10::IntArrayRef batch_shape) const;
  /// A copy with `n` more event dimensions.
  std::shared_ptr<Distribution> to_event_ptr(int64_t n) const;
  /// A copy masked by `m` (bool, broadcastable to the batch shape).
  std::shared_ptr<Distribution> mask_ptr(const torch::Tensor& m) const;

  /// Broadcasts parameters given as tensors or numbers to one shape, numbers
  /// taking the tensors' dtype and device; parameters with an event rank
  /// keep their trailing dimensions. ShapeError naming `who` when the batch
  /// parts do not broadcast.
  static std::vector<torch::Tensor> broadcast_args(std::string_view who, std::vector<Arg> args,
                                                   std::vector<int> event_ranks = {});

  /// {"type", "params", "event_dims", "mask", "options"} and, for the
  /// combinators, "parts" (the distributions they are built from); see
  /// docs/trace-json.md.
  nlohmann::json to_json() const;

 protected:
  Distribution() = default;
  /// Sets the parameters (already broadcast against each other) and the
  /// batch shape derived from them.
  void set_params(std::vector<torch::Tensor> params);
  /// For the combinators, which hold distributions instead of parameters:
  /// sets the base shape and the options directly.
  void set_shape(std::vector<int64_t> base_shape, torch::TensorOptions options);
  /// Broadcasts this copy's parameters (a combinator: its parts) to the base
  /// shape `base_shape` (the new batch shape + the event dimensions added by
  /// `to_event`); `expand_ptr` sets the shape itself.
  virtual void expand_base(const std::vector<int64_t>& base_shape);
  /// The distributions a combinator is built from, by name (for `to_json`).
  virtual std::vector<std::pair<std::string, std::shared_ptr<const Distribution>>> parts() const { return {}; }
  /// Throws the "not available" error of `mean` and `variance`.
  [[noreturn]] void no_moment(std::string_view what) const;
  const torch::Tensor& param(size_t i) const { return params_[i]; }
  /// Shape of the base batch: batch_shape + the event dimensions added by
  /// `to_event` (without `base_event_shape`).
  const std::vector<int64_t>& base_shape() const { return base_shape_; }
  /// Shape of one draw of the base distribution: empty for univariate
  /// distributions, {D} for a D-dimensional one. Values have shape
  /// base_shape + base_event_shape; `log_density` returns base_shape.
  virtual std::vector<int64_t> base_event_shape() const { return {}; }

  virtual std::vector<ParamSpec> param_specs() const = 0;
  /// Draws of shape `sizes` (= sample shape + base shape + base event shape);
  /// may be differentiable.
  virtual torch::Tensor draw(c10::IntArrayRef sizes) const = 0;
  /// Elementwise log density over the base shape (no event sum, no mask).
  virtual torch::Tensor log_density(const torch::Tensor& value) const = 0;
  /// Parameter checks; throw through ppl::check.
  virtual void check_params(const CheckContext& ctx) const = 0;
  /// Extra JSON options (temperature flags and the like).
  virtual void options_to_json(nlohmann::json& j) const;
  /// The support of one base draw, [n] + base_event_shape, for the families
  /// with `has_enumerate_support`; the base throws ArgumentError.
  virtual torch::Tensor support_values() const;
  /// Hook for subclasses that cache per-sample state (straight-through).
  virtual torch::Tensor log_density_of(const torch::Tensor& value) const { return log_density(value); }


 private:
  std::vector<torch::Tensor> params_;
  torch::TensorOptions options_;
  std::vector<int64_t> base_shape_;
  int64_t event_dims_ = 0;
  torch::Tensor mask_;
  mutable bool checked_ = false;
};

/// CRTP helper: `to_event`, `expand` and `mask` return the concrete type.
template <class Derived>
class DistributionBase : public Distribution {
 public:
  /// A copy with batch shape `batch_shape` (the parameters broadcast to it).
  Derived expand(c10::IntArrayRef batch_shape) const {
    return static_cast<const Derived&>(*expand_ptr(batch_shape));
  }
  /// Reinterprets the rightmost `n` batch dimensions as event dimensions.
  Derived to_event(int64_t n = 1) const {
    return static_cast<const Derived&>(*to_event_ptr(n));
  }
  /// Masks the log density: `log_prob` is 0 where `m` is false.
  Derived mask(const torch::Tensor& m) const {
    return static_cast<const Derived&>(*mask_ptr(m));
  }
  std::shared_ptr<Distribution> clone() const override {
    return std::make_shared<Derived>(static_cast<const Derived&>(*this));
  }
};

/// Rebuilds a distribution from its JSON form (`Distribution::to_json`).
/// Throws ppl::Error for an unknown type or missing parameter.
std::shared_ptr<Distribution> from_json(const nlohmann::json& j);

/// Analytic KL(p || q), summed over event dimensions (parameters broadcast
/// across batch shapes); throws ArgumentError listing the pairs that have a
/// closed form when this one has none (see `has_kl`).
torch::Tensor kl(const Distribution& p, const Distribution& q);
/// True when `kl(p, q)` has a closed form for these types.
bool has_kl(const Distribution& p, const Distribution& q);

}  // namespace ppl::dist
