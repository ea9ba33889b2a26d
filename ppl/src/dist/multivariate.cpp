// The multivariate families: MultivariateNormal, LowRankMultivariateNormal,
// Dirichlet and LKJCholesky.
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/random.hpp>
#include <ppl/dist/dirichlet.hpp>
#include <ppl/dist/lkj_cholesky.hpp>
#include <ppl/dist/low_rank_multivariate_normal.hpp>
#include <ppl/dist/multivariate_normal.hpp>

#include "detail.hpp"

namespace ppl::dist {

using namespace detail;

namespace {
/// The tensor of a parameter that must have at least `dims` dimensions
/// (numbers have none): ShapeError naming the family, the argument and the
/// layout otherwise.
const torch::Tensor& need_dims(const char* who, const char* name, const Arg& a, int64_t dims, const char* layout) {
  const int64_t have = a.tensor.defined() ? a.tensor.dim() : 0;
  if (have < dims)
    throw ShapeError(fmt::format("{}: {} has shape {}, but must have at least {} dimension{} ({})", who, name,
                                 a.tensor.defined() ? shape_string(a.tensor.sizes()) : "[] (a number)", dims,
                                 dims == 1 ? "" : "s", layout));
  return a.tensor;
}
/// -|z|^2 / 2 - D log sqrt(2 pi) - log det: the normal log density after whitening.
torch::Tensor whitened_log_density(const torch::Tensor& z, const torch::Tensor& log_det, int64_t d) {
  return -0.5 * z.pow(2).sum(-1) - static_cast<double>(d) * kLogSqrt2Pi - log_det;
}
}  // namespace

// ------------------------------------------------------------------ MultivariateNormal

MultivariateNormal::MultivariateNormal(Arg loc, MultivariateNormalScale scale) {
  std::vector<std::string> given;
  torch::Tensor matrix;
  for (auto [name, t] : {std::pair<const char*, torch::Tensor>{"scale_tril", scale.scale_tril},
                         {"covariance", scale.covariance},
                         {"precision", scale.precision}}) {
    if (!t.defined()) continue;
    given.emplace_back(name);
    given_ = name;
    matrix = t;
  }
  if (given.size() != 1)
    throw ArgumentError(fmt::format("MultivariateNormal: give exactly one of scale_tril, covariance or precision "
                                    "(given: {})",
                                    given.empty() ? std::string("none") : fmt::format("{}", fmt::join(given, ", "))));
  const auto& l = need_dims("MultivariateNormal", "loc", loc, 1, "[..., D]");
  const auto d = l.size(-1);
  if (matrix.dim() < 2 || matrix.size(-1) != d || matrix.size(-2) != d)
    throw ShapeError(fmt::format("MultivariateNormal: {} has shape {}, but must be [..., {}, {}] (loc has shape {})",
                                 given_, shape_string(matrix.sizes()), d, d, shape_string(l.sizes())));
  set_params(broadcast_args("MultivariateNormal", {std::move(loc), matrix}, {1, 2}));
}
Constraint MultivariateNormal::support() const { return constraints::real; }
torch::Tensor MultivariateNormal::scale_tril() const {
  const auto& m = param(1);
  const std::string_view given = given_;
  if (given == "scale_tril") return m.tril();
  if (given == "covariance") return std::get<0>(torch::linalg_cholesky_ex(m));
  // The covariance is P^-1, computed from P's own factor.
  return std::get<0>(torch::linalg_cholesky_ex(torch::cholesky_inverse(std::get<0>(torch::linalg_cholesky_ex(m)))));
}
torch::Tensor MultivariateNormal::covariance() const {
  if (std::string_view(given_) == "covariance") return param(1);
  const auto l = scale_tril();
  return torch::matmul(l, l.transpose(-1, -2));
}
torch::Tensor MultivariateNormal::precision() const {
  if (std::string_view(given_) == "precision") return param(1);
  return torch::cholesky_inverse(scale_tril());
}
torch::Tensor MultivariateNormal::mean() const { return loc(); }
torch::Tensor MultivariateNormal::variance() const { return scale_tril().pow(2).sum(-1); }
torch::Tensor MultivariateNormal::draw(c10::IntArrayRef sizes) const {
  const auto eps = random::standard_normal(sizes, options().requires_grad(false));
  return loc() + torch::matmul(scale_tril(), eps.unsqueeze(-1)).squeeze(-1);
}
torch::Tensor MultivariateNormal::log_density(const torch::Tensor& v) const {
  const auto l = scale_tril();
  const auto z = solve_lower(l, (v - loc()).unsqueeze(-1)).squeeze(-1);
  return whitened_log_density(z, l.diagonal(0, -2, -1).log().sum(-1), dim());
}
void MultivariateNormal::check_params(const CheckContext& ctx) const {
  check::finite(ctx, "loc", loc());
  check::satisfies(ctx, given_, param(1),
                   std::string_view(given_) == "scale_tril" ? constraints::lower_cholesky
                                                            : constraints::positive_definite);
}

// ------------------------------------------------------------------ LowRankMultivariateNormal
//
// With A = diag(d) and C = I + W^T A^-1 W (R x R):
//   (W W^T + A)^-1 = A^-1 - A^-1 W C^-1 W^T A^-1       (Woodbury)
//   det(W W^T + A) = det(C) det(A)                      (matrix determinant lemma)

LowRankMultivariateNormal::LowRankMultivariateNormal(Arg loc, Arg cov_factor, Arg cov_diag) {
  constexpr const char* kWho = "LowRankMultivariateNormal";
  const auto d = need_dims(kWho, "loc", loc, 1, "[..., D]").size(-1);
  const auto& w = need_dims(kWho, "cov_factor", cov_factor, 2, "[..., D, R]");
  const auto& diag = need_dims(kWho, "cov_diag", cov_diag, 1, "[..., D]");
  if (w.size(-2) != d || diag.size(-1) != d)
    throw ShapeError(fmt::format("{}: loc has shape {}, cov_factor {} and cov_diag {}, but they must be [..., D], "
                                 "[..., D, R] and [..., D] with one D",
                                 kWho, shape_string(loc.tensor.sizes()), shape_string(w.sizes()),
                                 shape_string(diag.sizes())));
  set_params(broadcast_args(kWho, {std::move(loc), std::move(cov_factor), std::move(cov_diag)}, {1, 2, 1}));
}
Constraint LowRankMultivariateNormal::support() const { return constraints::real; }
torch::Tensor LowRankMultivariateNormal::covariance() const {
  return torch::matmul(cov_factor(), cov_factor().transpose(-1, -2)) + torch::diag_embed(cov_diag());
}
torch::Tensor LowRankMultivariateNormal::mean() const { return loc(); }
torch::Tensor LowRankMultivariateNormal::variance() const { return cov_factor().pow(2).sum(-1) + cov_diag(); }
torch::Tensor LowRankMultivariateNormal::draw(c10::IntArrayRef sizes) const {
  const auto opts = options().requires_grad(false);
  auto low = sizes.vec();
  low.back() = rank();
  const auto e1 = random::standard_normal(low, opts);
  const auto e2 = random::standard_normal(sizes, opts);
  return loc() + torch::matmul(cov_factor(), e1.unsqueeze(-1)).squeeze(-1) + cov_diag().sqrt() * e2;
}
torch::Tensor LowRankMultivariateNormal::log_density(const torch::Tensor& v) const {
  const auto& w = cov_factor();
  const auto inv_d = cov_diag().reciprocal();
  const auto diff = v - loc();
  const auto wt_inv_d = w.transpose(-1, -2) * inv_d.unsqueeze(-2);  // W^T A^-1, [..., R, D]
  const auto capacitance = torch::eye(rank(), w.options()) + torch::matmul(wt_inv_d, w);
  const auto lc = std::get<0>(torch::linalg_cholesky_ex(capacitance));
  const auto projected = torch::matmul(wt_inv_d, diff.unsqueeze(-1));  // W^T A^-1 (x - loc), [..., R, 1]
  const auto correction = solve_lower(lc, projected).squeeze(-1).pow(2).sum(-1);
  const auto maha = (diff.pow(2) * inv_d).sum(-1) - correction;
  const auto log_det = 2 * lc.diagonal(0, -2, -1).log().sum(-1) + cov_diag().log().sum(-1);
  return -0.5 * (maha + log_det) - static_cast<double>(dim()) * kLogSqrt2Pi;
}
void LowRankMultivariateNormal::check_params(const CheckContext& ctx) const {
  check::finite(ctx, "loc", loc());
  check::finite(ctx, "cov_factor", cov_factor());
  positive_finite(ctx, "cov_diag", cov_diag());
}

// ------------------------------------------------------------------ Dirichlet

Dirichlet::Dirichlet(Arg concentration) {
  need_dims("Dirichlet", "concentration", concentration, 1, "[..., K]");
  set_params(broadcast_args("Dirichlet", {std::move(concentration)}, {1}));
}
Constraint Dirichlet::support() const { return constraints::simplex; }
torch::Tensor Dirichlet::mean() const { return concentration() / concentration().sum(-1, true); }
torch::Tensor Dirichlet::variance() const {
  const auto& a = concentration();
  const auto a0 = a.sum(-1, true);
  return a * (a0 - a) / (a0.pow(2) * (a0 + 1));
}
torch::Tensor Dirichlet::draw(c10::IntArrayRef sizes) const {
  const auto g = gamma_draws(concentration(), sizes);
  return g / g.sum(-1, true);
}
torch::Tensor Dirichlet::log_density(const torch::Tensor& v) const {
  const auto& a = concentration();
  return torch::xlogy(a - 1, v).sum(-1) + torch::lgamma(a.sum(-1)) - torch::lgamma(a).sum(-1);
}
void Dirichlet::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "concentration", concentration());
}

