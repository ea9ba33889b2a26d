#pragma once
/// Effect handlers as program transformers (ppl::handlers): each wraps a
/// callable and returns a callable, so they compose in any order:
///   `ppl::handlers::trace(ppl::handlers::replay(model, guide_trace))(x)`.
#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <ppl/core/handler.hpp>
#include <ppl/core/random.hpp>
#include <ppl/core/trace.hpp>

namespace ppl {

namespace handlers {

/// Records every site that reaches it (Pyro's trace). Duplicate names are a
/// SiteError naming both source locations.
class TraceHandler : public Handler {
 public:
  TraceHandler() = default;
  /// With `score_sites`, each sample and observe site's log_prob is computed
  /// as the site is recorded (under the grad mode current at construction)
  /// instead of on first use. The values are the same; the autograd nodes of
  /// one site then sit together, and backward through many small sites is
  /// faster (ppl::infer records guides this way).
  explicit TraceHandler(bool score_sites);
  void postprocess(Message& msg) override;
  Trace& trace() { return trace_; }

 private:
  Trace trace_;
  bool score_sites_ = false;
  bool grad_mode_ = true;
};

/// Supplies the values of the sites recorded in a trace. A replayed value of
/// another shape than the site's distribution is a ShapeError naming the site.
class ReplayHandler : public Handler {
 public:
  explicit ReplayHandler(const Trace& trace) : trace_(trace) {}
  void process(Message& msg) override;

 private:
  const Trace& trace_;
};

/// Observes named sites at given values. After the program ran, a name it
/// never visited is a SiteError.
class ConditionHandler : public Handler {
 public:
  explicit ConditionHandler(const std::map<std::string, torch::Tensor>& data) : data_(data) {}
  void process(Message& msg) override;
  /// Throws SiteError when some conditioned names were never visited.
  void check_all_used() const;

 private:
  const std::map<std::string, torch::Tensor>& data_;
  std::set<std::string> used_;
};

/// Hides sites from the handlers outside it.
class BlockHandler : public Handler {
 public:
  explicit BlockHandler(std::function<bool(const Message&)> hide) : hide_(std::move(hide)) {}
  void process(Message& msg) override;

 private:
  std::function<bool(const Message&)> hide_;
};

/// Multiplies the log-probability of every site by a factor: a number, or a
/// tensor that broadcasts with each site's batch shape (ShapeError naming
/// the site otherwise).
class ScaleHandler : public Handler {
 public:
  explicit ScaleHandler(double factor) : factor_(factor) {}
  explicit ScaleHandler(torch::Tensor factor) : factor_tensor_(std::move(factor)) {}
  void process(Message& msg) override;

 private:
  double factor_ = 1.0;
  torch::Tensor factor_tensor_;
};

/// Gives latent sample sites, param sites and deterministic sites named in
/// a map their values (Pyro's substitute): a latent keeps its density at
/// the given value; a parameter is the given (constrained) value and the
/// store is not read. Names the program never visits are ignored.
class SubstituteHandler : public Handler {
 public:
  explicit SubstituteHandler(const std::map<std::string, torch::Tensor>& values) : values_(values) {}
  void process(Message& msg) override;

 private:
  const std::map<std::string, torch::Tensor>& values_;
};

/// An intervention (Pyro's do): the named sample or observe sites take the
/// given values and leave the joint density (recorded as deterministic).
class DoHandler : public Handler {
 public:
  explicit DoHandler(const std::map<std::string, torch::Tensor>& values) : values_(values) {}
  void process(Message& msg) override;

 private:
  const std::map<std::string, torch::Tensor>& values_;
};

/// Observed sites (observe, sample with .obs, condition inside it) become
/// latent and are drawn: the model simulates its data.
class UnconditionHandler : public Handler {
 public:
  void process(Message& msg) override;
};

/// Prefixes the name of every site and parameter with "<prefix>/", so that
/// a program can be used twice in one process (two fits, two components).
class ScopeHandler : public Handler {
 public:
  explicit ScopeHandler(std::string prefix) : prefix_(std::move(prefix)) {}
  void process(Message& msg) override;

 private:
  std::string prefix_;
};

/// Masks the log-probability of every site (bool tensor, broadcastable to the batch).
class MaskHandler : public Handler {
 public:
  explicit MaskHandler(torch::Tensor mask) : mask_(std::move(mask)) {}
  void process(Message& msg) override;

