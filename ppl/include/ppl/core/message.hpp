#pragma once
/// The message that a site sends through the handler stack.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <ppl/core/errors.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl {

/// What a site is: a random choice (sample, observe), a learnable
/// parameter, or a value recorded without a density (deterministic; also a
/// site fixed by `handlers::do_`).
enum class SiteKind { sample, observe, param, deterministic };

/// "sample", "observe", "param" or "deterministic".
std::string_view to_string(SiteKind kind);

/// One enclosing plate of a site.
struct PlateFrame {
  std::string name;
  int64_t size = 0;            ///< the full size of the plate
  int64_t subsample_size = 0;  ///< the size actually used (== size without subsampling)
  int64_t dim = -1;            ///< the batch dimension (negative, from the right)
};

/// Per-site options of `ppl::sample` / `ppl::observe`.
struct SampleOptions {
  /// For score-function sites: a baseline for this site's learning signal,
  /// computed by the user's network (see ppl::infer::Elbo).
  torch::Tensor baseline{};
  /// Bool tensor broadcastable to the batch shape: log_prob is 0 where false.
  torch::Tensor mask{};
  /// `ppl::sample(name, dist, {.obs = x})`: observed at `x` when it is
  /// defined, a latent draw otherwise, so one model fits and simulates.
  torch::Tensor obs{};
  /// A guide-only site that the model does not have (the joint latent of
  /// AutoMultivariateNormal): not paired with a model site; its log q counts
  /// in the objective like any guide site's.
  bool auxiliary = false;
  /// A finite-support site (Bernoulli, Categorical, OneHotCategorical,
  /// DiscreteUniform, Binomial) summed out exactly under enumeration
  /// (`ppl::infer::Elbo({.enumerate = true})`, `log_marginal`,
  /// `ppl::infer::infer_discrete`): its value is then its whole support,
  /// laid along a batch dimension of its own to the left of every plate.
  /// Elsewhere the site is drawn as usual.
  bool enumerate = false;
};

/// Where a site stands under parallel enumeration (set by
/// `handlers::EnumerateHandler`; see docs/inference.md, "Enumeration").
struct Enumeration {
  /// The rightmost dimension enumeration uses, -(plates + 1); 0 when the
  /// site ran without enumeration.
  int64_t first_dim = 0;
  /// The batch dimension along which the site's value lists its support;
  /// 0 when the site is not enumerated.
  int64_t dim = 0;
  /// The id of the site's enumerated variable; -1 when it is not enumerated.
  int64_t variable = -1;
  /// (dim, variable) of every enumerated variable the site may depend on:
  /// those enumerated outside every `ppl::Markov`, those of its Markov
  /// window, and its own. Dims recycle along a Markov chain, so the
  /// variable a dim holds is read here, per site.
  std::vector<std::pair<int64_t, int64_t>> visible;

  /// True when the site ran under enumeration.
  bool active() const { return first_dim != 0; }
  /// True when the site's value is its enumerated support.
  bool enumerated() const { return variable >= 0; }
  /// The variable held by `dim` at this site, or -1.
  int64_t variable_at(int64_t d) const {
    for (const auto& [vd, v] : visible)
      if (vd == d) return v;
    return -1;
  }
};

/// A site in flight through the handlers (Pyro's `msg`).
struct Message {
  std::string name;
  SiteKind kind = SiteKind::sample;
  std::shared_ptr<dist::Distribution> dist;  ///< null for param sites
  torch::Tensor value;                        ///< set by a handler or by the default behaviour
  bool observed = false;
  bool reparameterised = false;
  double scale = 1.0;
  torch::Tensor scale_tensor;         ///< a scale per batch element (`handlers::scale` by a tensor); undefined for none
  torch::Tensor mask;                 ///< bool, undefined for none
  std::vector<PlateFrame> plates;     ///< outermost first
  SampleOptions options;
  SourceLocation location;
  bool stop = false;                  ///< set by `block`: outer handlers never see it
  Enumeration enumeration;            ///< set by the enumeration handler
  // param sites
  torch::Tensor init;
  constraints::Constraint constraint;  ///< of the parameter (ppl::constraints::real by default)
  /// A module's parameter: the default binds `init` (the module's own
  /// tensor) into the store under the site's final name.
  bool module_param = false;

  /// {"site \"z\"", location} for check messages.
  CheckContext context(std::string_view function) const { return {function, name, &location}; }
};

}  // namespace ppl
