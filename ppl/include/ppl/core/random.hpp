#pragma once
/// Random-number plumbing: every sampler in ppl::dist draws through these
/// helpers, so `ppl::handlers::seed` makes a program deterministic on the
/// calling thread without touching other threads.
#include <cstdint>
#include <optional>
#include <string>

#include <c10/util/Optional.h>

#include <ATen/core/Generator.h>
#include <torch/types.h>

namespace ppl {

/// Seeds the process-wide torch generators (CPU and, when present, CUDA).
void manual_seed(uint64_t seed);

namespace random {

/// The generator to use for tensors on `device`: the thread's seeded CPU
/// generator inside `ppl::handlers::seed`, otherwise torch's default.
c10::optional<at::Generator> generator_for(const torch::Device& device);

/// The generator CPU draws use now: the thread's seeded one inside a
/// SeedScope, otherwise torch's default CPU generator.
at::Generator cpu_generator();

/// A copy of `g`'s state (torch's bytes), taken under its lock; saved in
/// checkpoints so that a resumed computation repeats its draws.
torch::Tensor generator_state(at::Generator g);

/// Checks that `state` (null: missing) is a state of `g`'s kind, a tensor of
/// the dtype and size of its own, before anything is changed: otherwise an
/// Error naming `what` (the file and entry it came from).
void check_generator_state(at::Generator g, const torch::Tensor* state, const std::string& what);

/// Restores `g` to `state` after check_generator_state.
void set_generator_state(at::Generator g, const torch::Tensor& state, const std::string& what);

/// Installs a CPU generator seeded with `seed` for this thread (and seeds the
/// default CUDA generator when CUDA is present); restores the previous one on
/// destruction.
class [[nodiscard]] SeedScope {
 public:
  explicit SeedScope(uint64_t seed);
  ~SeedScope();
  SeedScope(const SeedScope&) = delete;
  SeedScope& operator=(const SeedScope&) = delete;

 private:
  c10::optional<at::Generator> previous_;
};

/// Standard normal draws of the given shape.
torch::Tensor standard_normal(c10::IntArrayRef sizes, const torch::TensorOptions& options);
/// Uniform draws in [low, high).
torch::Tensor uniform(c10::IntArrayRef sizes, const torch::TensorOptions& options, double low, double high);
/// Bernoulli draws with success probabilities `probs` (same shape).
torch::Tensor bernoulli(const torch::Tensor& probs);
/// `n` categorical draws with replacement per row of `probs` [rows, K].
torch::Tensor multinomial(const torch::Tensor& probs, int64_t n);
/// Gamma(alpha, 1) draws, differentiable in `alpha` (ATen's standard-gamma gradient).
torch::Tensor standard_gamma(const torch::Tensor& alpha);
/// Standard exponential draws (rate 1) of the given shape.
torch::Tensor standard_exponential(c10::IntArrayRef sizes, const torch::TensorOptions& options);
/// Standard Cauchy draws (location 0, scale 1) of the given shape.
torch::Tensor standard_cauchy(c10::IntArrayRef sizes, const torch::TensorOptions& options);
/// Poisson draws with the given rates (same shape), as floating values.
torch::Tensor poisson(const torch::Tensor& rate);
/// Binomial draws with the given counts and success probabilities (same shape).
torch::Tensor binomial(const torch::Tensor& count, const torch::Tensor& probs);

}  // namespace random
}  // namespace ppl
