// The discrete families of the second wave: Poisson, DiscreteUniform,
// Binomial, NegativeBinomial, Geometric, Multinomial, OneHotCategorical, and
// RelaxedOneHotCategorical (the continuous relaxation of OneHotCategorical).
#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/random.hpp>
#include <ppl/dist/binomial.hpp>
#include <ppl/dist/discrete_uniform.hpp>
#include <ppl/dist/geometric.hpp>
#include <ppl/dist/multinomial.hpp>
#include <ppl/dist/negative_binomial.hpp>
#include <ppl/dist/one_hot_categorical.hpp>
#include <ppl/dist/poisson.hpp>
#include <ppl/dist/relaxed_one_hot_categorical.hpp>

#include "detail.hpp"

namespace ppl::dist {

using namespace detail;

namespace {
/// `value` holds integers (ArgumentError naming `arg` otherwise).
void integer(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value) {
  check::elementwise(ctx, arg, value, value == torch::floor(value), "an integer");
}
/// x log p, with x = 0 giving 0 even where log p is -inf.
torch::Tensor times_log(const torch::Tensor& x, const torch::Tensor& log_p) {
  return torch::where(x == 0, torch::zeros({}, log_p.options()), x * log_p);
}
/// log C(n, k).
torch::Tensor log_binomial_coefficient(const torch::Tensor& n, const torch::Tensor& k) {
  return torch::lgamma(n + 1) - torch::lgamma(k + 1) - torch::lgamma(n - k + 1);
}
/// The one value of `t` over the whole batch, for enumerate_support
/// (ArgumentError naming `who` and `arg` when its elements differ).
double homogeneous(std::string_view who, std::string_view arg, const torch::Tensor& t) {
  const auto low = t.min().item<double>(), high = t.max().item<double>();
  if (low != high)
    throw ArgumentError(fmt::format("{}: enumerate_support needs one {} for the whole batch, but it ranges from {} "
                                    "to {}",
                                    who, arg, low, high));
  return low;
}
/// The first index sizes of `sizes` (the last dimension dropped).
std::vector<int64_t> without_last(c10::IntArrayRef sizes) { return {sizes.begin(), sizes.end() - 1}; }
/// Category weights [..., K] broadcast on their batch part, at least 1-d.
std::vector<torch::Tensor> category_args(const char* who, const char* name, Arg w, std::vector<Arg> before = {}) {
  // A plain number has no category dimension.
  check::min_dim({who}, name, w.tensor.defined() ? w.tensor : torch::zeros({}), 1);
  std::vector<int> ranks(before.size(), 0);
  ranks.push_back(1);
  before.push_back(std::move(w));
  return Distribution::broadcast_args(who, std::move(before), std::move(ranks));
}
}  // namespace

// ------------------------------------------------------------------ Poisson

Poisson::Poisson(Arg rate) { set_params(broadcast_args("Poisson", {std::move(rate)})); }
Constraint Poisson::support() const { return constraints::nonnegative_integer; }
torch::Tensor Poisson::mean() const { return rate(); }
torch::Tensor Poisson::variance() const { return rate(); }
torch::Tensor Poisson::draw(c10::IntArrayRef sizes) const {
  torch::NoGradGuard no_grad;
  return random::poisson(rate().detach().expand(sizes).contiguous());
}
torch::Tensor Poisson::log_density(const torch::Tensor& v) const {
  const auto k = v.to(rate().scalar_type());
  return torch::xlogy(k, rate()) - rate() - torch::lgamma(k + 1);
}
void Poisson::check_params(const CheckContext& ctx) const {
  check::nonnegative(ctx, "rate", rate());
  check::finite(ctx, "rate", rate());
}

// ------------------------------------------------------------------ DiscreteUniform

DiscreteUniform::DiscreteUniform(Arg low, Arg high) {
  set_params(broadcast_args("DiscreteUniform", {std::move(low), std::move(high)}));
}
Constraint DiscreteUniform::support() const { return constraints::integer_interval(low(), high()); }
torch::Tensor DiscreteUniform::mean() const { return (low() + high()) / 2; }
torch::Tensor DiscreteUniform::variance() const { return ((high() - low() + 1).pow(2) - 1) / 12; }
torch::Tensor DiscreteUniform::draw(c10::IntArrayRef sizes) const {
  torch::NoGradGuard no_grad;
  const auto u = random::uniform(sizes, options().requires_grad(false), 0.0, 1.0);
  const auto n = (high() - low() + 1).detach();
  return low().detach() + torch::minimum(torch::floor(u * n), n - 1);
}
torch::Tensor DiscreteUniform::log_density(const torch::Tensor& v) const {
  const auto k = v.to(low().scalar_type());
  const auto inside = (k >= low()).logical_and(k <= high()).logical_and(k == torch::floor(k));
  const auto lp = -(high() - low() + 1).log();
  return torch::where(inside, lp, full_like_scalar(lp, -INFINITY));
}
void DiscreteUniform::check_params(const CheckContext& ctx) const {
  check::finite(ctx, "low", low());
  check::finite(ctx, "high", high());
  integer(ctx, "low", low());
  integer(ctx, "high", high());
  check::elementwise(ctx, "low", low(), low() <= high(), "at most high");
}
torch::Tensor DiscreteUniform::support_values() const {
  const auto lo = homogeneous("DiscreteUniform", "low", low()), hi = homogeneous("DiscreteUniform", "high", high());
  return torch::arange(lo, hi + 1, options().requires_grad(false));
}

// ------------------------------------------------------------------ Binomial

Binomial::Binomial(Arg total_count, Probs p) {
  set_params(broadcast_args("Binomial", {std::move(total_count), std::move(p.value)}));
}
Binomial::Binomial(Arg total_count, Logits l) : success_(true) {
  set_params(broadcast_args("Binomial", {std::move(total_count), std::move(l.value)}));
}
Constraint Binomial::support() const {
  return constraints::integer_interval(torch::zeros({}, options().requires_grad(false)), total_count());
}
torch::Tensor Binomial::probs() const { return success_.probs(param(1)); }
torch::Tensor Binomial::logits() const { return success_.logits(param(1)); }
torch::Tensor Binomial::mean() const { return total_count() * probs(); }
torch::Tensor Binomial::variance() const { return total_count() * probs() * (1 - probs()); }
torch::Tensor Binomial::draw(c10::IntArrayRef sizes) const {
  torch::NoGradGuard no_grad;
  return random::binomial(total_count().detach().expand(sizes).contiguous(),
                          probs().detach().expand(sizes).contiguous());
}
torch::Tensor Binomial::log_density(const torch::Tensor& v) const {
  const auto& n = total_count();
  const auto k = v.to(n.scalar_type());
  const auto coefficient = log_binomial_coefficient(n, k);
  if (success_.given_logits())
    return coefficient + k * torch::log_sigmoid(logits()) + (n - k) * torch::log_sigmoid(-logits());
  return coefficient + torch::xlogy(k, probs()) + torch::xlogy(n - k, 1 - probs());
}
void Binomial::check_params(const CheckContext& ctx) const {
  check::nonnegative(ctx, "total_count", total_count());
  check::finite(ctx, "total_count", total_count());
  integer(ctx, "total_count", total_count());
  success_.check(ctx, param(1));
}
torch::Tensor Binomial::support_values() const {
  const auto n = homogeneous("Binomial", "total_count", total_count());
  return torch::arange(n + 1, options().requires_grad(false));
}

// ------------------------------------------------------------------ NegativeBinomial

NegativeBinomial::NegativeBinomial(Arg total_count, Probs p) {
  set_params(broadcast_args("NegativeBinomial", {std::move(total_count), std::move(p.value)}));
}
NegativeBinomial::NegativeBinomial(Arg total_count, Logits l) : success_(true) {
  set_params(broadcast_args("NegativeBinomial", {std::move(total_count), std::move(l.value)}));
}
Constraint NegativeBinomial::support() const { return constraints::nonnegative_integer; }
torch::Tensor NegativeBinomial::probs() const { return success_.probs(param(1)); }
torch::Tensor NegativeBinomial::logits() const { return success_.logits(param(1)); }
torch::Tensor NegativeBinomial::mean() const { return total_count() * probs() / (1 - probs()); }
torch::Tensor NegativeBinomial::variance() const { return mean() / (1 - probs()); }
torch::Tensor NegativeBinomial::draw(c10::IntArrayRef sizes) const {
  torch::NoGradGuard no_grad;
  const auto g = random::standard_gamma(total_count().detach().expand(sizes).contiguous());
  return random::poisson(g * probs().detach() / (1 - probs().detach()));
}
torch::Tensor NegativeBinomial::log_density(const torch::Tensor& v) const {
  const auto& r = total_count();
  const auto k = v.to(r.scalar_type());
  const auto coefficient = torch::lgamma(k + r) - torch::lgamma(k + 1) - torch::lgamma(r);
  if (success_.given_logits()) return coefficient + k * torch::log_sigmoid(logits()) + r * torch::log_sigmoid(-logits());
  return coefficient + torch::xlogy(k, probs()) + r * torch::log1p(-probs());
}
void NegativeBinomial::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "total_count", total_count());
  success_.check(ctx, param(1));
  if (success_.given_logits()) check::elementwise(ctx, "logits", param(1), param(1) < INFINITY, "less than inf");
  else check::elementwise(ctx, "probs", param(1), param(1) < 1, "less than 1");
}

