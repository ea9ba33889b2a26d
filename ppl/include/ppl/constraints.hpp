#pragma once
/// Constraints (`ppl::constraints`): the sets that distributions live on
/// (`Distribution::support()`) and that learnable parameters are kept in
/// (`ppl::param(name, init, constraint)`, through `ppl::transforms::biject_to`).
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

namespace ppl {

/// The constraints of the first parameter API, kept for existing callers:
/// each converts to the `ppl::constraints` value of the same name.
enum class ParamConstraint { real, positive, unit_interval };

namespace constraints {

/// A set of values. Scalar constraints act elementwise; the others
/// (`simplex`, `ordered_vector`, `one_hot`, `multinomial`: vectors;
/// `lower_cholesky`, `corr_cholesky`, `positive_definite`: matrices) act on
/// the trailing `event_rank()` dimensions. Bounds are tensors that broadcast
/// against the values (a 0-dim tensor for a plain number).
class Constraint {
 public:
  enum class Kind {
    real,                 ///< finite real numbers
    boolean,              ///< {0, 1}
    unit_interval,        ///< [0, 1]
    positive,             ///< (0, inf), finite
    nonnegative,          ///< [0, inf), finite
    greater_than,         ///< (lower, inf), finite
    interval,             ///< [lower, upper]
    integer_interval,     ///< {lower, ..., upper}
    nonnegative_integer,  ///< {0, 1, 2, ...}
    simplex,              ///< nonnegative vectors summing to 1
    lower_cholesky,       ///< lower-triangular matrices with a positive diagonal
    corr_cholesky,        ///< Cholesky factors of correlation matrices (rows of unit norm)
    positive_definite,    ///< symmetric positive-definite matrices
    ordered_vector,       ///< strictly increasing vectors
    one_hot,              ///< vectors of zeros with a single one
    multinomial,          ///< vectors of nonnegative integers summing to `upper`
  };

  /// The real line.
  Constraint() = default;
  explicit Constraint(Kind kind, torch::Tensor lower = {}, torch::Tensor upper = {});
  /// The constraint of the same name.
  Constraint(ParamConstraint c);  // NOLINT(google-explicit-constructor)

  Kind kind() const { return kind_; }
  const torch::Tensor& lower() const { return lower_; }
  const torch::Tensor& upper() const { return upper_; }

  /// "real", "interval", ... (the name in `ppl::constraints`).
  std::string name() const;
  /// The name with its bounds: "interval(0, 2)", "greater_than(-1)".
  std::string to_string() const;
  /// A readable requirement for check messages: "positive", "in [0, 1]",
  /// "in the simplex (nonnegative, summing to 1)".
  std::string describe() const;
  /// Number of trailing dimensions one constrained object spans (0, 1 or 2).
  int64_t event_rank() const;
  /// True for the sets of integers (boolean, integer_interval, ...).
  bool is_discrete() const;

  /// Membership of `value`: a bool tensor of value's shape without the
  /// trailing `event_rank()` dimensions. NaN and infinities are outside
  /// every constraint.
  torch::Tensor check(const torch::Tensor& value) const;

  /// The name for constraints without bounds ("positive"), else
  /// {"name": ..., "lower": ..., "upper": ...} with numbers for 0-dim bounds.
  nlohmann::json to_json() const;
  /// Reads `to_json`'s form; throws ppl::Error naming an unknown constraint
  /// and listing the known ones.
  static Constraint from_json(const nlohmann::json& j);

  /// Same kind and equal bounds.
  bool operator==(const Constraint& other) const;
  bool operator!=(const Constraint& other) const { return !(*this == other); }

 private:
  Kind kind_ = Kind::real;
  torch::Tensor lower_, upper_;
};

inline const Constraint real{Constraint::Kind::real};
inline const Constraint boolean{Constraint::Kind::boolean};
inline const Constraint unit_interval{Constraint::Kind::unit_interval};
inline const Constraint positive{Constraint::Kind::positive};
inline const Constraint nonnegative{Constraint::Kind::nonnegative};
inline const Constraint nonnegative_integer{Constraint::Kind::nonnegative_integer};
inline const Constraint simplex{Constraint::Kind::simplex};
inline const Constraint lower_cholesky{Constraint::Kind::lower_cholesky};
inline const Constraint corr_cholesky{Constraint::Kind::corr_cholesky};
inline const Constraint positive_definite{Constraint::Kind::positive_definite};
inline const Constraint ordered_vector{Constraint::Kind::ordered_vector};
inline const Constraint one_hot{Constraint::Kind::one_hot};

/// (lower, inf).
Constraint greater_than(double lower);
Constraint greater_than(torch::Tensor lower);
/// [lower, upper].
Constraint interval(double lower, double upper);
Constraint interval(torch::Tensor lower, torch::Tensor upper);
/// The integers in [lower, upper].
Constraint integer_interval(double lower, double upper);
Constraint integer_interval(torch::Tensor lower, torch::Tensor upper);
/// Vectors of nonnegative integers summing to `total_count`.
Constraint multinomial(torch::Tensor total_count);

}  // namespace constraints
}  // namespace ppl
