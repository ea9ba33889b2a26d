// The transforms of ppl::transforms, their JSON form and biject_to.
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/tensor_json.hpp>
#include <ppl/transforms.hpp>

#include "numerics.hpp"

namespace ppl::transforms {
namespace {

constexpr double kLog2 = 0.69314718055994530942;

using numerics::eps_of;
using numerics::tiny_of;

/// Sums the trailing dimensions of `t` until it has `rank` dimensions.
torch::Tensor sum_to_rank(const torch::Tensor& t, int64_t rank) { return numerics::sum_rightmost(t, t.dim() - rank); }

/// `x` has at least `dims` dimensions (ShapeError naming the transform).
void need_dims(std::string_view who, std::string_view arg, const torch::Tensor& x, int64_t dims) {
  check::min_dim({who}, arg, x, dims);
}

/// Row-major positions (i * d + j) of the entries of a d x d lower triangle
/// with j <= i + offset (offset 0 with the diagonal, -1 without), row by row.
torch::Tensor tril_positions(int64_t d, int64_t offset, const torch::Device& device) {
  const auto ij = torch::tril_indices(d, d, offset, torch::TensorOptions().dtype(torch::kLong).device(device));
  return ij[0] * d + ij[1];
}

/// The side D of the matrices whose lower triangle (offset 0) or strict lower
/// triangle (offset -1) has `n` entries; ShapeError when there is none.
int64_t side_for(std::string_view who, int64_t n, int64_t offset) {
  const int64_t base = offset == 0 ? 0 : 1;  // n = D(D+1)/2 or D(D-1)/2
  const auto d = static_cast<int64_t>(std::llround((std::sqrt(8.0 * static_cast<double>(n) + 1.0) - 1.0) / 2.0)) + base;
  if (d * (d + 1 - 2 * base) / 2 != n)
    throw ShapeError(fmt::format("{}: x has last dimension {}, but must be D(D{}1)/2 for some D (1, 3, 6, 10, ...)",
                                 who, n, base ? "-" : "+"));
  return d;
}

/// [..., n] -> [..., D, D] for the vectors filling a lower triangle (by `offset`).
std::vector<int64_t> matrix_shape(std::string_view who, c10::IntArrayRef shape, int64_t offset) {
  auto s = shape.vec();
  const auto d = side_for(who, s.back(), offset);
  s.back() = d;
  s.push_back(d);
  return s;
}
/// [..., D, D] -> [..., n], n the size of the lower triangle (by `offset`).
std::vector<int64_t> vector_shape(c10::IntArrayRef shape, int64_t offset) {
  auto s = shape.vec();
  const auto d = s.back();
  s.pop_back();
  s.back() = offset == 0 ? d * (d + 1) / 2 : d * (d - 1) / 2;
  return s;
}

/// The matrix [..., d, d] whose lower triangle (by `offset`) holds the vector
/// v [..., n] row by row, zeros elsewhere (differentiable in v).
torch::Tensor fill_tril(const torch::Tensor& v, int64_t d, int64_t offset) {
  auto sizes = v.sizes().vec();
  sizes.back() = d * d;
  auto flat = torch::zeros(sizes, v.options()).index_copy(-1, tril_positions(d, offset, v.device()), v);
  sizes.back() = d;
  sizes.push_back(d);
  return flat.reshape(sizes);
}

/// The lower triangle (by `offset`) of m [..., d, d] as a vector, row by row.
torch::Tensor take_tril(const torch::Tensor& m, int64_t offset) {
  const auto d = m.size(-1);
  auto sizes = m.sizes().vec();
  sizes.pop_back();
  sizes.back() = d * d;
  return m.reshape(sizes).index_select(-1, tril_positions(d, offset, m.device()));
}

/// Whether each entry of the lower-triangle vector (offset 0) is on the diagonal.
torch::Tensor diagonal_entries(int64_t d, const torch::Device& device) {
  const auto ij = torch::tril_indices(d, d, 0, torch::TensorOptions().dtype(torch::kLong).device(device));
  return ij[0] == ij[1];
}

/// Exclusive cumulative product along the last dimension: [1, a0, a0 a1, ...].
torch::Tensor exclusive_cumprod(const torch::Tensor& a) {
  const auto n = a.size(-1);
  auto ones = torch::ones_like(a.narrow(-1, 0, 1));
  return torch::cat({ones, a.narrow(-1, 0, n - 1).cumprod(-1)}, -1);
}

/// Exclusive cumulative sum along the last dimension: [0, a0, a0 + a1, ...].
torch::Tensor exclusive_cumsum(const torch::Tensor& a) {
  const auto n = a.size(-1);
  return torch::cat({torch::zeros_like(a.narrow(-1, 0, 1)), a.narrow(-1, 0, n - 1).cumsum(-1)}, -1);
}

/// log(1 - tanh(x)^2), stable for large |x|.
torch::Tensor log_tanh_derivative(const torch::Tensor& x) {
  return 2.0 * (kLog2 - x - torch::softplus(-2.0 * x));
}

/// log(K - 1 - k) for k = 0 .. K - 2, with K - 1 the size of x's last dimension.
torch::Tensor stick_offsets(const torch::Tensor& x) {
  const auto k1 = x.size(-1);
  return torch::arange(k1, 0, -1, x.options().requires_grad(false)).log();
}

}  // namespace

nlohmann::json Transform::to_json() const { return {{"type", std::string(name())}}; }

// ------------------------------------------------------------------ elementwise

torch::Tensor Exp::forward(const torch::Tensor& x) const { return x.exp(); }
torch::Tensor Exp::inverse(const torch::Tensor& y) const { return y.log(); }
torch::Tensor Exp::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor&) const { return x; }

