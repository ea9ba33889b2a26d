// The concrete distributions of ppl::dist.
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/random.hpp>
#include <ppl/dist.hpp>

#include "dist/detail.hpp"

namespace ppl::dist {

using namespace detail;

namespace {
Constraint unit() { return constraints::unit_interval; }
}  // namespace

// ------------------------------------------------------------------ BinarySuccess

torch::Tensor BinarySuccess::probs(const torch::Tensor& given) const {
  return logits_ ? torch::sigmoid(given) : given;
}
torch::Tensor BinarySuccess::logits(const torch::Tensor& given) const {
  return logits_ ? given : probs_to_logits(given);
}
void BinarySuccess::check(const CheckContext& ctx, const torch::Tensor& given) const {
  if (logits_) check::not_nan(ctx, "logits", given);
  else check::probability(ctx, "probs", given);
}

// ------------------------------------------------------------------ Normal

Normal::Normal(Arg loc, Arg scale) { set_params(broadcast_args("Normal", {std::move(loc), std::move(scale)})); }
Constraint Normal::support() const { return constraints::real; }
torch::Tensor Normal::mean() const { return loc(); }
torch::Tensor Normal::variance() const { return scale().pow(2); }
torch::Tensor Normal::draw(c10::IntArrayRef sizes) const {
  return loc() + scale() * random::standard_normal(sizes, options().requires_grad(false));
}
torch::Tensor Normal::log_density(const torch::Tensor& v) const {
  const auto z = (v - loc()) / scale();
  return -0.5 * z * z - scale().log() - kLogSqrt2Pi;
}
void Normal::check_params(const CheckContext& ctx) const {
  check::finite(ctx, "loc", loc());
  positive_finite(ctx, "scale", scale());
}

// ------------------------------------------------------------------ Laplace

Laplace::Laplace(Arg loc, Arg scale) { set_params(broadcast_args("Laplace", {std::move(loc), std::move(scale)})); }
Constraint Laplace::support() const { return constraints::real; }
torch::Tensor Laplace::mean() const { return loc(); }
torch::Tensor Laplace::variance() const { return 2 * scale().pow(2); }
torch::Tensor Laplace::draw(c10::IntArrayRef sizes) const {
  const auto opts = options().requires_grad(false);
  const auto u = random::uniform(sizes, opts, eps_of(loc()) - 1.0, 1.0);
  return loc() - scale() * u.sign() * torch::log1p(-u.abs());
}
torch::Tensor Laplace::log_density(const torch::Tensor& v) const {
  return -torch::log(2 * scale()) - (v - loc()).abs() / scale();
}
void Laplace::check_params(const CheckContext& ctx) const {
  check::finite(ctx, "loc", loc());
  positive_finite(ctx, "scale", scale());
}

// ------------------------------------------------------------------ Uniform

Uniform::Uniform(Arg low, Arg high) { set_params(broadcast_args("Uniform", {std::move(low), std::move(high)})); }
Constraint Uniform::support() const { return constraints::interval(low(), high()); }
torch::Tensor Uniform::mean() const { return (low() + high()) / 2; }
torch::Tensor Uniform::variance() const { return (high() - low()).pow(2) / 12; }
torch::Tensor Uniform::draw(c10::IntArrayRef sizes) const {
  return low() + (high() - low()) * random::uniform(sizes, options().requires_grad(false), 0.0, 1.0);
}
torch::Tensor Uniform::log_density(const torch::Tensor& v) const {
  const auto inside = (v >= low()).logical_and(v <= high());
  const auto lp = -(high() - low()).log();
  return torch::where(inside, lp, full_like_scalar(lp, -INFINITY));
}
void Uniform::check_params(const CheckContext& ctx) const {
  check::finite(ctx, "low", low());
  check::finite(ctx, "high", high());
  check::less(ctx, "low", low(), "high", high());
}

// ------------------------------------------------------------------ Beta

Beta::Beta(Arg c1, Arg c0) { set_params(broadcast_args("Beta", {std::move(c1), std::move(c0)})); }
Constraint Beta::support() const { return unit(); }
torch::Tensor Beta::mean() const { return concentration1() / (concentration1() + concentration0()); }
torch::Tensor Beta::variance() const {
  const auto total = concentration1() + concentration0();
  return concentration1() * concentration0() / (total.pow(2) * (total + 1));
}
torch::Tensor Beta::draw(c10::IntArrayRef sizes) const {
  const auto g1 = random::standard_gamma(concentration1().expand(sizes));
  const auto g0 = random::standard_gamma(concentration0().expand(sizes));
  const double e = eps_of(g1);
  return (g1 / (g1 + g0)).clamp(tiny_of(g1), 1 - e);
}
torch::Tensor Beta::log_density(const torch::Tensor& v) const {
  const auto& a = concentration1();
  const auto& b = concentration0();
  return torch::xlogy(a - 1, v) + torch::xlogy(b - 1, 1 - v) -
         (torch::lgamma(a) + torch::lgamma(b) - torch::lgamma(a + b));
}
void Beta::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "concentration1", concentration1());
  positive_finite(ctx, "concentration0", concentration0());
}

