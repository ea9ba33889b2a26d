#pragma once
/// Predictive: draws of a model's sites, from its prior, from a guide, or
/// from posterior samples (Pyro's Predictive).
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <torch/types.h>

#include <ppl/core/handlers.hpp>
#include <ppl/core/plate.hpp>
#include <ppl/core/check.hpp>
#include <ppl/core/trace.hpp>

namespace ppl::infer {

namespace detail {
/// The guide type of a model with a fixed signature: std::function<void(A...)>.
template <class F>
struct model_signature : model_signature<decltype(&std::decay_t<F>::operator())> {};
template <class R, class... A>
struct model_signature<R (*)(A...)> {
  using guide = std::function<void(A...)>;
};
template <class R, class... A>
struct model_signature<R(A...)> {
  using guide = std::function<void(A...)>;
};
template <class C, class R, class... A>
struct model_signature<R (C::*)(A...) const> {
  using guide = std::function<void(A...)>;
};
template <class C, class R, class... A>
struct model_signature<R (C::*)(A...)> {
  using guide = std::function<void(A...)>;
};
}  // namespace detail

/// Name of the outer plate of vectorised predictive draws.
inline constexpr const char* kPredictivePlate = "_num_predictive_samples";

/// Options of `Predictive` for a model of type `Model` (a function or a
/// lambda with typed parameters).
template <class Model>
struct PredictiveOptions {
  /// A guide called with the model's arguments: latents come from it (the
  /// posterior predictive). Without it and without `posterior_samples`, the
  /// prior predictive.
  typename detail::model_signature<Model>::guide guide{};
  /// S, the number of draws.
  int64_t num_samples = 1;
  /// Sites to return. Default: every latent sample site (observed sites whose
  /// `.obs` was undefined included) and every deterministic site; an
  /// observed site only when named here.
  std::vector<std::string> return_sites{};
  /// Latent values name -> [S, ...] (e.g. from MCMC or `sample_posterior`)
  /// instead of a guide; S is their leading size.
  std::map<std::string, torch::Tensor> posterior_samples{};
  /// Draw the S samples in one run inside an outer plate at dim
  /// -(max_plate_nesting + 1). Unset: tried, and where the model does not
  /// broadcast, one run per draw (`Predictive::note` says why).
  std::optional<bool> parallel{};
  /// The number of nested plates the model uses (for `parallel`).
  int max_plate_nesting = 1;
};

namespace detail {
/// The sites of `model` that Predictive returns: names and values.
std::vector<std::pair<std::string, torch::Tensor>> predictive_sites(const Trace& model,
                                                                    const std::vector<std::string>& return_sites);
/// `values` (one map per draw) stacked: name -> [S, ...].
std::map<std::string, torch::Tensor> stack_draws(const std::vector<std::map<std::string, torch::Tensor>>& draws);
/// Checks the options; returns S (from `posterior_samples` when given).
int64_t predictive_size(int64_t num_samples, bool has_guide, const std::map<std::string, torch::Tensor>& samples);
/// Substitutes posterior samples into a vectorised run: each value [S, ...]
/// reshaped to the site's distribution shape [S, 1, ..., batch, event].
class VectorisedSubstitute : public Handler {
 public:
  explicit VectorisedSubstitute(const std::map<std::string, torch::Tensor>& samples) : samples_(samples) {}
  void process(Message& msg) override;

 private:
  const std::map<std::string, torch::Tensor>& samples_;
};
}  // namespace detail

/// `ppl::infer::Predictive predictive(model, {.guide = guide, .num_samples = 100});`
/// `auto draws = predictive.run(x);` gives name -> tensor [S, ...].
template <class Model>
class Predictive {
 public:
  Predictive(Model model, PredictiveOptions<Model> options) : model_(std::move(model)), options_(std::move(options)) {}