// ------------------------------------------------------------------ Geometric

Geometric::Geometric(Probs p) { set_params(broadcast_args("Geometric", {std::move(p.value)})); }
Geometric::Geometric(Logits l) : success_(true) { set_params(broadcast_args("Geometric", {std::move(l.value)})); }
Constraint Geometric::support() const { return constraints::nonnegative_integer; }
torch::Tensor Geometric::probs() const { return success_.probs(param(0)); }
torch::Tensor Geometric::logits() const { return success_.logits(param(0)); }
torch::Tensor Geometric::mean() const { return (1 - probs()) / probs(); }
torch::Tensor Geometric::variance() const { return (1 - probs()) / probs().pow(2); }
torch::Tensor Geometric::draw(c10::IntArrayRef sizes) const {
  torch::NoGradGuard no_grad;
  const auto p = probs().detach();
  const auto u = random::uniform(sizes, options().requires_grad(false), tiny_of(p), 1.0);
  return torch::floor(u.log() / torch::log1p(-p));
}
torch::Tensor Geometric::log_density(const torch::Tensor& v) const {
  const auto k = v.to(param(0).scalar_type());
  if (success_.given_logits()) return k * torch::log_sigmoid(-logits()) + torch::log_sigmoid(logits());
  return torch::xlogy(k, 1 - probs()) + probs().log();
}
void Geometric::check_params(const CheckContext& ctx) const {
  success_.check(ctx, param(0));
  if (success_.given_logits()) check::elementwise(ctx, "logits", param(0), param(0) > -INFINITY, "greater than -inf");
  else check::positive(ctx, "probs", param(0));
}

