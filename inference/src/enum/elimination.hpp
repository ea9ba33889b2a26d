#pragma once
// Tensor variable elimination over plates (Obermeyer et al. 2019, "Tensor
// variable elimination for plated factor graphs"), written against traces:
// the factors are the log-densities of the sites that depend on enumerated
// variables, the plates are the sites' plates.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

#include <ppl/core/trace.hpp>
#include <ppl/infer/elbo.hpp>
#include <ppl/infer/enum/elimination_stats.hpp>

namespace ppl::infer::enumeration {

/// A set of plates: bit i stands for plate i of a Graph.
using Ordinal = uint64_t;

/// A log-factor: `log_value` has one leading dim per variable (in `vars`
/// order, each of the variable's size) followed by the plate block (the
/// rightmost dims of the program's tensors, where the plates live).
struct Factor {
  torch::Tensor log_value;
  std::vector<int64_t> vars;
  Ordinal ordinal = 0;
};

/// Sum-product (logsumexp) or max-product (MAP).
enum class Ring { sum, max };

/// The combined factor over `vars` just before `var` was reduced: what
/// backward sampling conditions on.
struct TapeEntry {
  int64_t var;
  torch::Tensor log_value;
  std::vector<int64_t> vars;
};

/// An enumerated variable.
struct Variable {
  int64_t dim = 0;       ///< the dim its site's value lies along
  int64_t size = 0;      ///< the size of its support
  Ordinal ordinal = 0;   ///< its site's plates
  bool sum = true;       ///< summed out (else kept at its dim: a guide's variable in the ELBO)
  std::string site;      ///< its site's name, for messages
};

/// The plates and enumerated variables of the sites being eliminated.
class Graph {
 public:
  /// `plate_block`: how many rightmost dims belong to plates.
  Graph(int64_t plate_block, std::string_view who) : block_(plate_block), who_(who) {}

  int64_t plate_block() const { return block_; }
  /// The ordinal of a plate stack (each plate name registered once).
  Ordinal ordinal(const std::vector<PlateFrame>& plates);
  /// The frames of an ordinal.
  std::vector<PlateFrame> frames(Ordinal ordinal) const;

  void add_variable(int64_t id, Variable v) { vars_[id] = std::move(v); }
  /// The variable `id`, or null.
  const Variable* variable(int64_t id) const;
  const std::map<int64_t, Variable>& variables() const { return vars_; }

  /// The variables a site's log-density of shape `shape` varies along
  /// (dims left of the plate block with size > 1), as the site's
  /// enumeration record names them. ShapeError naming the site for a dim
  /// that holds no variable the site can see.
  std::vector<int64_t> variables_of(const Site& site, c10::IntArrayRef shape) const;
  /// `log_value` (a log-density of `site`, in the program's layout) as a
  /// factor. ShapeError naming the site for a dim of the plate block with
  /// size > 1 and no plate of the site there (declare one, or `to_event`).
  Factor pack(const Site& site, const torch::Tensor& log_value);
  /// A factor whose variables never recycle their dims (the guide's) back
  /// in the program's layout.
  torch::Tensor unpack(const Factor& f) const;

  /// Reduces the summed variables of `factors` (one connected component)
  /// to one factor at the most global ordinal: the leaf ordinals first,
  /// each leaf's variables by greedy variable elimination, then a product
  /// over the plates that separate it from its parent (Pyro's
  /// `contract_tensor_tree`). With `tape`, records each combined factor.
  Factor contract(std::vector<Factor> factors, Ring ring, std::vector<TapeEntry>* tape,
                  EliminationStats& stats) const;

 private:
  Factor sum_product(std::vector<Factor> factors, const std::vector<int64_t>& eliminate, Ring ring,
                     std::vector<TapeEntry>* tape, EliminationStats& stats) const;
  Factor plate_product(Factor f, Ordinal plates, EliminationStats& stats) const;
  bool summed(int64_t var) const;

  int64_t block_;
  std::string who_;
  std::vector<PlateFrame> plates_;
  std::map<int64_t, Variable> vars_;
};

/// A term of log p (or of log p - log q) after the summed variables are
/// out: a site's own log-density, or the log-marginal of the sites of one
/// connected component, in the program's layout (plates at their dims; the
/// guide's enumerated variables, when kept, at theirs).
struct Term {
  torch::Tensor log_value;
  std::vector<PlateFrame> plates;
  std::vector<const Site*> sites;  ///< the model (or guide) sites it stands for
  bool guide = false;              ///< -log q of a guide site (enters with a minus sign)
  bool contracted = false;         ///< the log-marginal of a component, not one site's log_prob
};

/// Which variables `sum_out` sums.
enum class Sum {
  model,  ///< those the model enumerated (the ELBO); the guide's stay, for the guide's weights
  all,    ///< every enumerated variable, the guide's log q of them cancelling (importance weights)
};

/// The shape of a site's log-density: its value's batch part broadcast with
/// its distribution's batch shape.
std::vector<int64_t> log_prob_shape(const Site& s);

/// Splits factors into the groups connected through summed variables.
std::vector<std::vector<Factor>> connected(std::vector<Factor> factors, const Graph& graph);

/// True when some site of the traces is enumerated.
bool enumerated(const TracePair& traces);

/// The model's terms (and with Sum::all the guide's, negated) with the
/// enumerated variables summed out: a site that depends on no summed
/// variable is its own term (its `log_prob()`); the sites that do are
/// contracted per connected component, each component scaled once by the
/// scale its sites share. ArgumentError naming two sites with different
/// scales or a site with a scale tensor; ShapeError as `Graph::pack`.
std::vector<Term> sum_out(const TracePair& traces, Sum which, EliminationStats& stats, std::string_view who);

/// The expectation of `value` (a term over `plates`, in the program's
/// layout) under the guide's enumerated variables: the sum over their
/// values weighted by their guide probabilities (with gradient, so the
/// weights are differentiated exactly). Returns `value` itself when it
/// depends on none. ArgumentError for a guide variable in a plate that the
/// term is not in, or a masked enumerated guide site.
torch::Tensor expect_under_guide(const Trace& guide, const torch::Tensor& value, const std::vector<PlateFrame>& plates,
                                 std::string_view who);

}  // namespace ppl::infer::enumeration
