// Errors, argument checks and random-number plumbing.
#include <atomic>
#include <filesystem>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/validation_scope.hpp>
#include <ppl/core/errors.hpp>
#include <ppl/core/random.hpp>

namespace ppl {

SourceLocation SourceLocation::from(const std::source_location& loc) {
  SourceLocation out;
  out.file_ = loc.file_name();
  out.line_ = static_cast<int>(loc.line());
  out.function_ = loc.function_name();
  return out;
}

SourceLocation SourceLocation::owning(std::string file, int line, std::string function) {
  SourceLocation out;
  out.storage_ = std::make_shared<const std::pair<std::string, std::string>>(std::move(file), std::move(function));
  out.file_ = out.storage_->first;
  out.function_ = out.storage_->second;
  out.line_ = line;
  return out;
}

std::string SourceLocation::short_string() const {
  if (file_.empty()) return {};
  return fmt::format("{}:{}", std::filesystem::path(file_).filename().string(), line_);
}

std::string describe_site(std::string_view name, const SourceLocation& location) {
  const auto loc = location.short_string();
  return loc.empty() ? fmt::format("site \"{}\"", name) : fmt::format("site \"{}\" ({})", name, loc);
}

std::string CheckContext::suffix() const {
  std::string where = location ? location->short_string() : std::string{};
  if (!site.empty() && !where.empty()) return fmt::format(" (site \"{}\", {})", site, where);
  if (!site.empty()) return fmt::format(" (site \"{}\")", site);
  if (!where.empty()) return fmt::format(" ({})", where);
  return {};
}

namespace {
std::atomic<bool> g_validation{true};
/// -1: follow g_validation; 0 or 1: a ValidationScope on this thread decides.
thread_local int t_validation = -1;
}  // namespace

void set_validation(bool enabled) noexcept { g_validation.store(enabled, std::memory_order_relaxed); }
bool validation_enabled() noexcept {
  return t_validation >= 0 ? t_validation == 1 : g_validation.load(std::memory_order_relaxed);
}

ValidationScope::ValidationScope(bool enabled) noexcept : previous_(t_validation) { t_validation = enabled ? 1 : 0; }
ValidationScope::~ValidationScope() { t_validation = previous_; }

std::string shape_string(c10::IntArrayRef shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

namespace check {
namespace {

std::string format_number(const torch::Tensor& scalar) {
  if (scalar.scalar_type() == torch::kBool) return scalar.item<bool>() ? "true" : "false";
  if (c10::isIntegralType(scalar.scalar_type(), false)) return std::to_string(scalar.item<int64_t>());
  return fmt::format("{:g}", scalar.item<double>());
}

/// The index of the first false element of `ok` (empty for 0-dim).
std::vector<int64_t> first_false(const torch::Tensor& ok) {
  if (ok.dim() == 0) return {};
  // nonzero() may return a transposed layout: make the row contiguous before reading it.
  const auto where = ok.logical_not().nonzero()[0].cpu().contiguous();
  return {where.data_ptr<int64_t>(), where.data_ptr<int64_t>() + where.numel()};
}
std::string index_string(const std::vector<int64_t>& idx) {
  return idx.empty() ? std::string{} : fmt::format("[{}]", fmt::join(idx, ", "));
}

/// The index of the first false element of `ok` ("" for 0-dim, else "[i, j]")
/// and that element of each tensor in `values` (expanded to ok's shape).
std::pair<std::string, std::vector<torch::Tensor>> first_failure(const torch::Tensor& ok,
                                                                 std::vector<torch::Tensor> values) {
  const auto idx = first_false(ok);
  for (auto& v : values) {
    v = v.expand(ok.sizes());
    for (auto i : idx) v = v[i];
  }
  return {index_string(idx), values};
}

/// A vector or matrix for messages: "[0.5, 0.7]", "[[1, 0], [0.3, 1]]", the
/// rows cut after six entries.
std::string format_event(const torch::Tensor& e) {
  if (e.dim() == 0) return format_number(e);
  std::vector<std::string> parts;
  const int64_t n = e.size(0), shown = std::min<int64_t>(n, 6);
  for (int64_t i = 0; i < shown; ++i) parts.push_back(format_event(e[i]));
  if (n > shown) parts.emplace_back("...");
  return fmt::format("[{}]", fmt::join(parts, ", "));
}

}  // namespace

void elementwise(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value,
                 const torch::Tensor& ok, std::string_view requirement) {
  if (ok.all().item<bool>()) return;
  const auto [index, at] = first_failure(ok, {value});
  throw ArgumentError(fmt::format("{}: {}{} is {}, but must be {}{}", ctx.function, arg, index,
                                  format_number(at[0].detach().cpu()), requirement, ctx.suffix()));
}

void events(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value, const torch::Tensor& ok,
            int64_t event_rank, std::string_view requirement) {
  if (event_rank == 0) return elementwise(ctx, arg, value, ok, requirement);
  if (ok.all().item<bool>()) return;
  const auto sizes = value.sizes().vec();
  const std::vector<int64_t> batch(sizes.begin(), sizes.end() - event_rank);
  auto target = at::infer_size(batch, ok.sizes());
  const auto idx = first_false(ok.expand(target));
  target.insert(target.end(), sizes.end() - event_rank, sizes.end());
  auto at = value.expand(target);
  for (auto i : idx) at = at[i];
  throw ArgumentError(fmt::format("{}: {}{} is {}, but must be {}{}", ctx.function, arg, index_string(idx),
                                  format_event(at.detach().cpu()), requirement, ctx.suffix()));
}

void satisfies(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value,
               const constraints::Constraint& c, std::string_view note) {
  const auto ok = c.check(value);
  if (ok.all().item<bool>()) return;
  events(ctx, arg, value, ok, c.event_rank(), fmt::format("{}{}", c.describe(), note));
}

void positive(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value) {
  elementwise(ctx, arg, value, value > 0, "positive");
}
void nonnegative(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value) {
  elementwise(ctx, arg, value, value >= 0, "nonnegative");
}
void finite(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value) {
  elementwise(ctx, arg, value, torch::isfinite(value), "finite");
}
void not_nan(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value) {
  elementwise(ctx, arg, value, value == value, "a number (not NaN)");
}
void probability(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value) {
  elementwise(ctx, arg, value, (value >= 0).logical_and(value <= 1), "in [0, 1]");
}
void less(const CheckContext& ctx, std::string_view low_name, const torch::Tensor& low,
          std::string_view high_name, const torch::Tensor& high) {
  const auto ok = low < high;
  if (ok.all().item<bool>()) return;
  const auto [index, at] = first_failure(ok, {low, high});
  throw ArgumentError(fmt::format("{}: {}{} is {}, but must be less than {}{} ({}){}", ctx.function,
                                  low_name, index, format_number(at[0].detach().cpu()), high_name, index,
                                  format_number(at[1].detach().cpu()), ctx.suffix()));
}
void floating(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value) {
  if (!torch::isFloatingType(value.scalar_type()))
    throw ArgumentError(fmt::format("{}: {} has dtype {}, but must be a floating-point tensor{}",
                                    ctx.function, arg, c10::toString(value.scalar_type()), ctx.suffix()));
}
void defined(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value) {
  if (!value.defined())
    throw ArgumentError(fmt::format("{}: {} is an undefined tensor, but must be given{}", ctx.function,
                                    arg, ctx.suffix()));
}
void min_dim(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value, int64_t dims) {
  if (value.dim() < dims)
    throw ShapeError(fmt::format("{}: {} has shape {}, but must have at least {} dimension{}{}",
                                 ctx.function, arg, shape_string(value.sizes()), dims,
                                 dims == 1 ? "" : "s", ctx.suffix()));
}

}  // namespace check

void manual_seed(uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}

namespace random {
namespace {
thread_local c10::optional<at::Generator> t_generator;
}

c10::optional<at::Generator> generator_for(const torch::Device& device) {
  if (device.is_cpu() && t_generator) return t_generator;
  return c10::nullopt;
}

at::Generator cpu_generator() {
  auto g = generator_for(torch::kCPU);
  return g.has_value() ? *g : at::detail::getDefaultCPUGenerator();
}

torch::Tensor generator_state(at::Generator g) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void check_generator_state(at::Generator g, const torch::Tensor* state, const std::string& what) {
  const auto expected = generator_state(g);
  if (!state || !state->defined() || state->scalar_type() != expected.scalar_type() ||
      state->numel() != expected.numel())
    throw Error(fmt::format("{} has {} generator state, where {} bytes are expected", what,
                            state && state->defined()
                                ? fmt::format("a {}-element {}", state->numel(), c10::toString(state->scalar_type()))
                                : std::string("no"),
                            expected.numel()));
}

void set_generator_state(at::Generator g, const torch::Tensor& state, const std::string& what) {
  check_generator_state(g, &state, what);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state.contiguous());
}

SeedScope::SeedScope(uint64_t seed) : previous_(t_generator) {
  t_generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}
SeedScope::~SeedScope() { t_generator = previous_; }

torch::Tensor standard_normal(c10::IntArrayRef sizes, const torch::TensorOptions& options) {
  return at::empty(sizes, options).normal_(0.0, 1.0, generator_for(options.device()));
}
torch::Tensor uniform(c10::IntArrayRef sizes, const torch::TensorOptions& options, double low, double high) {
  return at::empty(sizes, options).uniform_(low, high, generator_for(options.device()));
}
torch::Tensor bernoulli(const torch::Tensor& probs) {
  return at::bernoulli(probs, generator_for(probs.device()));
}
torch::Tensor multinomial(const torch::Tensor& probs, int64_t n) {
  return at::multinomial(probs, n, /*replacement=*/true, generator_for(probs.device()));
}
torch::Tensor standard_gamma(const torch::Tensor& alpha) {
  return at::_standard_gamma(alpha, generator_for(alpha.device()));
}
torch::Tensor standard_exponential(c10::IntArrayRef sizes, const torch::TensorOptions& options) {
  return at::empty(sizes, options).exponential_(1.0, generator_for(options.device()));
}
torch::Tensor standard_cauchy(c10::IntArrayRef sizes, const torch::TensorOptions& options) {
  return at::empty(sizes, options).cauchy_(0.0, 1.0, generator_for(options.device()));
}
torch::Tensor poisson(const torch::Tensor& rate) { return at::poisson(rate, generator_for(rate.device())); }
torch::Tensor binomial(const torch::Tensor& count, const torch::Tensor& probs) {
  return at::binomial(count, probs, generator_for(probs.device()));
}

}  // namespace random
}  // namespace ppl