 private:
  torch::Tensor mask_;
};

namespace detail {
/// Calls `fn(args...)` with `handler` pushed, storing a non-void result in `out`.
template <class F, class... Args>
decltype(auto) call_with(Handler& handler, F& fn, Args&&... args) {
  HandlerScope scope(handler);
  return fn(std::forward<Args>(args)...);
}

/// `fn` wrapped so that each call runs under a fresh `H(state)` (the state
/// lives in the wrapper; the handler may keep a reference to it).
template <class H, class F, class State>
auto with_handler(F fn, State state) {
  return [fn = std::move(fn), state = std::move(state)](auto&&... args) mutable -> decltype(auto) {
    H handler(state);
    return call_with(handler, fn, std::forward<decltype(args)>(args)...);
  };
}
}  // namespace detail

/// `trace(fn)(args...)` runs fn and returns its ppl::Trace (with the return
/// value in `trace.return_value()`).
template <class F>
auto trace(F fn) {
  return [fn = std::move(fn)](auto&&... args) mutable -> Trace {
    TraceHandler handler;
    using R = decltype(fn(std::forward<decltype(args)>(args)...));
    if constexpr (std::is_void_v<R>) {
      detail::call_with(handler, fn, std::forward<decltype(args)>(args)...);
    } else {
      auto result = detail::call_with(handler, fn, std::forward<decltype(args)>(args)...);
      handler.trace().set_return_value(std::move(result));
    }
    return std::move(handler.trace());
  };
}

/// `replay(fn, trace)`: sites named in `trace` take its values.
template <class F>
auto replay(F fn, Trace trace) {
  return detail::with_handler<ReplayHandler>(std::move(fn), std::move(trace));
}

/// `condition(fn, {{"x", x}})`: the named sites become observed at these values.
template <class F>
auto condition(F fn, std::map<std::string, torch::Tensor> data) {
  return [fn = std::move(fn), data = std::move(data)](auto&&... args) mutable -> decltype(auto) {
    ConditionHandler handler(data);
    using R = decltype(fn(std::forward<decltype(args)>(args)...));
    if constexpr (std::is_void_v<R>) {
      detail::call_with(handler, fn, std::forward<decltype(args)>(args)...);
      handler.check_all_used();
    } else {
      R result = detail::call_with(handler, fn, std::forward<decltype(args)>(args)...);
      handler.check_all_used();
      return result;
    }
  };
}

/// `block(fn)` hides every site from the handlers outside; `block(fn, names)`
/// only the named ones.
template <class F>
auto block(F fn, std::vector<std::string> names = {}) {
  return [fn = std::move(fn), names = std::move(names)](auto&&... args) mutable -> decltype(auto) {
    BlockHandler handler([&names](const Message& m) {
      return names.empty() || std::find(names.begin(), names.end(), m.name) != names.end();
    });
    return detail::call_with(handler, fn, std::forward<decltype(args)>(args)...);
  };
}

/// `scale(fn, s)`: log-probabilities multiplied by s (e.g. for data subsampling or annealing).
template <class F>
auto scale(F fn, double factor) {
  return detail::with_handler<ScaleHandler>(std::move(fn), factor);
}

/// `scale(fn, s)` with a tensor: each site's log-probability multiplied by
/// `s` elementwise (broadcast with the site's batch shape).
template <class F>
auto scale(F fn, torch::Tensor factor) {
  return detail::with_handler<ScaleHandler>(std::move(fn), std::move(factor));
}

/// `substitute(fn, {{"w", w}})`: latent, param and deterministic sites take these values.
template <class F>
auto substitute(F fn, std::map<std::string, torch::Tensor> values) {
  return detail::with_handler<SubstituteHandler>(std::move(fn), std::move(values));
}

/// `do_(fn, {{"z", z}})`: an intervention; the named sites are fixed and their densities left out.
template <class F>
auto do_(F fn, std::map<std::string, torch::Tensor> values) {
  return detail::with_handler<DoHandler>(std::move(fn), std::move(values));
}

/// `uncondition(fn)`: every observed site is drawn instead.
template <class F>
auto uncondition(F fn) {
  return [fn = std::move(fn)](auto&&... args) mutable -> decltype(auto) {
    UnconditionHandler handler;
    return detail::call_with(handler, fn, std::forward<decltype(args)>(args)...);
  };
}

/// `scope(fn, "fit2")`: every site and parameter named "fit2/<name>".
template <class F>
auto scope(F fn, std::string prefix) {
  return detail::with_handler<ScopeHandler>(std::move(fn), std::move(prefix));
}

/// `mask(fn, m)`: log-probabilities zeroed where m is false.
template <class F>
auto mask(F fn, torch::Tensor m) {
  return detail::with_handler<MaskHandler>(std::move(fn), std::move(m));
}

/// `seed(fn, n)`: every draw inside uses a generator seeded with n, private to
/// the calling thread (CPU tensors; CUDA draws use the seeded default generator).
template <class F>
auto seed(F fn, uint64_t n) {
  return [fn = std::move(fn), n](auto&&... args) mutable -> decltype(auto) {
    random::SeedScope scope(n);
    return fn(std::forward<decltype(args)>(args)...);
  };
}

}  // namespace handlers

/// Runs `program(args...)` under a trace handler and returns the trace.
template <class F, class... Args>
Trace trace(F&& program, Args&&... args) {
  return handlers::trace(std::forward<F>(program))(std::forward<Args>(args)...);
}

}  // namespace ppl
