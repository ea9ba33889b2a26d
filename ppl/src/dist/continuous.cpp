// The univariate continuous families of the second wave: Exponential,
// LogNormal, HalfNormal, HalfCauchy, Cauchy, StudentT, InverseGamma, Chi2,
// Weibull and VonMises.
#include <cmath>

#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/random.hpp>
#include <ppl/dist/cauchy.hpp>
#include <ppl/dist/chi2.hpp>
#include <ppl/dist/exponential.hpp>
#include <ppl/dist/half_cauchy.hpp>
#include <ppl/dist/half_normal.hpp>
#include <ppl/dist/inverse_gamma.hpp>
#include <ppl/dist/log_normal.hpp>
#include <ppl/dist/student_t.hpp>
#include <ppl/dist/von_mises.hpp>
#include <ppl/dist/weibull.hpp>

#include "detail.hpp"

namespace ppl::dist {

using namespace detail;

namespace {
torch::Tensor standard_normal_like(const Distribution& d, c10::IntArrayRef sizes) {
  return random::standard_normal(sizes, d.options().requires_grad(false));
}
/// `v` where `cond`, else the number `other`.
torch::Tensor where_else(const torch::Tensor& cond, const torch::Tensor& v, double other) {
  return torch::where(cond, v, full_like_scalar(v, other));
}
}  // namespace

// ------------------------------------------------------------------ Exponential

Exponential::Exponential(Arg rate) { set_params(broadcast_args("Exponential", {std::move(rate)})); }
Constraint Exponential::support() const { return constraints::nonnegative; }
torch::Tensor Exponential::mean() const { return rate().reciprocal(); }
torch::Tensor Exponential::variance() const { return rate().pow(-2); }
torch::Tensor Exponential::draw(c10::IntArrayRef sizes) const {
  return random::standard_exponential(sizes, options().requires_grad(false)) / rate();
}
torch::Tensor Exponential::log_density(const torch::Tensor& v) const { return rate().log() - rate() * v; }
void Exponential::check_params(const CheckContext& ctx) const { positive_finite(ctx, "rate", rate()); }

// ------------------------------------------------------------------ LogNormal

LogNormal::LogNormal(Arg loc, Arg scale) {
  set_params(broadcast_args("LogNormal", {std::move(loc), std::move(scale)}));
}
Constraint LogNormal::support() const { return constraints::positive; }
torch::Tensor LogNormal::mean() const { return (loc() + scale().pow(2) / 2).exp(); }
torch::Tensor LogNormal::variance() const {
  const auto s2 = scale().pow(2);
  return torch::expm1(s2) * (2 * loc() + s2).exp();
}
torch::Tensor LogNormal::draw(c10::IntArrayRef sizes) const {
  return (loc() + scale() * standard_normal_like(*this, sizes)).exp();
}
torch::Tensor LogNormal::log_density(const torch::Tensor& v) const {
  const auto y = v.log();
  const auto z = (y - loc()) / scale();
  return -0.5 * z * z - scale().log() - kLogSqrt2Pi - y;
}
void LogNormal::check_params(const CheckContext& ctx) const {
  check::finite(ctx, "loc", loc());
  positive_finite(ctx, "scale", scale());
}

// ------------------------------------------------------------------ HalfNormal

HalfNormal::HalfNormal(Arg scale) { set_params(broadcast_args("HalfNormal", {std::move(scale)})); }
Constraint HalfNormal::support() const { return constraints::nonnegative; }
torch::Tensor HalfNormal::mean() const { return scale() * std::sqrt(2.0 / kPi); }
torch::Tensor HalfNormal::variance() const { return scale().pow(2) * (1.0 - 2.0 / kPi); }
torch::Tensor HalfNormal::draw(c10::IntArrayRef sizes) const {
  return scale() * standard_normal_like(*this, sizes).abs();
}
torch::Tensor HalfNormal::log_density(const torch::Tensor& v) const {
  const auto z = v / scale();
  return std::log(2.0) - 0.5 * z * z - scale().log() - kLogSqrt2Pi;
}
void HalfNormal::check_params(const CheckContext& ctx) const { positive_finite(ctx, "scale", scale()); }

// ------------------------------------------------------------------ HalfCauchy

HalfCauchy::HalfCauchy(Arg scale) { set_params(broadcast_args("HalfCauchy", {std::move(scale)})); }
Constraint HalfCauchy::support() const { return constraints::nonnegative; }
torch::Tensor HalfCauchy::draw(c10::IntArrayRef sizes) const {
  const auto u = random::uniform(sizes, options().requires_grad(false), 0.0, 1.0);
  return scale() * torch::tan(u * (kPi / 2));
}
torch::Tensor HalfCauchy::log_density(const torch::Tensor& v) const {
  return std::log(2.0 / kPi) - scale().log() - torch::log1p((v / scale()).pow(2));
}
void HalfCauchy::check_params(const CheckContext& ctx) const { positive_finite(ctx, "scale", scale()); }

// ------------------------------------------------------------------ Cauchy

Cauchy::Cauchy(Arg loc, Arg scale) { set_params(broadcast_args("Cauchy", {std::move(loc), std::move(scale)})); }
Constraint Cauchy::support() const { return constraints::real; }
torch::Tensor Cauchy::draw(c10::IntArrayRef sizes) const {
  return loc() + scale() * random::standard_cauchy(sizes, options().requires_grad(false));
}
torch::Tensor Cauchy::log_density(const torch::Tensor& v) const {
  return -kLogPi - scale().log() - torch::log1p(((v - loc()) / scale()).pow(2));
}
void Cauchy::check_params(const CheckContext& ctx) const {
  check::finite(ctx, "loc", loc());
  positive_finite(ctx, "scale", scale());
}

// ------------------------------------------------------------------ StudentT

StudentT::StudentT(Arg df, Arg loc, Arg scale) {
  set_params(broadcast_args("StudentT", {std::move(df), std::move(loc), std::move(scale)}));
}
Constraint StudentT::support() const { return constraints::real; }
torch::Tensor StudentT::mean() const { return where_else(df() > 1, loc().expand(df().sizes()), NAN); }
torch::Tensor StudentT::variance() const {
  const auto v = scale().pow(2) * df() / (df() - 2);
  return torch::where(df() > 2, v, where_else(df() > 1, full_like_scalar(v, INFINITY).expand(v.sizes()), NAN));
}
torch::Tensor StudentT::draw(c10::IntArrayRef sizes) const {
  // eps / sqrt(chi2_df / df), chi2_df = 2 g with g ~ Gamma(df / 2, 1).
  const auto chi2 = 2 * gamma_draws(df() / 2, sizes);
  return loc() + scale() * standard_normal_like(*this, sizes) * torch::rsqrt(chi2 / df());
}
torch::Tensor StudentT::log_density(const torch::Tensor& v) const {
  const auto z = (v - loc()) / scale();
  const auto& n = df();
  return torch::lgamma((n + 1) / 2) - torch::lgamma(n / 2) - 0.5 * (n.log() + kLogPi) - scale().log() -
         (n + 1) / 2 * torch::log1p(z * z / n);
}
void StudentT::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "df", df());
  check::finite(ctx, "loc", loc());
  positive_finite(ctx, "scale", scale());
}