  /// S draws of the returned sites, without gradient. Throws SiteError for a
  /// `return_sites` name the model does not have, ArgumentError for bad options.
  template <class... Args>
  std::map<std::string, torch::Tensor> run(Args&&... args) {
    const int64_t s = detail::predictive_size(options_.num_samples, static_cast<bool>(options_.guide),
                                              options_.posterior_samples);
    torch::NoGradGuard no_grad;
    vectorised_ = false;
    note_.clear();
    if (options_.parallel.value_or(true)) {
      try {
        auto out = run_vectorised(s, args...);
        vectorised_ = true;
        return out;
      } catch (const std::exception& e) {
        if (options_.parallel.has_value() || dynamic_cast<const SiteError*>(&e)) throw;
        const std::string what = e.what();
        note_ = "draws made one run at a time: the model does not broadcast over a leading sample dimension (" +
                what.substr(0, what.find('\n')) + ")";
      }
    }
    std::vector<std::map<std::string, torch::Tensor>> draws;
    for (int64_t i = 0; i < s; ++i) {
      std::map<std::string, torch::Tensor> given;
      for (const auto& [name, v] : options_.posterior_samples) given[name] = v[i];
      const auto trace = one_run(given, args...);
      std::map<std::string, torch::Tensor> draw;
      for (auto& [name, value] : detail::predictive_sites(trace, options_.return_sites)) draw[name] = value;
      draws.push_back(std::move(draw));
    }
    return detail::stack_draws(draws);
  }

  /// True when the last `run` drew its samples in one vectorised run.
  bool vectorised() const { return vectorised_; }
  /// Why the last `run` fell back to one run per draw (empty otherwise).
  const std::string& note() const { return note_; }

 private:
  /// One draw: the model's trace with latents from the guide or `given`.
  template <class... Args>
  Trace one_run(const std::map<std::string, torch::Tensor>& given, Args&... args) {
    if (options_.guide) {
      auto q = ppl::trace(options_.guide, args...);
      return ppl::trace(handlers::replay(std::ref(model_), std::move(q)), args...);
    }
    if (!given.empty()) return ppl::trace(handlers::substitute(std::ref(model_), given), args...);
    return ppl::trace(std::ref(model_), args...);
  }

  /// All S draws in one run inside an outer plate; each value reshaped to
  /// [S] + its shape in a single run (a prototype run tells those shapes).
  template <class... Args>
  std::map<std::string, torch::Tensor> run_vectorised(int64_t s, Args&... args) {
    std::map<std::string, torch::Tensor> first;
    for (const auto& [name, v] : options_.posterior_samples) first[name] = v[0];
    const auto prototype = one_run(first, args...);
    const auto shapes = detail::predictive_sites(prototype, options_.return_sites);
    const int64_t dim = -(options_.max_plate_nesting + 1);
    Trace guide_trace;
    if (options_.guide) {
      handlers::TraceHandler record;
      HandlerScope scope(record);
      Plate samples(kPredictivePlate, s, {.dim = dim});
      options_.guide(args...);
      guide_trace = std::move(record.trace());
    }
    Trace model_trace;
    {
      handlers::TraceHandler record;
      handlers::ReplayHandler replay(guide_trace);
      detail::VectorisedSubstitute substitute(options_.posterior_samples);
      HandlerScope outer(record);
      HandlerScope inner(options_.guide ? static_cast<Handler&>(replay) : static_cast<Handler&>(substitute));
      {
        Plate samples(kPredictivePlate, s, {.dim = dim});
        model_(args...);
      }
      model_trace = std::move(record.trace());
    }
    std::map<std::string, torch::Tensor> out;
    for (const auto& [name, proto] : shapes) {
      const auto& value = model_trace.site(name).value;
      auto shape = proto.sizes().vec();
      shape.insert(shape.begin(), s);
      if (value.numel() != s * proto.numel())
        throw ShapeError("Predictive: site \"" + name + "\" has shape " + shape_string(value.sizes()) +
                         " in the vectorised run, which does not hold " + std::to_string(s) + " draws of shape " +
                         shape_string(proto.sizes()));
      out[name] = value.reshape(shape);
    }
    return out;
  }

  Model model_;
  PredictiveOptions<Model> options_;
  bool vectorised_ = false;
  std::string note_;
};

template <class Model>
Predictive(Model, PredictiveOptions<Model>) -> Predictive<Model>;

}  // namespace ppl::infer