// ------------------------------------------------------------------ Multinomial
//
// Draws go category by category: x_k ~ Binomial(n - sum_{j<k} x_j,
// p_k / (1 - sum_{j<k} p_j)), the last category taking what is left.

Multinomial::Multinomial(int64_t total_count, Probs p) : total_count_(total_count) {
  set_params(category_args("Multinomial", "probs", std::move(p.value)));
}
Multinomial::Multinomial(int64_t total_count, Logits l) : total_count_(total_count), logits_(true) {
  set_params(category_args("Multinomial", "logits", std::move(l.value)));
}
Constraint Multinomial::support() const {
  return constraints::multinomial(torch::scalar_tensor(static_cast<double>(total_count_), torch::kDouble));
}
torch::Tensor Multinomial::probs() const { return category_probs(logits_, param(0)); }
torch::Tensor Multinomial::logits() const { return category_log_probs(logits_, param(0)); }
torch::Tensor Multinomial::mean() const { return static_cast<double>(total_count_) * probs(); }
torch::Tensor Multinomial::variance() const { return static_cast<double>(total_count_) * probs() * (1 - probs()); }
torch::Tensor Multinomial::draw(c10::IntArrayRef sizes) const {
  torch::NoGradGuard no_grad;
  const auto p = probs().detach().expand(sizes);
  const auto k = num_categories();
  auto left = torch::full(without_last(sizes), static_cast<double>(total_count_), p.options());
  auto mass_left = torch::ones_like(left);
  std::vector<torch::Tensor> counts;
  counts.reserve(k);
  for (int64_t i = 0; i + 1 < k; ++i) {
    const auto pi = p.select(-1, i);
    const auto share = torch::where(mass_left > 0, pi / mass_left, torch::ones_like(pi)).clamp(0, 1);
    auto x = random::binomial(left.contiguous(), share.contiguous());
    left = left - x;
    mass_left = mass_left - pi;
    counts.push_back(std::move(x));
  }
  counts.push_back(left);
  return torch::stack(counts, -1);
}
torch::Tensor Multinomial::log_density(const torch::Tensor& v) const {
  const auto x = v.to(param(0).scalar_type());
  const double n = static_cast<double>(total_count_);
  return std::lgamma(n + 1) - torch::lgamma(x + 1).sum(-1) + times_log(x, logits()).sum(-1);
}
void Multinomial::check_params(const CheckContext& ctx) const {
  check::nonnegative(ctx, "total_count", torch::scalar_tensor(static_cast<double>(total_count_)));
  check_categorical_weights(ctx, logits_, param(0));
}
void Multinomial::options_to_json(nlohmann::json& j) const { j["total_count"] = total_count_; }

