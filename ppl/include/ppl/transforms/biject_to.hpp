#pragma once
#include <memory>

#include <ppl/constraints.hpp>
#include <ppl/transforms/transform.hpp>

namespace ppl::transforms {

/// The transform from unconstrained space onto `c`:
///
/// | constraint | transform |
/// |---|---|
/// | real | identity (`Compose()`) |
/// | positive, nonnegative | Exp |
/// | greater_than(a) | Exp, then Affine(a, 1) |
/// | unit_interval | Sigmoid |
/// | interval(a, b) | Sigmoid, then Affine(a, b - a) |
/// | simplex | StickBreaking |
/// | lower_cholesky | LowerCholesky |
/// | corr_cholesky | CorrCholesky |
/// | positive_definite | LowerCholesky, then CholeskyOuter |
/// | ordered_vector | Ordered |
///
/// Throws ArgumentError for the discrete constraints, which no bijection
/// from the reals reaches.
std::shared_ptr<const Transform> biject_to(const constraints::Constraint& c);

}  // namespace ppl::transforms
