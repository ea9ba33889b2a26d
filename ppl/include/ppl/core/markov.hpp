#pragma once
/// Markov chains of steps for enumeration (Pyro's `markov`).
#include <cstdint>
#include <vector>

namespace ppl {

/// Options of `ppl::Markov` and `ppl::markov`.
struct MarkovOptions {
  /// How many earlier steps a step's sites may depend on: 1 for a
  /// first-order chain (an HMM), 0 for independent steps.
  int history = 1;
};

/// A chain of steps, as Pyro's `markov`: an enumerated site in step t may
/// depend on the enumerated sites of steps t - history, ..., t and on those
/// enumerated outside every chain, and on nothing else. Enumeration then
/// recycles the dims of the steps out of reach, so a chain of T sites with
/// K values each costs O(T K^(history + 1)) to sum out instead of K^T (and
/// needs history + 1 dims instead of T). Without enumeration it does
/// nothing. The chain lives as long as the object (RAII); sites after it see
/// only the variables enumerated outside every chain. A site that uses a
/// value from further back than `history` steps is summed out wrongly (its
/// dim may hold a later variable by then), as in Pyro.
///
///     ppl::Markov chain;
///     for (int64_t t = 0; t < T; ++t) {
///       chain.step();
///       z = ppl::sample(ppl::addr("z", t), d::Categorical(trans.index({z})), {.enumerate = true});
///       ...
///     }
class [[nodiscard]] Markov {
 public:
  /// Throws ArgumentError for a negative history.
  explicit Markov(MarkovOptions options = {});
  ~Markov();
  Markov(const Markov&) = delete;
  Markov& operator=(const Markov&) = delete;

  /// Starts the next step (the first call starts step 0; sites before it
  /// belong to step 0).
  void step();
  /// The current step (-1 before the first `step()`).
  int64_t position() const { return position_; }
  int history() const { return history_; }

  /// Records an enumerated variable in the current step (enumeration
  /// handlers call it).
  void add(int64_t variable);
  /// Appends the variables of the steps within reach of the current one.
  void visible(std::vector<int64_t>& out) const;

 private:
  int history_;
  int64_t position_ = -1;
  std::vector<std::vector<int64_t>> window_;  ///< the last history + 1 steps' variables, oldest first
};

/// The chains active on this thread, outermost first.
const std::vector<Markov*>& markov_stack();

/// `for (int64_t t : ppl::markov(T)) { ... }`: the steps 0, ..., T-1 of one
/// chain, each iteration a step (see `ppl::Markov`).
class [[nodiscard]] MarkovRange {
 public:
  MarkovRange(int64_t size, MarkovOptions options) : size_(size), chain_(options) {}

  class iterator {
   public:
    iterator(MarkovRange* range, int64_t t) : range_(range), t_(t) {}
    int64_t operator*() const { return t_; }
    iterator& operator++() {
      if (++t_ < range_->size_) range_->chain_.step();
      return *this;
    }
    bool operator!=(const iterator& other) const { return t_ != other.t_; }
    bool operator==(const iterator& other) const { return t_ == other.t_; }

   private:
    MarkovRange* range_;
    int64_t t_;
  };
  iterator begin() {
    if (size_ > 0) chain_.step();
    return {this, 0};
  }
  iterator end() { return {this, size_ > 0 ? size_ : 0}; }

 private:
  int64_t size_;
  Markov chain_;
};

/// The steps of one chain as a range: `for (int64_t t : ppl::markov(T))`.
inline MarkovRange markov(int64_t size, MarkovOptions options = {}) { return MarkovRange(size, options); }

}  // namespace ppl
