#pragma once
/// Parallel enumeration of finite-support sites (Pyro's `enum` handler).
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ppl/core/handler.hpp>

namespace ppl::handlers {

/// The enumeration dims and variables of one execution. A guide and the
/// model replayed against it share one, so that the model's variables never
/// take the guide's dims.
class EnumerationState {
 public:
  /// `first_dim`: the rightmost dim enumeration may use,
  /// -(max_plate_nesting + 1) (one further left with an outer plate of
  /// vectorised particles). Throws ArgumentError unless it is negative.
  explicit EnumerationState(int64_t first_dim);

  int64_t first_dim() const { return first_dim_; }
  /// A new variable of `size` values that keeps its dim for the whole
  /// execution, left of every dim used so far: (dim, id).
  std::pair<int64_t, int64_t> global(int64_t size);
  /// A new variable of `size` values in a Markov step: the rightmost dim
  /// that neither a global variable nor one of `in_scope` (dims) holds:
  /// (dim, id).
  std::pair<int64_t, int64_t> local(int64_t size, const std::vector<int64_t>& in_scope);
  /// (dim, variable) of the global variables, in allocation order.
  const std::vector<std::pair<int64_t, int64_t>>& globals() const { return globals_; }
  /// The dim of a variable.
  int64_t dim_of(int64_t variable) const;
  /// The number of values of a variable.
  int64_t size_of(int64_t variable) const;
  /// Number of variables allocated.
  int64_t variables() const { return next_id_; }

 private:
  int64_t first_dim_;
  int64_t leftmost_ = 0;  ///< the leftmost dim used so far; 0 for none
  int64_t next_id_ = 0;
  std::vector<std::pair<int64_t, int64_t>> globals_;
  std::unordered_map<int64_t, std::pair<int64_t, int64_t>> vars_;  ///< id -> (dim, size)
};

/// Parallel enumeration: a latent sample site with `.enumerate = true` that
/// no handler gave a value takes its distribution's whole support
/// (`enumerate_support`) along a dim of its own left of every plate, so
/// every site downstream broadcasts over it. Every sample and observe site
/// records in `Message::enumeration` which variable each enumeration dim
/// holds for it, from the first enumerated site on (sites before it run as
/// without enumeration). With `recycle` (the model's handler), sites enumerated
/// inside a `ppl::Markov` chain take local dims that later steps reuse;
/// without it (a guide's) every variable keeps its dim.
///
/// Throws ArgumentError naming the site for a distribution whose support
/// cannot be enumerated, ShapeError for a plate left of `first_dim`'s plate
/// block (raise max_plate_nesting) and for a batch dimension left of the
/// plates that holds no variable the site can see.
class EnumerateHandler : public Handler {
 public:
  explicit EnumerateHandler(EnumerationState& state, bool recycle = true) : state_(state), recycle_(recycle) {}
  void process(Message& msg) override;

 private:
  EnumerationState& state_;
  bool recycle_;
};

/// Options of `handlers::enumerate`.
struct EnumerateOptions {
  /// The number of nested plates the program uses: enumeration dims start
  /// at -(max_plate_nesting + 1).
  int max_plate_nesting = 1;
};

/// `enumerate(fn, {.max_plate_nesting = 1})`: runs fn with its
/// `.enumerate` sites enumerated in parallel (to inspect a trace:
/// `ppl::trace(handlers::enumerate(model), x).format_shapes()`). The
/// inference algorithms install their own.
template <class F>
auto enumerate(F fn, EnumerateOptions options = {}) {
  return [fn = std::move(fn), options](auto&&... args) mutable -> decltype(auto) {
    EnumerationState state(-(options.max_plate_nesting + 1));
    EnumerateHandler handler(state);
    HandlerScope scope(handler);
    return fn(std::forward<decltype(args)>(args)...);
  };
}

}  // namespace ppl::handlers
