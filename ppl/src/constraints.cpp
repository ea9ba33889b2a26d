// Constraints: membership, names and the JSON form.
#include <array>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/constraints.hpp>
#include <ppl/core/errors.hpp>
#include <ppl/core/tensor_json.hpp>

namespace ppl::constraints {
namespace {

using Kind = Constraint::Kind;

struct Entry {
  Kind kind;
  const char* name;
  int64_t event_rank;
  int bounds;  ///< 0: none, 1: lower, 2: lower and upper, 3: upper only (multinomial)
};
constexpr std::array<Entry, 16> kTable = {{
    {Kind::real, "real", 0, 0},
    {Kind::boolean, "boolean", 0, 0},
    {Kind::unit_interval, "unit_interval", 0, 0},
    {Kind::positive, "positive", 0, 0},
    {Kind::nonnegative, "nonnegative", 0, 0},
    {Kind::greater_than, "greater_than", 0, 1},
    {Kind::interval, "interval", 0, 2},
    {Kind::integer_interval, "integer_interval", 0, 2},
    {Kind::nonnegative_integer, "nonnegative_integer", 0, 0},
    {Kind::simplex, "simplex", 1, 0},
    {Kind::lower_cholesky, "lower_cholesky", 2, 0},
    {Kind::corr_cholesky, "corr_cholesky", 2, 0},
    {Kind::positive_definite, "positive_definite", 2, 0},
    {Kind::ordered_vector, "ordered_vector", 1, 0},
    {Kind::one_hot, "one_hot", 1, 0},
    {Kind::multinomial, "multinomial", 1, 3},
}};

const Entry& entry(Kind k) {
  for (const auto& e : kTable)
    if (e.kind == k) return e;
  return kTable[0];
}

torch::Tensor bound_tensor(double v) { return torch::scalar_tensor(v, torch::kDouble); }

/// A bound for messages: the number, or "the bound" for a tensor of several.
std::string bound_string(const torch::Tensor& t) {
  if (!t.defined()) return "?";
  if (t.numel() == 1) return fmt::format("{:g}", t.detach().cpu().to(torch::kDouble).item<double>());
  return "its bound";
}

nlohmann::json bound_json(const torch::Tensor& t) {
  if (t.numel() == 1) return t.detach().cpu().to(torch::kDouble).item<double>();
  return tensor_to_json(t);
}
torch::Tensor bound_from_json(const nlohmann::json& j) {
  return j.is_number() ? bound_tensor(j.get<double>()) : tensor_from_json(j);
}

/// Tolerance of the sums and norms of the vector constraints: a few ulps per
/// element, at least 1e-6.
double sum_tolerance(const torch::Tensor& v, int64_t n) {
  const double eps = v.scalar_type() == torch::kDouble ? std::numeric_limits<double>::epsilon()
                                                       : std::numeric_limits<float>::epsilon();
  return std::max(1e-6, 8.0 * static_cast<double>(n) * eps);
}

torch::Tensor is_integer(const torch::Tensor& v) {
  if (!torch::isFloatingType(v.scalar_type())) return torch::ones_like(v, v.options().dtype(torch::kBool));
  return v == torch::floor(v);
}

torch::Tensor all_last(const torch::Tensor& ok, int64_t dims) {
  auto out = ok;
  for (int64_t i = 0; i < dims; ++i) out = out.all(-1);
  return out;
}

/// Lower triangular with a positive, finite diagonal.
torch::Tensor lower_triangular_ok(const torch::Tensor& v) {
  const auto finite = all_last(torch::isfinite(v), 2);
  const auto upper_zero = all_last(v.triu(1) == 0, 2);
  const auto diag_positive = (v.diagonal(0, -2, -1) > 0).all(-1);
  return finite.logical_and(upper_zero).logical_and(diag_positive);
}

}  // namespace

Constraint::Constraint(Kind kind, torch::Tensor lower, torch::Tensor upper)
    : kind_(kind), lower_(std::move(lower)), upper_(std::move(upper)) {
  if (lower_.defined()) lower_ = lower_.detach();
  if (upper_.defined()) upper_ = upper_.detach();
}

Constraint::Constraint(ParamConstraint c) {
  switch (c) {
    case ParamConstraint::real: kind_ = Kind::real; break;
    case ParamConstraint::positive: kind_ = Kind::positive; break;
    case ParamConstraint::unit_interval: kind_ = Kind::unit_interval; break;
  }
}

std::string Constraint::name() const { return entry(kind_).name; }

std::string Constraint::to_string() const {
  switch (entry(kind_).bounds) {
    case 1: return fmt::format("{}({})", name(), bound_string(lower_));
    case 2: return fmt::format("{}({}, {})", name(), bound_string(lower_), bound_string(upper_));
    case 3: return fmt::format("{}({})", name(), bound_string(upper_));
    default: return name();
  }
}

std::string Constraint::describe() const {
  switch (kind_) {
    case Kind::real: return "finite";
    case Kind::boolean: return "0 or 1";
    case Kind::unit_interval: return "in [0, 1]";
    case Kind::positive: return "positive and finite";
    case Kind::nonnegative: return "nonnegative and finite";
    case Kind::greater_than: return fmt::format("greater than {} and finite", bound_string(lower_));
    case Kind::interval: return fmt::format("in [{}, {}]", bound_string(lower_), bound_string(upper_));
    case Kind::integer_interval:
      return fmt::format("an integer in [{}, {}]", bound_string(lower_), bound_string(upper_));
    case Kind::nonnegative_integer: return "a nonnegative integer";
    case Kind::simplex: return "in the simplex (nonnegative, summing to 1)";
    case Kind::lower_cholesky: return "lower triangular with a positive diagonal";
    case Kind::corr_cholesky:
      return "the Cholesky factor of a correlation matrix (lower triangular, positive diagonal, rows of unit norm)";
    case Kind::positive_definite: return "symmetric positive definite";
    case Kind::ordered_vector: return "strictly increasing";
    case Kind::one_hot: return "one-hot (zeros and a single one)";
    case Kind::multinomial: return fmt::format("nonnegative integers summing to {}", bound_string(upper_));
  }
  return "?";
}

int64_t Constraint::event_rank() const { return entry(kind_).event_rank; }

bool Constraint::is_discrete() const {
  switch (kind_) {
    case Kind::boolean:
    case Kind::integer_interval:
    case Kind::nonnegative_integer:
    case Kind::one_hot:
    case Kind::multinomial: return true;
    default: return false;
  }
}

torch::Tensor Constraint::check(const torch::Tensor& value) const {
  const auto v = value.detach();
  const auto finite = torch::isfinite(v);
  switch (kind_) {
    case Kind::real: return finite;
    case Kind::boolean: return (v == 0).logical_or(v == 1);
    case Kind::unit_interval: return (v >= 0).logical_and(v <= 1);
    case Kind::positive: return (v > 0).logical_and(finite);
    case Kind::nonnegative: return (v >= 0).logical_and(finite);
    case Kind::greater_than: return (v > lower_).logical_and(finite);
    case Kind::interval: return (v >= lower_).logical_and(v <= upper_);
    case Kind::integer_interval: return is_integer(v).logical_and(v >= lower_).logical_and(v <= upper_);
    case Kind::nonnegative_integer: return is_integer(v).logical_and(v >= 0).logical_and(finite);
    case Kind::simplex: {
      const auto sum_ok = (v.sum(-1) - 1).abs() <= sum_tolerance(v, v.size(-1));
      return (v >= 0).all(-1).logical_and(sum_ok);
    }
    case Kind::lower_cholesky: return lower_triangular_ok(v);
    case Kind::corr_cholesky: {
      const auto norm_ok = ((v * v).sum(-1) - 1).abs() <= sum_tolerance(v, v.size(-1));
      return lower_triangular_ok(v).logical_and(norm_ok.all(-1));
    }
    case Kind::positive_definite: {
      const auto scale = v.abs().amax({-2, -1}, true).clamp_min(1.0);
      const auto symmetric = all_last((v - v.transpose(-1, -2)).abs() <= scale * sum_tolerance(v, v.size(-1)), 2);
      const auto info = std::get<1>(torch::linalg_cholesky_ex(v.nan_to_num(0.0, 0.0, 0.0)));
      return all_last(finite, 2).logical_and(symmetric).logical_and(info == 0);
    }
    case Kind::ordered_vector: {
      const auto n = v.size(-1);
      const auto increasing = (v.narrow(-1, 1, n - 1) > v.narrow(-1, 0, n - 1)).all(-1);
      return finite.all(-1).logical_and(increasing);
    }
    case Kind::one_hot: return ((v == 0).logical_or(v == 1)).all(-1).logical_and(v.sum(-1) == 1);
    case Kind::multinomial: {
      const auto counts = is_integer(v).logical_and(v >= 0).logical_and(finite).all(-1);
      return counts.logical_and(v.sum(-1) == upper_);
    }
  }
  return finite;
}

nlohmann::json Constraint::to_json() const {
  const auto& e = entry(kind_);
  if (e.bounds == 0) return e.name;
  nlohmann::json j{{"name", e.name}};
  if (e.bounds == 1 || e.bounds == 2) j["lower"] = bound_json(lower_);
  if (e.bounds >= 2) j["upper"] = bound_json(upper_);
  return j;
}

Constraint Constraint::from_json(const nlohmann::json& j) {
  const std::string name = j.is_string() ? j.get<std::string>()
                           : j.is_object() && j.contains("name") && j.at("name").is_string()
                               ? j.at("name").get<std::string>()
                               : j.dump();
  for (const auto& e : kTable) {
    if (name != e.name) continue;
    if (e.bounds == 0) return Constraint(e.kind);
    if (!j.is_object())
      throw Error(fmt::format("constraint \"{}\" needs its bounds: {{\"name\": \"{}\", ...}}", name, name));
    auto get = [&](const char* key) {
      if (!j.contains(key)) throw Error(fmt::format("constraint \"{}\" has no \"{}\"", name, key));
      return bound_from_json(j.at(key));
    };
    if (e.bounds == 1) return Constraint(e.kind, get("lower"));
    if (e.bounds == 3) return Constraint(e.kind, {}, get("upper"));
    return Constraint(e.kind, get("lower"), get("upper"));
  }
  std::vector<std::string> names;
  for (const auto& e : kTable) names.emplace_back(e.name);
  throw Error(fmt::format("unknown constraint \"{}\" (expected one of {})", name, fmt::join(names, ", ")));
}

bool Constraint::operator==(const Constraint& other) const {
  if (kind_ != other.kind_) return false;
  auto same = [](const torch::Tensor& a, const torch::Tensor& b) {
    if (a.defined() != b.defined()) return false;
    if (!a.defined()) return true;
    const auto x = a.detach().cpu().to(torch::kDouble), y = b.detach().cpu().to(torch::kDouble);
    if (x.numel() == 1 && y.numel() == 1) return x.item<double>() == y.item<double>();
    return x.sizes() == y.sizes() && torch::equal(x, y);
  };
  return same(lower_, other.lower_) && same(upper_, other.upper_);
}

Constraint greater_than(double lower) { return Constraint(Constraint::Kind::greater_than, bound_tensor(lower)); }
Constraint greater_than(torch::Tensor lower) { return Constraint(Constraint::Kind::greater_than, std::move(lower)); }
Constraint interval(double lower, double upper) {
  return Constraint(Constraint::Kind::interval, bound_tensor(lower), bound_tensor(upper));
}
Constraint interval(torch::Tensor lower, torch::Tensor upper) {
  return Constraint(Constraint::Kind::interval, std::move(lower), std::move(upper));
}
Constraint integer_interval(double lower, double upper) {
  return Constraint(Constraint::Kind::integer_interval, bound_tensor(lower), bound_tensor(upper));
}
Constraint integer_interval(torch::Tensor lower, torch::Tensor upper) {
  return Constraint(Constraint::Kind::integer_interval, std::move(lower), std::move(upper));
}
Constraint multinomial(torch::Tensor total_count) {
  return Constraint(Constraint::Kind::multinomial, {}, std::move(total_count));
}

}  // namespace ppl::constraints
