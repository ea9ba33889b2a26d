#pragma once
/// The base of every transform in `ppl::transforms`: a bijection with its
/// inverse and the log absolute determinant of its Jacobian.
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <ppl/constraints.hpp>

namespace ppl::transforms {

/// A bijection y = forward(x) from an unconstrained space onto `codomain()`.
/// Elementwise transforms act on every element; the others act on the
/// trailing `domain_event_rank()` dimensions of x (vectors for
/// StickBreaking, LowerCholesky, CorrCholesky, Ordered; matrices for
/// CholeskyOuter) and give events of rank `codomain_event_rank()`. The
/// dimensions before those are a batch. Transforms are immutable values.
class Transform {
 public:
  virtual ~Transform() = default;

  /// "Exp", "Affine", ...
  virtual std::string_view name() const = 0;
  /// y = f(x).
  virtual torch::Tensor forward(const torch::Tensor& x) const = 0;
  /// x = f^-1(y).
  virtual torch::Tensor inverse(const torch::Tensor& y) const = 0;
  /// log |det df/dx| at x (y = forward(x), passed so that it is not computed
  /// again), for the free coordinates of x and y. Shape: x's shape without
  /// its trailing `domain_event_rank()` dimensions.
  virtual torch::Tensor log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const = 0;
  /// The set `forward` maps onto.
  virtual constraints::Constraint codomain() const = 0;
  /// Trailing dimensions of x that one application spans.
  virtual int64_t domain_event_rank() const { return 0; }
  /// Trailing dimensions of y that one application gives.
  virtual int64_t codomain_event_rank() const { return 0; }
  /// Shape of forward(x) for x of shape `shape`.
  virtual std::vector<int64_t> forward_shape(c10::IntArrayRef shape) const { return shape.vec(); }
  /// Shape of inverse(y) for y of shape `shape`.
  virtual std::vector<int64_t> inverse_shape(c10::IntArrayRef shape) const { return shape.vec(); }

  /// A copy (same dynamic type).
  virtual std::shared_ptr<const Transform> clone() const = 0;
  /// {"type": name()} plus the parameters (see `from_json`).
  virtual nlohmann::json to_json() const;

  torch::Tensor operator()(const torch::Tensor& x) const { return forward(x); }
};

/// CRTP helper: `clone` of the concrete type.
template <class Derived>
class TransformBase : public Transform {
 public:
  std::shared_ptr<const Transform> clone() const override {
    return std::make_shared<Derived>(static_cast<const Derived&>(*this));
  }
};

/// A transform argument: any transform value (copied) or a shared one
/// (`biject_to`'s result), so lists can mix them: `{Exp(), biject_to(c)}`.
struct TransformArg {
  std::shared_ptr<const Transform> ptr;
  TransformArg(const Transform& t) : ptr(t.clone()) {}                          // NOLINT(implicit)
  TransformArg(std::shared_ptr<const Transform> p) : ptr(std::move(p)) {}      // NOLINT(implicit)
};

/// Rebuilds a transform from its JSON form; throws ppl::Error for an unknown
/// type or a missing parameter.
std::shared_ptr<const Transform> from_json(const nlohmann::json& j);

}  // namespace ppl::transforms