// ------------------------------------------------------------------ Gamma

Gamma::Gamma(Arg c, Arg r) { set_params(broadcast_args("Gamma", {std::move(c), std::move(r)})); }
Constraint Gamma::support() const { return constraints::positive; }
torch::Tensor Gamma::mean() const { return concentration() / rate(); }
torch::Tensor Gamma::variance() const { return concentration() / rate().pow(2); }
torch::Tensor Gamma::draw(c10::IntArrayRef sizes) const {
  const auto g = random::standard_gamma(concentration().expand(sizes));
  return (g / rate()).clamp_min(tiny_of(g));
}
torch::Tensor Gamma::log_density(const torch::Tensor& v) const {
  const auto& a = concentration();
  const auto& b = rate();
  return torch::xlogy(a, b) + torch::xlogy(a - 1, v) - b * v - torch::lgamma(a);
}
void Gamma::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "concentration", concentration());
  positive_finite(ctx, "rate", rate());
}

// ------------------------------------------------------------------ Delta

Delta::Delta(Arg v, Arg log_density) {
  set_params(broadcast_args("Delta", {std::move(v), std::move(log_density)}));
}
Constraint Delta::support() const { return constraints::real; }
torch::Tensor Delta::mean() const { return v(); }
torch::Tensor Delta::variance() const { return torch::zeros_like(v()); }
torch::Tensor Delta::draw(c10::IntArrayRef sizes) const { return v().expand(sizes); }
torch::Tensor Delta::log_density(const torch::Tensor& value) const {
  return torch::where(value == v(), log_density_value(), full_like_scalar(log_density_value(), -INFINITY));
}
void Delta::check_params(const CheckContext& ctx) const { check::not_nan(ctx, "v", v()); }

// ------------------------------------------------------------------ Bernoulli

Bernoulli::Bernoulli(Probs p) { set_params(broadcast_args("Bernoulli", {std::move(p.value)})); }
Bernoulli::Bernoulli(Logits l) : success_(true) { set_params(broadcast_args("Bernoulli", {std::move(l.value)})); }
Constraint Bernoulli::support() const { return constraints::boolean; }
torch::Tensor Bernoulli::mean() const { return probs(); }
torch::Tensor Bernoulli::variance() const { return probs() * (1 - probs()); }
torch::Tensor Bernoulli::probs() const { return success_.probs(param(0)); }
torch::Tensor Bernoulli::logits() const { return success_.logits(param(0)); }
torch::Tensor Bernoulli::draw(c10::IntArrayRef sizes) const {
  torch::NoGradGuard no_grad;
  return random::bernoulli(probs().detach().expand(sizes).contiguous());
}
torch::Tensor Bernoulli::log_density(const torch::Tensor& v) const {
  auto l = logits();
  auto shape = at::infer_size(l.sizes(), v.sizes());
  return -torch::binary_cross_entropy_with_logits(l.expand(shape), v.to(l.scalar_type()).expand(shape),
                                                  {}, {}, at::Reduction::None);
}
void Bernoulli::check_params(const CheckContext& ctx) const { success_.check(ctx, param(0)); }
torch::Tensor Bernoulli::support_values() const { return torch::arange(2, options().requires_grad(false)); }

// ------------------------------------------------------------------ Categorical