// ------------------------------------------------------------------ LKJCholesky
//
// Onion method: row i of L (from 0) is (w, sqrt(1 - |w|^2)) with w in R^i;
// under the density above the rows are independent, w's density is
// proportional to (1 - |w|^2)^((D - i - 1) / 2 + eta - 1) on the unit ball,
// so w = sqrt(y) u with u uniform on the sphere and
// y ~ Beta(i / 2, eta + (D - 1 - i) / 2).

LKJCholesky::LKJCholesky(int64_t dim, Arg concentration) : dim_(dim) {
  if (dim < 2) throw ArgumentError(fmt::format("LKJCholesky: dim is {}, but must be at least 2", dim));
  set_params(broadcast_args("LKJCholesky", {std::move(concentration)}));
}
Constraint LKJCholesky::support() const { return constraints::corr_cholesky; }
torch::Tensor LKJCholesky::draw(c10::IntArrayRef sizes) const {
  torch::NoGradGuard no_grad;
  const auto opts = options().requires_grad(false);
  const std::vector<int64_t> lead(sizes.begin(), sizes.end() - 2);
  auto rows = lead;
  rows.push_back(dim_);
  const auto i = torch::arange(dim_, opts);
  const auto eta = concentration().detach().unsqueeze(-1);
  // Row 0 has no off-diagonal part: its Beta draw is never used.
  const auto g1 = gamma_draws(torch::where(i > 0, i / 2, torch::ones_like(i)), rows);
  const auto g0 = gamma_draws(eta + (static_cast<double>(dim_) - 1 - i) / 2, rows);
  const auto y = g1 / (g1 + g0);
  auto u = random::standard_normal(sizes, opts).tril(-1);
  u = u / u.norm(2, -1, true).clamp_min(tiny_of(u));
  const auto w = y.sqrt().unsqueeze(-1) * u;
  const auto diag = (1 - w.pow(2).sum(-1)).clamp_min(tiny_of(w)).sqrt();
  return w + torch::diag_embed(diag);
}
torch::Tensor LKJCholesky::log_density(const torch::Tensor& v) const {
  const auto d = static_cast<double>(dim_);
  const auto& eta = concentration();
  const auto i = torch::arange(1, dim_, eta.options().requires_grad(false));
  const auto powers = (d - i - 1) + 2 * (eta.unsqueeze(-1) - 1);
  const auto unnormalised = (powers * v.diagonal(0, -2, -1).narrow(-1, 1, dim_ - 1).log()).sum(-1);
  // log of pi^((D-1)/2) Gamma_{D-1}(a - 1/2) / Gamma(a)^(D-1), a = eta + (D-1)/2, with the
  // multivariate gamma Gamma_p(x) = pi^(p(p-1)/4) prod_{j=1..p} Gamma(x + (1 - j)/2).
  const auto a = eta + (d - 1) / 2;
  const double p = d - 1;
  auto mv_lgamma = torch::full_like(a, p * (p - 1) / 4 * kLogPi);
  for (int64_t j = 1; j <= dim_ - 1; ++j) mv_lgamma = mv_lgamma + torch::lgamma(a - 0.5 + (1.0 - j) / 2);
  const auto log_normaliser = (d - 1) / 2 * kLogPi + mv_lgamma - (d - 1) * torch::lgamma(a);
  return unnormalised - log_normaliser;
}
void LKJCholesky::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "concentration", concentration());
}
void LKJCholesky::options_to_json(nlohmann::json& j) const { j["dim"] = dim_; }

}  // namespace ppl::dist