// ------------------------------------------------------------------ InverseGamma

InverseGamma::InverseGamma(Arg concentration, Arg rate) {
  set_params(broadcast_args("InverseGamma", {std::move(concentration), std::move(rate)}));
}
Constraint InverseGamma::support() const { return constraints::positive; }
torch::Tensor InverseGamma::mean() const {
  return where_else(concentration() > 1, rate() / (concentration() - 1), INFINITY);
}
torch::Tensor InverseGamma::variance() const {
  const auto& a = concentration();
  return where_else(a > 2, rate().pow(2) / ((a - 1).pow(2) * (a - 2)), INFINITY);
}
torch::Tensor InverseGamma::draw(c10::IntArrayRef sizes) const { return rate() / gamma_draws(concentration(), sizes); }
torch::Tensor InverseGamma::log_density(const torch::Tensor& v) const {
  const auto& a = concentration();
  const auto& b = rate();
  return torch::xlogy(a, b) - torch::lgamma(a) - (a + 1) * v.log() - b / v;
}
void InverseGamma::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "concentration", concentration());
  positive_finite(ctx, "rate", rate());
}

// ------------------------------------------------------------------ Chi2

Chi2::Chi2(Arg df) { set_params(broadcast_args("Chi2", {std::move(df)})); }
Constraint Chi2::support() const { return constraints::positive; }
torch::Tensor Chi2::mean() const { return df(); }
torch::Tensor Chi2::variance() const { return 2 * df(); }
torch::Tensor Chi2::draw(c10::IntArrayRef sizes) const { return 2 * gamma_draws(df() / 2, sizes); }
torch::Tensor Chi2::log_density(const torch::Tensor& v) const {
  const auto half = df() / 2;
  return -half * std::log(2.0) - torch::lgamma(half) + torch::xlogy(half - 1, v) - v / 2;
}
void Chi2::check_params(const CheckContext& ctx) const { positive_finite(ctx, "df", df()); }

// ------------------------------------------------------------------ Weibull