Categorical::Categorical(Probs p) {
  auto t = broadcast_args("Categorical", {std::move(p.value)}, {1});
  check::min_dim({"Categorical"}, "probs", t[0], 1);
  set_params({t[0]});
}
Categorical::Categorical(Logits l) : logits_(true) {
  auto t = broadcast_args("Categorical", {std::move(l.value)}, {1});
  check::min_dim({"Categorical"}, "logits", t[0], 1);
  set_params({t[0]});
}
Constraint Categorical::support() const {
  const auto opts = param(0).options().requires_grad(false);
  return constraints::integer_interval(torch::zeros({}, opts),
                                       torch::full({}, static_cast<double>(num_categories() - 1), opts));
}
torch::Tensor Categorical::probs() const { return category_probs(logits_, param(0)); }
torch::Tensor Categorical::logits() const { return category_log_probs(logits_, param(0)); }
torch::Tensor Categorical::draw(c10::IntArrayRef sizes) const { return draw_categories(probs(), sizes); }
torch::Tensor Categorical::log_density(const torch::Tensor& v) const {
  const auto lp = logits();
  auto batch = std::vector<int64_t>(lp.sizes().begin(), lp.sizes().end() - 1);
  auto shape = at::infer_size(batch, v.sizes());
  auto full = shape;
  full.push_back(num_categories());
  auto index = v.to(torch::kLong).expand(shape).clamp(0, num_categories() - 1).unsqueeze(-1);
  return lp.expand(full).gather(-1, index).squeeze(-1);
}
void Categorical::check_params(const CheckContext& ctx) const {
  check_categorical_weights(ctx, logits_, param(0));
}
torch::Tensor Categorical::support_values() const {
  return torch::arange(num_categories(), torch::TensorOptions().dtype(torch::kLong).device(param(0).device()));
}

// ------------------------------------------------------------------ GaussianMixture
//
// Components are evaluated by forward substitution (L y = x - loc, one
// row at a time): D small tensor operations instead of a batched LAPACK solve
// of many tiny matrices, differentiable and the same on every device.

