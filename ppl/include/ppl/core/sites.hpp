#pragma once
/// The sites of a program: sample, observe, param, module, and site names.
#include <source_location>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <ppl/core/message.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl {

/// A latent random choice named `name`, drawn from `dist` unless a handler
/// supplies the value (replay, condition, substitute). With `{.obs = x}` and
/// `x` defined it is an observed site, as `observe(name, dist, x)`. Returns
/// the value. Throws ArgumentError for invalid parameters (naming the site),
/// ShapeError when the batch shape disagrees with an enclosing plate.
torch::Tensor sample(const std::string& name, const dist::Distribution& dist, SampleOptions options = {},
                     std::source_location location = std::source_location::current());

/// An observed random choice: `value` scored under `dist`. Throws
/// ArgumentError when the value is outside the support, ShapeError when its
/// shape does not match the distribution.
torch::Tensor observe(const std::string& name, const dist::Distribution& dist, const torch::Tensor& value,
                      SampleOptions options = {},
                      std::source_location location = std::source_location::current());

/// Adds `log_weight` to the log joint (Pyro's factor): an observed site of a
/// Delta whose log-density is `log_weight` (any shape; plates broadcast it
/// like a batch). Throws ArgumentError for an undefined or non-floating
/// weight.
void factor(const std::string& name, const torch::Tensor& log_weight,
            std::source_location location = std::source_location::current());

/// Records `value` in the trace under `name` without a density (kind
/// "deterministic"): returned by Predictive, shown in traces, never scored.
/// Returns the value (or the one a handler such as substitute supplies).
torch::Tensor deterministic(const std::string& name, const torch::Tensor& value,
                            std::source_location location = std::source_location::current());

/// A learnable tensor in `ppl::param_store()`, created from `init` on first
/// use (a copy; requires grad). The store keeps it unconstrained and returns
/// `ppl::transforms::biject_to(constraint)` of it: `constraint` is any of
/// `ppl::constraints` without integers (`positive`, `interval(a, b)`,
/// `simplex`, `lower_cholesky`, ...; a `ParamConstraint` converts). Throws
/// ArgumentError when `init` is outside the constraint, and when the name
/// exists with another constraint (ShapeError: another shape), naming both
/// calls' source locations.
torch::Tensor param(const std::string& name, const torch::Tensor& init,
                    const constraints::Constraint& constraint = constraints::real,
                    std::source_location location = std::source_location::current());

/// Registers every parameter of `module` in the param store as
/// "<name>.<parameter path>" (emitting a param site for each) and returns
/// the module. Values loaded into the store earlier are copied into it.
void register_module(const std::string& name, torch::nn::Module& module, std::source_location location);

template <class M>
M module(const std::string& name, M m, std::source_location location = std::source_location::current()) {
  if constexpr (requires { m.ptr(); }) register_module(name, *m.ptr(), location);
  else register_module(name, *m, location);
  return m;
}

/// A site name inside loops: `addr("z_where", 3)` is "z_where/3",
/// `addr("z", t, k)` is "z/<t>/<k>".
template <class... Index>
std::string addr(std::string_view base, const Index&... index) {
  std::string out(base);
  ((out += fmt::format("/{}", index)), ...);
  return out;
}

}  // namespace ppl
