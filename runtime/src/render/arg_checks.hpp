#pragma once
// Argument checks shared by the runtime's operators: one message form,
//   "<op>: <arg> has shape [4, 3], but must be [B, T] = [4, 5]"
//   "<op>: <arg>[1, 2] is -0.5, but must be positive"
// and every failure is a std::invalid_argument.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <torch/types.h>

namespace ppl::runtime::detail {

inline std::string shape_string(c10::IntArrayRef sizes) {
  return fmt::format("[{}]", fmt::join(sizes.begin(), sizes.end(), ", "));
}

[[noreturn]] inline void fail(std::string message) { throw std::invalid_argument(std::move(message)); }

inline void check_defined(std::string_view op, std::string_view arg, const torch::Tensor& t) {
  if (!t.defined()) fail(fmt::format("{}: {} is an undefined tensor", op, arg));
}

/// `t` must have rank `rank`; `form` names the expected dims, e.g. "[B, T, D+1, 2]".
inline void check_rank(std::string_view op, std::string_view arg, const torch::Tensor& t,
                       std::int64_t rank, std::string_view form) {
  check_defined(op, arg, t);
  if (t.dim() != rank)
    fail(fmt::format("{}: {} has shape {}, but must be {} (rank {})", op, arg,
                     shape_string(t.sizes()), form, rank));
}

/// `t` must have exactly `expected` sizes; `form` names them, e.g. "[B, T]".
inline void check_shape(std::string_view op, std::string_view arg, const torch::Tensor& t,
                        const std::vector<std::int64_t>& expected, std::string_view form) {
  check_defined(op, arg, t);
  if (t.sizes() != c10::IntArrayRef(expected))
    fail(fmt::format("{}: {} has shape {}, but must be {} = {}", op, arg, shape_string(t.sizes()),
                     form, shape_string(expected)));
}

inline void check_floating(std::string_view op, std::string_view arg, const torch::Tensor& t) {
  if (!t.is_floating_point())
    fail(fmt::format("{}: {} has dtype {}, but must be a floating-point dtype", op, arg,
                     std::string(c10::toString(t.scalar_type()))));
}

/// `t` must share dtype and device with `ref` (named `ref_arg`).
inline void check_like(std::string_view op, std::string_view arg, const torch::Tensor& t,
                       std::string_view ref_arg, const torch::Tensor& ref) {
  if (t.scalar_type() != ref.scalar_type())
    fail(fmt::format("{}: {} has dtype {}, but must match {} ({})", op, arg,
                     std::string(c10::toString(t.scalar_type())), ref_arg,
                     std::string(c10::toString(ref.scalar_type()))));
  if (t.device() != ref.device())
    fail(fmt::format("{}: {} is on {}, but must be on the device of {} ({})", op, arg,
                     t.device().str(), ref_arg, ref.device().str()));
}

/// Every element of `t` must be finite and > 0 (NaN fails too).
inline void check_positive(std::string_view op, std::string_view arg, const torch::Tensor& t) {
  if (t.numel() == 0) return;
  const auto bad = torch::logical_not(torch::isfinite(t) & (t > 0));
  if (!bad.any().item<bool>()) return;
  const auto flat = bad.reshape({-1}).nonzero()[0][0].item<std::int64_t>();
  std::vector<std::int64_t> index(static_cast<std::size_t>(t.dim()));
  std::int64_t rest = flat;
  for (std::int64_t d = t.dim() - 1; d >= 0; --d) {
    index[static_cast<std::size_t>(d)] = rest % t.size(d);
    rest /= t.size(d);
  }
  const double value = t.reshape({-1})[flat].item<double>();
  fail(fmt::format("{}: {}[{}] is {}, but must be positive", op, arg, fmt::join(index, ", "), value));
}

inline void check_positive_option(std::string_view op, std::string_view name, std::int64_t v) {
  if (v <= 0) fail(fmt::format("{}: {} is {}, but must be positive", op, name, v));
}

}  // namespace ppl::runtime::detail