GaussianMixture::GaussianMixture(Logits mixture, Arg loc, Arg scale_tril) : logits_(true) {
  init(std::move(mixture.value), std::move(loc), std::move(scale_tril));
}
GaussianMixture::GaussianMixture(Probs mixture, Arg loc, Arg scale_tril) {
  init(std::move(mixture.value), std::move(loc), std::move(scale_tril));
}
void GaussianMixture::init(Arg mixture, Arg loc, Arg scale_tril) {
  const char* mix_name = logits_ ? "logits" : "probs";
  auto need_dims = [&](const char* name, const Arg& a, int64_t dims, const char* layout) {
    const int64_t have = a.tensor.defined() ? a.tensor.dim() : 0;
    if (have < dims)
      throw ShapeError(fmt::format("GaussianMixture: {} has shape {}, but must have at least {} dimensions ({})",
                                   name, a.tensor.defined() ? shape_string(a.tensor.sizes()) : "[] (a number)",
                                   dims, layout));
  };
  need_dims(mix_name, mixture, 1, "[..., K]");
  need_dims("loc", loc, 2, "[..., K, D]");
  need_dims("scale_tril", scale_tril, 3, "[..., K, D, D]");
  const auto k = mixture.tensor.size(-1);
  const auto d = loc.tensor.size(-1);
  if (loc.tensor.size(-2) != k)
    throw ShapeError(fmt::format("GaussianMixture: loc has shape {}, but {} has {} components (last dim); loc "
                                 "must be [..., {}, D]",
                                 shape_string(loc.tensor.sizes()), mix_name, k, k));
  const auto ls = scale_tril.tensor.sizes();
  if (ls[ls.size() - 3] != k || ls[ls.size() - 2] != d || ls[ls.size() - 1] != d)
    throw ShapeError(fmt::format("GaussianMixture: scale_tril has shape {}, but must be [..., {}, {}, {}] "
                                 "(K = {} components of dimension D = {})",
                                 shape_string(ls), k, d, d, k, d));
  set_params(broadcast_args("GaussianMixture", {std::move(mixture), std::move(loc), std::move(scale_tril)},
                            {1, 2, 3}));
}
Constraint GaussianMixture::support() const { return constraints::real; }
torch::Tensor GaussianMixture::mixture_logits() const { return category_log_probs(logits_, param(0)); }
torch::Tensor GaussianMixture::mixture_probs() const { return category_probs(logits_, param(0)); }
torch::Tensor GaussianMixture::mean() const { return (mixture_probs().unsqueeze(-1) * loc()).sum(-2); }
torch::Tensor GaussianMixture::variance() const {
  const auto w = mixture_probs().unsqueeze(-1);  // [..., K, 1]
  const auto second = (w * (scale_tril().pow(2).sum(-1) + loc().pow(2))).sum(-2);
  return (second - mean().pow(2)).clamp_min(0);
}
torch::Tensor GaussianMixture::draw(c10::IntArrayRef sizes) const {
  const auto k = num_components(), d = dim();
  std::vector<int64_t> lead(sizes.begin(), sizes.end() - 1);  // sample + base shape
  const auto comp = draw_categories(mixture_probs(), lead);
  auto with = [&](std::initializer_list<int64_t> tail) {
    auto s = lead;
    s.insert(s.end(), tail);
    return s;
  };
  const auto loc_k =
      loc().expand(with({k, d})).gather(-2, comp.reshape(with({1, 1})).expand(with({1, d}))).squeeze(-2);
  const auto l_k = scale_tril()
                       .tril()
                       .expand(with({k, d, d}))
                       .gather(-3, comp.reshape(with({1, 1, 1})).expand(with({1, d, d})))
                       .squeeze(-3);
  const auto eps = random::standard_normal(sizes, options().requires_grad(false));
  return loc_k + torch::matmul(l_k, eps.unsqueeze(-1)).squeeze(-1);
}
torch::Tensor GaussianMixture::log_density(const torch::Tensor& v) const {
  const auto d = dim();
  const auto diff = v.unsqueeze(-2) - loc();  // [..., K, D]
  const auto& l = scale_tril();
  std::vector<torch::Tensor> y;
  y.reserve(d);
  auto maha = torch::zeros({}, diff.options());
  for (int64_t i = 0; i < d; ++i) {
    const auto row = l.select(-2, i);  // [..., K, D]
    auto acc = diff.select(-1, i);
    for (int64_t j = 0; j < i; ++j) acc = acc - row.select(-1, j) * y[j];
    y.push_back(acc / row.select(-1, i));
    maha = maha + y.back().pow(2);
  }
  const auto log_det = l.diagonal(0, -2, -1).log().sum(-1);  // [..., K]
  const auto comp = -0.5 * maha - log_det - static_cast<double>(d) * kLogSqrt2Pi;
  return (mixture_logits() + comp).logsumexp(-1);
}
void GaussianMixture::check_params(const CheckContext& ctx) const {
  check_categorical_weights(ctx, logits_, param(0));
  check::finite(ctx, "loc", param(1));
  check::finite(ctx, "scale_tril", param(2));
  const auto& l = param(2);
  const auto d = dim();
  const auto on_diag = torch::eye(d, l.options().dtype(torch::kBool));
  const auto above = torch::ones({d, d}, l.options().dtype(torch::kBool)).triu(1);
  check::elementwise(ctx, "scale_tril", l, (l > 0).logical_or(on_diag.logical_not()), "positive (a diagonal entry)");
  check::elementwise(ctx, "scale_tril", l, (l == 0).logical_or(above.logical_not()),
                     "0 (an entry above the diagonal of a lower-triangular factor)");
}

// ------------------------------------------------------------------ ContinuousBernoulli
//
// Near lambda = 1/2 the closed forms are 0/0; inside (0.499, 0.501) they are
// replaced by their Taylor expansions, as in Loaiza-Ganem & Cunningham (2019).

namespace {
constexpr double kCbLow = 0.499, kCbHigh = 0.501;
torch::Tensor cb_outside(const torch::Tensor& p) { return (p <= kCbLow).logical_or(p >= kCbHigh); }
torch::Tensor cb_cut(const torch::Tensor& p) { return torch::where(cb_outside(p), p, full_like_scalar(p, kCbLow)); }
}  // namespace

