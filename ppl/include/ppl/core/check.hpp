#pragma once
/// The one family of argument checks. Every message has the form
///   `Normal: scale[3] is -0.5, but must be positive (site "z_what/2", model.cpp:41)`
/// and is raised as ppl::ArgumentError (values) or ppl::ShapeError (shapes).
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

#include <ppl/constraints.hpp>
#include <ppl/core/errors.hpp>

namespace ppl {

/// Turns argument validation on or off for the whole process (on by
/// default). Checks synchronise with the device; turn them off for speed
/// once a program is known to be right.
void set_validation(bool enabled) noexcept;
/// True when argument validation is on.
bool validation_enabled() noexcept;

/// Formats a shape as "[4, 2]".
std::string shape_string(c10::IntArrayRef shape);

namespace check {

/// Throws ArgumentError for the first element of `value` where `ok` is false,
/// as "<function>: <arg>[i] is <v>, but must be <requirement><suffix>".
void elementwise(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value,
                 const torch::Tensor& ok, std::string_view requirement);

/// Throws ArgumentError for the first event of `value` (its trailing
/// `event_rank` dimensions) where `ok` (value's shape without them, or a
/// shape that broadcasts to it) is false, as
/// "<function>: <arg>[i] is [0.5, 0.7], but must be <requirement><suffix>".
/// With `event_rank` 0 this is `elementwise`.
void events(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value, const torch::Tensor& ok,
            int64_t event_rank, std::string_view requirement);
/// `value` lies in `c` (events of its rank); the requirement is `c.describe()`
/// followed by `note` (e.g. " (the support)").
void satisfies(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value,
               const constraints::Constraint& c, std::string_view note = {});

/// `value` > 0 everywhere.
void positive(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value);
/// `value` >= 0 everywhere.
void nonnegative(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value);
/// `value` is finite (no NaN or infinity).
void finite(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value);
/// `value` is not NaN (infinities allowed, e.g. logits of -inf).
void not_nan(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value);
/// 0 <= `value` <= 1 everywhere.
void probability(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value);
/// `low` < `high` everywhere (after broadcasting).
void less(const CheckContext& ctx, std::string_view low_name, const torch::Tensor& low,
          std::string_view high_name, const torch::Tensor& high);
/// `value` is a floating-point tensor.
void floating(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value);
/// `value` is defined (not a default-constructed tensor).
void defined(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value);
/// `value` has at least `dims` dimensions.
void min_dim(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value, int64_t dims);

}  // namespace check
}  // namespace ppl

/// Internal invariant (not user-facing): aborts the operation with a logic_error.
#define PPL_ASSERT(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) throw std::logic_error(std::string("ppl internal error: ") + #cond +       \
                                        " (" + __FILE__ + ":" + std::to_string(__LINE__) + ")"); \
  } while (0)