torch::Tensor Sigmoid::forward(const torch::Tensor& x) const {
  return torch::sigmoid(x).clamp(tiny_of(x), 1.0 - eps_of(x) / 2);
}
torch::Tensor Sigmoid::inverse(const torch::Tensor& y) const { return y.log() - (-y).log1p(); }
torch::Tensor Sigmoid::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor&) const {
  return -torch::softplus(-x) - torch::softplus(x);
}

torch::Tensor Tanh::forward(const torch::Tensor& x) const { return x.tanh(); }
torch::Tensor Tanh::inverse(const torch::Tensor& y) const { return y.atanh(); }
torch::Tensor Tanh::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor&) const {
  return log_tanh_derivative(x);
}

torch::Tensor Softplus::forward(const torch::Tensor& x) const { return torch::softplus(x); }
torch::Tensor Softplus::inverse(const torch::Tensor& y) const { return y + torch::log(-torch::expm1(-y)); }
torch::Tensor Softplus::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor&) const {
  return -torch::softplus(-x);
}

Affine::Affine(double loc, double scale, int64_t event_rank)
    : Affine(torch::scalar_tensor(loc, torch::kDouble), torch::scalar_tensor(scale, torch::kDouble), event_rank) {}
Affine::Affine(torch::Tensor loc, torch::Tensor scale, int64_t event_rank)
    : loc_(std::move(loc)), scale_(std::move(scale)), event_rank_(event_rank) {
  check::defined({"Affine"}, "loc", loc_);
  check::defined({"Affine"}, "scale", scale_);
  if (event_rank_ < 0)
    throw ArgumentError(fmt::format("Affine: event_rank is {}, but must be nonnegative", event_rank_));
}
// The parameters take the values' floating dtype (a double bound with float values gives floats).
torch::Tensor Affine::forward(const torch::Tensor& x) const {
  return loc_.to(x.scalar_type()) + scale_.to(x.scalar_type()) * x;
}
torch::Tensor Affine::inverse(const torch::Tensor& y) const {
  return (y - loc_.to(y.scalar_type())) / scale_.to(y.scalar_type());
}
torch::Tensor Affine::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor&) const {
  const auto term = scale_.abs().log().to(x.scalar_type()).expand(at::infer_size(x.sizes(), scale_.sizes()));
  return sum_to_rank(term, x.dim() - event_rank_);
}
nlohmann::json Affine::to_json() const {
  return {{"type", "Affine"}, {"loc", tensor_to_json(loc_)}, {"scale", tensor_to_json(scale_)},
          {"event_rank", event_rank_}};
}