// ------------------------------------------------------------------ OneHotCategorical

OneHotCategorical::OneHotCategorical(Probs p) {
  set_params(category_args("OneHotCategorical", "probs", std::move(p.value)));
}
OneHotCategorical::OneHotCategorical(Logits l) : logits_(true) {
  set_params(category_args("OneHotCategorical", "logits", std::move(l.value)));
}
Constraint OneHotCategorical::support() const { return constraints::one_hot; }
torch::Tensor OneHotCategorical::probs() const { return category_probs(logits_, param(0)); }
torch::Tensor OneHotCategorical::logits() const { return category_log_probs(logits_, param(0)); }
torch::Tensor OneHotCategorical::mean() const { return probs(); }
torch::Tensor OneHotCategorical::variance() const { return probs() * (1 - probs()); }
torch::Tensor OneHotCategorical::draw(c10::IntArrayRef sizes) const {
  const auto index = draw_categories(probs(), without_last(sizes));
  return torch::one_hot(index, num_categories()).to(options().dtype());
}
torch::Tensor OneHotCategorical::log_density(const torch::Tensor& v) const {
  return times_log(v.to(param(0).scalar_type()), logits()).sum(-1);
}
void OneHotCategorical::check_params(const CheckContext& ctx) const {
  check_categorical_weights(ctx, logits_, param(0));
}
torch::Tensor OneHotCategorical::support_values() const {
  return torch::eye(num_categories(), options().requires_grad(false));
}

// ------------------------------------------------------------------ RelaxedOneHotCategorical

RelaxedOneHotCategorical::RelaxedOneHotCategorical(Arg temperature, Probs p, bool straight_through)
    : straight_through_(straight_through) {
  set_params(category_args("RelaxedOneHotCategorical", "probs", std::move(p.value), {std::move(temperature)}));
}
RelaxedOneHotCategorical::RelaxedOneHotCategorical(Arg temperature, Logits l, bool straight_through)
    : logits_(true), straight_through_(straight_through) {
  set_params(category_args("RelaxedOneHotCategorical", "logits", std::move(l.value), {std::move(temperature)}));
}
Constraint RelaxedOneHotCategorical::support() const { return constraints::simplex; }
torch::Tensor RelaxedOneHotCategorical::probs() const { return category_probs(logits_, param(1)); }
torch::Tensor RelaxedOneHotCategorical::logits() const { return category_log_probs(logits_, param(1)); }
torch::Tensor RelaxedOneHotCategorical::draw(c10::IntArrayRef sizes) const {
  const auto l = logits();
  const auto u = random::uniform(sizes, options().requires_grad(false), tiny_of(l), 1.0);
  const auto gumbel = -(-u.log()).log();
  const auto soft = torch::softmax((l + gumbel) / temperature().unsqueeze(-1), -1).clamp_min(tiny_of(l));
  if (!straight_through_) return soft;
  const auto hard = torch::one_hot(soft.argmax(-1), num_categories()).to(soft.scalar_type());
  auto out = hard + (soft - soft.detach());
  last_hard_ = out;
  last_soft_ = soft;
  return out;
}
torch::Tensor RelaxedOneHotCategorical::log_density(const torch::Tensor& y) const {
  const auto k = static_cast<double>(num_categories());
  const auto t = temperature().unsqueeze(-1);
  const auto log_y = y.log();
  const auto l = logits();
  return std::lgamma(k) + (k - 1) * temperature().log() + (l - (t + 1) * log_y).sum(-1) -
         k * (l - t * log_y).logsumexp(-1);
}
torch::Tensor RelaxedOneHotCategorical::log_density_of(const torch::Tensor& value) const {
  if (straight_through_ && last_hard_.defined() && value.is_same(last_hard_)) return log_density(last_soft_);
  return log_density(value);
}
void RelaxedOneHotCategorical::check_params(const CheckContext& ctx) const {
  positive_finite(ctx, "temperature", temperature());
  check_categorical_weights(ctx, logits_, param(1));
}
void RelaxedOneHotCategorical::options_to_json(nlohmann::json& j) const { j["straight_through"] = straight_through_; }

}  // namespace ppl::dist
