#pragma once
// Numerical helpers shared by the distribution families (not installed).
#include <string_view>

#include <torch/types.h>

#include <ppl/core/check.hpp>

#include "../numerics.hpp"

namespace ppl::dist::detail {

using numerics::eps_of;
using numerics::sum_rightmost;
using numerics::tiny_of;

inline constexpr double kLogSqrt2Pi = 0.91893853320467274178;  // log(sqrt(2 pi))
inline constexpr double kLogPi = 1.14472988584940017414;       // log(pi)
inline constexpr double kPi = 3.14159265358979323846;

/// Probabilities clamped into [eps, 1 - eps].
torch::Tensor clamp_probs(const torch::Tensor& p);
/// Log-odds of probabilities (clamped first).
torch::Tensor probs_to_logits(const torch::Tensor& p);
/// A 0-dim tensor holding `v`, with t's dtype and device.
torch::Tensor full_like_scalar(const torch::Tensor& t, double v);

/// Gamma(alpha, 1) draws of shape `sizes` (alpha broadcast to it), kept
/// above 0; differentiable in alpha (ATen's standard-gamma gradient).
torch::Tensor gamma_draws(const torch::Tensor& alpha, c10::IntArrayRef sizes);
/// Solves L X = B for lower-triangular L [..., n, n] and B [..., n, m], the
/// batch dimensions broadcast.
torch::Tensor solve_lower(const torch::Tensor& l, const torch::Tensor& b);

/// `value` is positive and finite (two checks, so the message says which).
void positive_finite(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value);

/// Category weights [..., K] as given (logits: unnormalised
/// log-probabilities, anything but NaN, not all -inf; probs: nonnegative,
/// finite, with a positive sum), shared by every family with categories.
void check_categorical_weights(const CheckContext& ctx, bool logits, const torch::Tensor& w);
/// Normalised probabilities of the weights.
torch::Tensor category_probs(bool logits, const torch::Tensor& w);
/// Normalised log-probabilities of the weights.
torch::Tensor category_log_probs(bool logits, const torch::Tensor& w);
/// Category indices (int64) of shape `sizes` = sample shape + the batch of
/// `probs` [..., K]; no gradient.
torch::Tensor draw_categories(const torch::Tensor& probs, c10::IntArrayRef sizes);

}  // namespace ppl::dist::detail