// ------------------------------------------------------------------ on vectors and matrices

std::vector<int64_t> StickBreaking::forward_shape(c10::IntArrayRef shape) const {
  auto s = shape.vec();
  if (!s.empty()) s.back() += 1;
  return s;
}
std::vector<int64_t> StickBreaking::inverse_shape(c10::IntArrayRef shape) const {
  auto s = shape.vec();
  if (!s.empty()) s.back() -= 1;
  return s;
}
torch::Tensor StickBreaking::forward(const torch::Tensor& x) const {
  need_dims("StickBreaking", "x", x, 1);
  const auto z = torch::sigmoid(x - stick_offsets(x)).clamp(tiny_of(x), 1.0 - eps_of(x) / 2);
  const auto rest = (1 - z).cumprod(-1);  // the stick left after each break
  const auto n = x.size(-1);
  const auto before = torch::cat({torch::ones_like(z.narrow(-1, 0, 1)), rest.narrow(-1, 0, n - 1)}, -1);
  return torch::cat({z * before, rest.narrow(-1, n - 1, 1)}, -1);
}
torch::Tensor StickBreaking::inverse(const torch::Tensor& y) const {
  need_dims("StickBreaking", "y", y, 1);
  const auto n = y.size(-1) - 1;
  const auto head = y.narrow(-1, 0, n);
  const auto left = (1 - head.cumsum(-1)).clamp_min(tiny_of(y));  // the stick left after each break
  return head.log() - left.log() + stick_offsets(head);
}
torch::Tensor StickBreaking::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor&) const {
  const auto xs = x - stick_offsets(x);
  const auto log_rest = torch::log_sigmoid(-xs);  // log(1 - z)
  return (torch::log_sigmoid(xs) + log_rest + exclusive_cumsum(log_rest)).sum(-1);
}

std::vector<int64_t> LowerCholesky::forward_shape(c10::IntArrayRef shape) const {
  return matrix_shape("LowerCholesky", shape, 0);
}
std::vector<int64_t> LowerCholesky::inverse_shape(c10::IntArrayRef shape) const { return vector_shape(shape, 0); }
torch::Tensor LowerCholesky::forward(const torch::Tensor& x) const {
  need_dims("LowerCholesky", "x", x, 1);
  const auto d = side_for("LowerCholesky", x.size(-1), 0);
  const auto diag = diagonal_entries(d, x.device());
  return fill_tril(torch::where(diag, x.exp(), x), d, 0);
}
torch::Tensor LowerCholesky::inverse(const torch::Tensor& y) const {
  need_dims("LowerCholesky", "y", y, 2);
  const auto v = take_tril(y, 0);
  return torch::where(diagonal_entries(y.size(-1), y.device()), v.log(), v);
}
torch::Tensor LowerCholesky::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor&) const {
  const auto d = side_for("LowerCholesky", x.size(-1), 0);
  return torch::where(diagonal_entries(d, x.device()), x, torch::zeros_like(x)).sum(-1);
}

