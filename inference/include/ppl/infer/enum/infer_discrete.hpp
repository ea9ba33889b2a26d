#pragma once
/// MAP values or posterior draws of a model's enumerated sites given the
/// rest (Pyro's `infer_discrete`).
#include <utility>

#include <ppl/core/enumerate.hpp>
#include <ppl/core/handlers.hpp>
#include <ppl/core/trace.hpp>

namespace ppl::infer {

/// Options of `infer_discrete`.
struct InferDiscreteOptions {
  /// 0: the most probable joint values of the enumerated sites (MAP, by
  /// max-product elimination and back-tracking, as Viterbi); 1: one draw
  /// from their joint posterior (forward filtering, backward sampling).
  int temperature = 1;
  /// The number of nested plates the model uses: enumeration dims start at
  /// -(max_plate_nesting + 1).
  int max_plate_nesting = 1;
};

namespace detail {
/// Throws ArgumentError for a temperature other than 0 or 1 or a negative
/// max_plate_nesting.
void check_options(const InferDiscreteOptions& options);
/// From a trace of the model under enumeration, a trace to replay: every
/// enumerated site at its MAP value (temperature 0) or a posterior draw
/// (1), every other latent site at the value it had. Throws ArgumentError
/// naming a latent site that is neither enumerated nor independent of the
/// enumerated ones (condition it, e.g. by replaying a guide's trace).
Trace sample_discrete(const Trace& enumerated, int temperature);
}  // namespace detail

/// `infer_discrete(model, {.temperature = 0})` is the model with its
/// `.enumerate` sites set to their MAP values given everything else (or,
/// with temperature 1, to a draw from their posterior): calling it runs the
/// model once under enumeration, hidden from the handlers outside, sums the
/// enumerated sites out over the plates and Markov chains (each chain in
/// time linear in its length), picks their values backwards, and runs the
/// model again with those values, returning what it returns. Trace it to
/// read them: `ppl::trace(infer_discrete(model, {.temperature = 0}), x)`.
/// Other latent sites keep the values the first run drew; to condition on
/// a guide, pass `handlers::replay(model, guide_trace)`.
template <class M>
auto infer_discrete(M model, InferDiscreteOptions options = {}) {
  detail::check_options(options);
  return [model = std::move(model), options](auto&&... args) mutable -> decltype(auto) {
    Trace enumerated;
    {
      handlers::BlockHandler hide([](const Message&) { return true; });
      handlers::TraceHandler record;
      handlers::EnumerationState state(-(options.max_plate_nesting + 1));
      handlers::EnumerateHandler enumerate(state);
      HandlerScope hidden(hide);
      HandlerScope recorded(record);
      HandlerScope enumerating(enumerate);
      model(args...);
      enumerated = std::move(record.trace());
    }
    const Trace values = detail::sample_discrete(enumerated, options.temperature);
    handlers::ReplayHandler replay(values);
    HandlerScope scope(replay);
    return model(std::forward<decltype(args)>(args)...);
  };
}

}  // namespace ppl::infer