ContinuousBernoulli::ContinuousBernoulli(Probs p) {
  set_params(broadcast_args("ContinuousBernoulli", {std::move(p.value)}));
}
ContinuousBernoulli::ContinuousBernoulli(Logits l) : success_(true) {
  set_params(broadcast_args("ContinuousBernoulli", {std::move(l.value)}));
}
Constraint ContinuousBernoulli::support() const { return unit(); }
torch::Tensor ContinuousBernoulli::probs() const {
  return clamp_probs(success_.probs(param(0)));
}
torch::Tensor ContinuousBernoulli::logits() const { return success_.logits(param(0)); }
torch::Tensor ContinuousBernoulli::log_normalizer() const {
  const auto p = probs();
  const auto c = cb_cut(p);
  // log C = log|log(1-c) - log c| - log|1 - 2c|
  const auto exact = torch::log(torch::abs(torch::log1p(-c) - torch::log(c))) - torch::log(torch::abs(1 - 2 * c));
  const auto x = (p - 0.5).pow(2);
  const auto taylor = std::log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x;
  return torch::where(cb_outside(p), exact, taylor);
}
torch::Tensor ContinuousBernoulli::mean() const {
  const auto p = probs();
  const auto c = cb_cut(p);
  const auto exact = c / (2 * c - 1) + 1 / (torch::log1p(-c) - torch::log(c));
  const auto x = p - 0.5;
  const auto taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x.pow(2)) * x;
  return torch::where(cb_outside(p), exact, taylor);
}
torch::Tensor ContinuousBernoulli::draw(c10::IntArrayRef sizes) const {
  const auto p = probs();
  const auto c = cb_cut(p);
  const auto u = random::uniform(sizes, options().requires_grad(false), 0.0, 1.0);
  // Inverse CDF: x = [log(1 - c + u (2c - 1)) - log(1 - c)] / [log c - log(1 - c)].
  const auto icdf = (torch::log1p(-c + u * (2 * c - 1)) - torch::log1p(-c)) / (torch::log(c) - torch::log1p(-c));
  return torch::where(cb_outside(p), icdf, u);
}
torch::Tensor ContinuousBernoulli::log_density(const torch::Tensor& v) const {
  auto l = logits();
  auto shape = at::infer_size(l.sizes(), v.sizes());
  return -torch::binary_cross_entropy_with_logits(l.expand(shape), v.to(l.scalar_type()).expand(shape), {},
                                                  {}, at::Reduction::None) +
         log_normalizer();
}
void ContinuousBernoulli::check_params(const CheckContext& ctx) const { success_.check(ctx, param(0)); }

// ------------------------------------------------------------------ RelaxedBernoulli

RelaxedBernoulli::RelaxedBernoulli(Arg temperature, Probs p, bool straight_through)
    : straight_through_(straight_through) {
  set_params(broadcast_args("RelaxedBernoulli", {std::move(temperature), std::move(p.value)}));
}
RelaxedBernoulli::RelaxedBernoulli(Arg temperature, Logits l, bool straight_through)
    : success_(true), straight_through_(straight_through) {
  set_params(broadcast_args("RelaxedBernoulli", {std::move(temperature), std::move(l.value)}));
}
Constraint RelaxedBernoulli::support() const { return unit(); }
torch::Tensor RelaxedBernoulli::probs() const { return success_.probs(param(1)); }
torch::Tensor RelaxedBernoulli::logits() const { return success_.logits(param(1)); }
torch::Tensor RelaxedBernoulli::draw(c10::IntArrayRef sizes) const {
  const auto l = logits();
  const double e = eps_of(l);
  const auto u = random::uniform(sizes, options().requires_grad(false), e, 1 - e);
  const auto soft = torch::sigmoid((l + u.log() - torch::log1p(-u)) / temperature()).clamp(e, 1 - e);
  if (!straight_through_) return soft;
  const auto hard = (soft > 0.5).to(soft.scalar_type());
  auto out = hard + (soft - soft.detach());
  last_hard_ = out;
  last_soft_ = soft;
  return out;
}
torch::Tensor RelaxedBernoulli::log_density(const torch::Tensor& y) const {
  // Density of x = logit(y) (the logistic relaxation), then the sigmoid's Jacobian.
  const auto x = torch::log(y) - torch::log1p(-y);
  const auto diff = logits() - x * temperature();
  const auto log_px = temperature().log() + diff - 2 * torch::softplus(diff);
  return log_px - torch::log(y) - torch::log1p(-y);
}
torch::Tensor RelaxedBernoulli::log_density_of(const torch::Tensor& value) const {
  if (straight_through_ && last_hard_.defined() && value.is_same(last_hard_)) return log_density(last_soft_);
  return log_density(value);
}
void RelaxedBernoulli::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "temperature", temperature());
  success_.check(ctx, param(1));
}
void RelaxedBernoulli::options_to_json(nlohmann::json& j) const { j["straight_through"] = straight_through_; }

}  // namespace ppl::dist