std::vector<int64_t> CorrCholesky::forward_shape(c10::IntArrayRef shape) const {
  return matrix_shape("CorrCholesky", shape, -1);
}
std::vector<int64_t> CorrCholesky::inverse_shape(c10::IntArrayRef shape) const { return vector_shape(shape, -1); }
namespace {
/// tanh(x) kept one float step inside (-1, 1).
torch::Tensor partial_correlations(const torch::Tensor& x) {
  const double e = eps_of(x);
  return x.tanh().clamp(-1 + e, 1 - e);
}
/// 1 - sum_{k<j} L_ik^2 for every entry of L [..., D, D].
torch::Tensor remaining_norm(const torch::Tensor& l) {
  return (1 - exclusive_cumsum(l * l)).clamp_min(tiny_of(l));
}
}  // namespace
torch::Tensor CorrCholesky::forward(const torch::Tensor& x) const {
  need_dims("CorrCholesky", "x", x, 1);
  const auto d = side_for("CorrCholesky", x.size(-1), -1);
  const auto z = fill_tril(partial_correlations(x), d, -1);
  // 1 - sum_{k<j} L_ik^2 = prod_{k<j} (1 - z_ik^2): breaking each row's unit stick.
  const auto left = exclusive_cumprod(1 - z * z).sqrt();
  return z * left + torch::diag_embed(left.diagonal(0, -2, -1));
}
torch::Tensor CorrCholesky::inverse(const torch::Tensor& y) const {
  need_dims("CorrCholesky", "y", y, 2);
  const double e = eps_of(y);
  const auto z = (y / remaining_norm(y).sqrt()).clamp(-1 + e, 1 - e);
  return take_tril(z, -1).atanh();
}
torch::Tensor CorrCholesky::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const {
  const auto stick = 0.5 * take_tril(remaining_norm(y).log(), -1);
  return (stick + log_tanh_derivative(x)).sum(-1);
}

torch::Tensor CholeskyOuter::forward(const torch::Tensor& x) const {
  need_dims("CholeskyOuter", "x", x, 2);
  return torch::matmul(x, x.transpose(-1, -2));
}
torch::Tensor CholeskyOuter::inverse(const torch::Tensor& y) const {
  need_dims("CholeskyOuter", "y", y, 2);
  return torch::linalg_cholesky(y);
}
torch::Tensor CholeskyOuter::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor&) const {
  const auto d = x.size(-1);
  const auto powers = torch::arange(d, 0, -1, x.options().requires_grad(false));
  return static_cast<double>(d) * kLog2 + (powers * x.diagonal(0, -2, -1).log()).sum(-1);
}

torch::Tensor Ordered::forward(const torch::Tensor& x) const {
  need_dims("Ordered", "x", x, 1);
  const auto n = x.size(-1);
  const auto first = x.narrow(-1, 0, 1);
  return torch::cat({first, first + x.narrow(-1, 1, n - 1).exp().cumsum(-1)}, -1);
}
torch::Tensor Ordered::inverse(const torch::Tensor& y) const {
  need_dims("Ordered", "y", y, 1);
  const auto n = y.size(-1);
  return torch::cat({y.narrow(-1, 0, 1), (y.narrow(-1, 1, n - 1) - y.narrow(-1, 0, n - 1)).log()}, -1);
}
torch::Tensor Ordered::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor&) const {
  return x.narrow(-1, 1, x.size(-1) - 1).sum(-1);
}

// ------------------------------------------------------------------ Compose

Compose::Compose(std::vector<TransformArg> parts) {
  for (auto& p : parts) {
    if (!p.ptr) throw ArgumentError("Compose: a part is a null transform");
    parts_.push_back(std::move(p.ptr));
  }
  if (parts_.empty()) return;
  // The ranks one application of the whole spans, from the parts' own.
  int64_t rank = parts_.back()->codomain_event_rank();
  for (auto it = parts_.rbegin(); it != parts_.rend(); ++it)
    rank = std::max(rank + (*it)->domain_event_rank() - (*it)->codomain_event_rank(), (*it)->domain_event_rank());
  domain_rank_ = rank;
  rank = parts_.front()->domain_event_rank();
  for (const auto& p : parts_)
    rank = std::max(rank + p->codomain_event_rank() - p->domain_event_rank(), p->codomain_event_rank());
  codomain_rank_ = rank;
}
torch::Tensor Compose::forward(const torch::Tensor& x) const {
  auto y = x;
  for (const auto& p : parts_) y = p->forward(y);
  return y;
}
torch::Tensor Compose::inverse(const torch::Tensor& y) const {
  auto x = y;
  for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) x = (*it)->inverse(x);
  return x;
}
torch::Tensor Compose::log_abs_det_jacobian(const torch::Tensor& x, const torch::Tensor& y) const {
  const auto batch_rank = x.dim() - domain_rank_;
  if (parts_.empty()) return torch::zeros_like(x);
  torch::Tensor total;
  auto current = x;
  for (size_t i = 0; i < parts_.size(); ++i) {
    const auto next = i + 1 == parts_.size() ? y : parts_[i]->forward(current);
    auto term = sum_to_rank(parts_[i]->log_abs_det_jacobian(current, next), batch_rank);
    total = total.defined() ? total + term : term;
    current = next;
  }
  return total;
}
constraints::Constraint Compose::codomain() const {
  return parts_.empty() ? constraints::real : parts_.back()->codomain();
}
std::vector<int64_t> Compose::forward_shape(c10::IntArrayRef shape) const {
  auto s = shape.vec();
  for (const auto& p : parts_) s = p->forward_shape(s);
  return s;
}
std::vector<int64_t> Compose::inverse_shape(c10::IntArrayRef shape) const {
  auto s = shape.vec();
  for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) s = (*it)->inverse_shape(s);
  return s;
}
nlohmann::json Compose::to_json() const {
  auto parts = nlohmann::json::array();
  for (const auto& p : parts_) parts.push_back(p->to_json());
  return {{"type", "Compose"}, {"parts", std::move(parts)}};
}