Weibull::Weibull(Arg scale, Arg concentration) {
  set_params(broadcast_args("Weibull", {std::move(scale), std::move(concentration)}));
}
Constraint Weibull::support() const { return constraints::nonnegative; }
torch::Tensor Weibull::mean() const { return scale() * torch::lgamma(1 + concentration().reciprocal()).exp(); }
torch::Tensor Weibull::variance() const {
  const auto k = concentration();
  return scale().pow(2) * (torch::lgamma(1 + 2 / k).exp() - torch::lgamma(1 + 1 / k).mul(2).exp());
}
torch::Tensor Weibull::draw(c10::IntArrayRef sizes) const {
  return scale() * random::standard_exponential(sizes, options().requires_grad(false)).pow(concentration().reciprocal());
}
torch::Tensor Weibull::log_density(const torch::Tensor& v) const {
  const auto& k = concentration();
  const auto z = v / scale();
  return k.log() - scale().log() + torch::xlogy(k - 1, z) - z.pow(k);
}
void Weibull::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "scale", scale());
  positive_finite(ctx, "concentration", concentration());
}

// ------------------------------------------------------------------ VonMises
//
// Best & Fisher (1979): propose from a wrapped Cauchy envelope with
// r = (1 + rho^2) / (2 rho), rho = (tau - sqrt(2 tau)) / (2 kappa),
// tau = 1 + sqrt(1 + 4 kappa^2); take z = cos(pi u1), f = (1 + r z) / (r + z),
// c = kappa (r - f); accept when c (2 - c) > u2 or log(c / u2) + 1 >= c, and
// return loc +- acos(f). Computed in double; near kappa = 0 the series
// r = 1 / kappa + kappa avoids the cancellation in rho, and kappa = 0 is the
// uniform distribution.

VonMises::VonMises(Arg loc, Arg concentration) {
  set_params(broadcast_args("VonMises", {std::move(loc), std::move(concentration)}));
}
Constraint VonMises::support() const { return constraints::interval(-kPi, kPi); }
torch::Tensor VonMises::mean() const { return loc().expand(concentration().sizes()); }
torch::Tensor VonMises::variance() const {
  const auto& k = concentration();
  return 1 - torch::special_i1e(k) / torch::special_i0e(k);
}
torch::Tensor VonMises::draw(c10::IntArrayRef sizes) const {
  torch::NoGradGuard no_grad;
  const auto dbl = options().dtype(torch::kDouble).requires_grad(false);
  const auto kappa = concentration().detach().to(torch::kDouble).expand(sizes).contiguous();
  const auto uniform_case = kappa == 0;
  const auto k = torch::where(uniform_case, torch::ones_like(kappa), kappa);
  const auto tau = 1 + torch::sqrt(1 + 4 * k * k);
  const auto rho = (tau - torch::sqrt(2 * tau)) / (2 * k);
  const auto r = torch::where(k > 1e-5, (1 + rho * rho) / (2 * rho), k.reciprocal() + k);
  auto theta = torch::zeros(sizes, dbl);
  auto done = torch::zeros(sizes, dbl.dtype(torch::kBool));
  for (int round = 0; !done.all().item<bool>(); ++round) {
    PPL_ASSERT(round < 10000);
    const auto u1 = random::uniform(sizes, dbl, 0.0, 1.0);
    const auto u2 = random::uniform(sizes, dbl, 0.0, 1.0);
    const auto u3 = random::uniform(sizes, dbl, 0.0, 1.0);
    const auto z = torch::cos(kPi * u1);
    const auto f = (1 + r * z) / (r + z);
    const auto c = k * (r - f);
    const auto accept = (c * (2 - c) > u2).logical_or(torch::log(c / u2) + 1 >= c);
    const auto angle = torch::sign(u3 - 0.5) * torch::acos(f.clamp(-1, 1));
    theta = torch::where(accept.logical_and(done.logical_not()), angle, theta);
    done = done.logical_or(accept);
  }
  const auto uniform = random::uniform(sizes, dbl, -kPi, kPi);
  theta = torch::where(uniform_case, uniform, theta + loc().detach().to(torch::kDouble));
  // Wrap into [-pi, pi).
  return (torch::remainder(theta + kPi, 2 * kPi) - kPi).to(options().dtype());
}
torch::Tensor VonMises::log_density(const torch::Tensor& v) const {
  const auto& k = concentration();
  return k * torch::cos(v - loc()) - std::log(2 * kPi) - torch::special_i0e(k).log() - k;
}
void VonMises::check_params(const CheckContext& ctx) const {
  check::finite(ctx, "loc", loc());
  check::nonnegative(ctx, "concentration", concentration());
  check::finite(ctx, "concentration", concentration());
}

}  // namespace ppl::dist