// ------------------------------------------------------------------ JSON and biject_to

std::shared_ptr<const Transform> from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j.at("type").is_string())
    throw Error("transform JSON: expected an object with a \"type\"");
  const auto type = j.at("type").get<std::string>();
  auto get = [&](const char* key) {
    if (!j.contains(key)) throw Error(fmt::format("transform JSON: {} has no \"{}\"", type, key));
    return tensor_from_json(j.at(key));
  };
  if (type == "Exp") return std::make_shared<Exp>();
  if (type == "Sigmoid") return std::make_shared<Sigmoid>();
  if (type == "Tanh") return std::make_shared<Tanh>();
  if (type == "Softplus") return std::make_shared<Softplus>();
  if (type == "StickBreaking") return std::make_shared<StickBreaking>();
  if (type == "LowerCholesky") return std::make_shared<LowerCholesky>();
  if (type == "CorrCholesky") return std::make_shared<CorrCholesky>();
  if (type == "CholeskyOuter") return std::make_shared<CholeskyOuter>();
  if (type == "Ordered") return std::make_shared<Ordered>();
  if (type == "Affine") return std::make_shared<Affine>(get("loc"), get("scale"), j.contains("event_rank") ? json_whole_number(j.at("event_rank"), "transform JSON: Affine \"event_rank\"") : 0);
  if (type == "Compose") {
    std::vector<TransformArg> parts;
    for (const auto& p : j.value("parts", nlohmann::json::array())) parts.emplace_back(from_json(p));
    return std::make_shared<Compose>(std::move(parts));
  }
  throw Error(fmt::format("transform JSON: unknown transform type \"{}\"", type));
}

std::shared_ptr<const Transform> biject_to(const constraints::Constraint& c) {
  using Kind = constraints::Constraint::Kind;
  switch (c.kind()) {
    case Kind::real: return std::make_shared<Compose>();
    case Kind::positive:
    case Kind::nonnegative: return std::make_shared<Exp>();
    case Kind::greater_than:
      return std::make_shared<Compose>(std::vector<TransformArg>{Exp(), Affine(c.lower(), torch::ones_like(c.lower()))});
    case Kind::unit_interval: return std::make_shared<Sigmoid>();
    case Kind::interval:
      return std::make_shared<Compose>(std::vector<TransformArg>{Sigmoid(), Affine(c.lower(), c.upper() - c.lower())});
    case Kind::simplex: return std::make_shared<StickBreaking>();
    case Kind::lower_cholesky: return std::make_shared<LowerCholesky>();
    case Kind::corr_cholesky: return std::make_shared<CorrCholesky>();
    case Kind::positive_definite:
      return std::make_shared<Compose>(std::vector<TransformArg>{LowerCholesky(), CholeskyOuter()});
    case Kind::ordered_vector: return std::make_shared<Ordered>();
    default: break;
  }
  throw ArgumentError(fmt::format("biject_to: {} is a discrete constraint; no bijection from the reals reaches it",
                                  c.to_string()));
}

}  // namespace ppl::transforms
