// Distributions built from others: MixtureSameFamily, TransformedDistribution,
// Independent and FoldedDistribution.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/dist/folded_distribution.hpp>
#include <ppl/dist/independent.hpp>
#include <ppl/dist/mixture_same_family.hpp>
#include <ppl/dist/transformed_distribution.hpp>
#include <ppl/transforms/compose.hpp>

#include "detail.hpp"

namespace ppl::dist {

using namespace detail;

namespace {
using Parts = std::vector<std::pair<std::string, std::shared_ptr<const Distribution>>>;

/// `sizes` (= sample shape + base shape + event shape) without its last
/// `rank` dimensions and the `base` dimensions before them: the sample shape.
std::vector<int64_t> sample_shape_of(c10::IntArrayRef sizes, size_t base, size_t rank) {
  return {sizes.begin(), sizes.end() - static_cast<int64_t>(base + rank)};
}
/// Checks a part's parameters, its messages naming the part's own family
/// ("Normal: scale[1] is -1, ...") and the site being checked.
void check_part(const CheckContext& ctx, const Distribution& part) {
  part.check_args({part.type_name(), ctx.site, ctx.location});
}
/// A draw of `d`: pathwise when it reparameterises, else plain.
torch::Tensor draw_from(const Distribution& d, c10::IntArrayRef sample_shape) {
  return d.has_rsample() ? d.rsample(sample_shape) : d.sample(sample_shape);
}
std::vector<int64_t> concat(std::vector<int64_t> a, const std::vector<int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
}  // namespace

// ------------------------------------------------------------------ MixtureSameFamily

MixtureSameFamily::MixtureSameFamily(const Categorical& mixture, const Distribution& component) {
  const auto cb = component.batch_shape();
  const auto k = mixture.num_categories();
  if (cb.empty() || cb.back() != k)
    throw ShapeError(fmt::format("MixtureSameFamily: the component has batch shape {}, but its last batch dimension "
                                 "must be the mixture's {} categories",
                                 shape_string(cb), k));
  std::vector<int64_t> batch;
  try {
    batch = at::infer_size(mixture.batch_shape(), std::vector<int64_t>(cb.begin(), cb.end() - 1));
  } catch (const c10::Error&) {
    throw ShapeError(fmt::format("MixtureSameFamily: the mixture's batch shape {} and the component's {} (without "
                                 "its last dimension) do not broadcast",
                                 shape_string(mixture.batch_shape()), shape_string(cb)));
  }
  mixture_ = std::make_shared<Categorical>(mixture.expand(batch));
  component_ = component.expand_ptr(concat(batch, {k}));
  set_shape(batch, component.options());
}
void MixtureSameFamily::expand_base(const std::vector<int64_t>& base) {
  mixture_ = std::make_shared<Categorical>(mixture_->expand(base));
  component_ = component_->expand_ptr(concat(base, {mixture_->num_categories()}));
}
Parts MixtureSameFamily::parts() const { return {{"mixture", mixture_}, {"component", component_}}; }
namespace {
/// w [..., K] shaped to multiply per-component values [..., K, event...].
torch::Tensor weights_for(const torch::Tensor& w, size_t event_rank) {
  auto s = w.sizes().vec();
  s.insert(s.end(), event_rank, 1);
  return w.reshape(s);
}
}  // namespace
torch::Tensor MixtureSameFamily::mean() const {
  const auto rank = component_->event_shape().size();
  return (weights_for(mixture_->probs(), rank) * component_->mean()).sum(-1 - static_cast<int64_t>(rank));
}
torch::Tensor MixtureSameFamily::variance() const {
  const auto rank = component_->event_shape().size();
  const auto dim = -1 - static_cast<int64_t>(rank);
  const auto w = weights_for(mixture_->probs(), rank);
  const auto m = component_->mean();
  const auto mean = (w * m).sum(dim);
  return (w * (component_->variance() + m.pow(2))).sum(dim) - mean.pow(2);
}
torch::Tensor MixtureSameFamily::draw(c10::IntArrayRef sizes) const {
  const auto event = component_->event_shape();
  const auto sample = sample_shape_of(sizes, base_shape().size(), event.size());
  const auto index = mixture_->sample(sample);                   // [sample, base]
  const auto draws = draw_from(*component_, sample);             // [sample, base, K, event]
  auto shape = index.sizes().vec();
  shape.push_back(1);
  shape.insert(shape.end(), event.size(), 1);
  auto target = index.sizes().vec();
  target.push_back(1);
  target.insert(target.end(), event.begin(), event.end());
  const auto dim = -1 - static_cast<int64_t>(event.size());
  return draws.gather(dim, index.reshape(shape).expand(target)).squeeze(dim);
}
torch::Tensor MixtureSameFamily::log_density(const torch::Tensor& v) const {
  const auto dim = -1 - static_cast<int64_t>(component_->event_shape().size());
  const auto per_component = component_->log_prob(v.unsqueeze(dim));  // [..., K]
  return (per_component + mixture_->logits()).logsumexp(-1);
}
void MixtureSameFamily::check_params(const CheckContext& ctx) const {
  check_part(ctx, *mixture_);
  check_part(ctx, *component_);
}

// ------------------------------------------------------------------ TransformedDistribution

TransformedDistribution::TransformedDistribution(const Distribution& base,
                                                 std::vector<transforms::TransformArg> ts)
    : base_(base.clone()), transform_(std::make_shared<transforms::Compose>(std::move(ts))) {
  const auto shape = base_->shape();
  const auto base_rank = static_cast<int64_t>(base_->event_shape().size());
  const auto dd = transform_->domain_event_rank(), cd = transform_->codomain_event_rank();
  if (static_cast<int64_t>(shape.size()) < dd)
    throw ShapeError(fmt::format("TransformedDistribution: the transforms act on {}-dimensional events, but the base "
                                 "{} has shape {}",
                                 dd, base_->type_name(), shape_string(shape)));
  const auto y = transform_->forward_shape(shape);
  const auto rank = std::max(cd, base_rank + cd - dd);
  event_.assign(y.end() - rank, y.end());
  set_shape({y.begin(), y.end() - rank}, base_->options());
}
const std::vector<std::shared_ptr<const transforms::Transform>>& TransformedDistribution::transforms() const {
  return static_cast<const transforms::Compose&>(*transform_).parts();
}
Constraint TransformedDistribution::support() const {
  return transforms().empty() ? base_->support() : transform_->codomain();
}
void TransformedDistribution::expand_base(const std::vector<int64_t>& base) {
  const auto x = transform_->inverse_shape(concat(base, event_));
  const auto base_rank = base_->event_shape().size();
  base_ = base_->expand_ptr(std::vector<int64_t>(x.begin(), x.end() - static_cast<int64_t>(base_rank)));
}
Parts TransformedDistribution::parts() const { return {{"base", base_}}; }
torch::Tensor TransformedDistribution::draw(c10::IntArrayRef sizes) const {
  return transform_->forward(draw_from(*base_, sample_shape_of(sizes, base_shape().size(), event_.size())));
}
torch::Tensor TransformedDistribution::log_density(const torch::Tensor& y) const {
  const auto x = transform_->inverse(y);
  const auto rank = y.dim() - static_cast<int64_t>(event_.size());
  auto lp = base_->log_prob(x);
  auto ladj = transform_->log_abs_det_jacobian(x, y);
  return sum_rightmost(lp, lp.dim() - rank) - sum_rightmost(ladj, ladj.dim() - rank);
}
void TransformedDistribution::check_params(const CheckContext& ctx) const { check_part(ctx, *base_); }
void TransformedDistribution::options_to_json(nlohmann::json& j) const {
  auto list = nlohmann::json::array();
  for (const auto& t : transforms()) list.push_back(t->to_json());
  j["transforms"] = std::move(list);
}

// ------------------------------------------------------------------ Independent

Independent::Independent(const Distribution& base, int64_t reinterpreted_batch_dims)
    : base_(base.to_event_ptr(reinterpreted_batch_dims)), dims_(reinterpreted_batch_dims) {
  set_shape(base_->batch_shape(), base_->options());
}
void Independent::expand_base(const std::vector<int64_t>& base) { base_ = base_->expand_ptr(base); }
Parts Independent::parts() const {
  // The base as given (before its dimensions moved), so that from_json can
  // move them again.
  auto j = base_->to_json();
  j["event_dims"] = base_->event_dims() - dims_;
  return {{"base", from_json(j)}};
}
torch::Tensor Independent::draw(c10::IntArrayRef sizes) const {
  return draw_from(*base_, sample_shape_of(sizes, base_shape().size(), base_->event_shape().size()));
}
torch::Tensor Independent::log_density(const torch::Tensor& v) const { return base_->log_prob(v); }
void Independent::check_params(const CheckContext& ctx) const { check_part(ctx, *base_); }
void Independent::options_to_json(nlohmann::json& j) const { j["reinterpreted_batch_dims"] = dims_; }

// ------------------------------------------------------------------ FoldedDistribution

FoldedDistribution::FoldedDistribution(const Distribution& base) : base_(base.clone()) {
  if (!base_->event_shape().empty())
    throw ShapeError(fmt::format("FoldedDistribution: the base {} has event shape {}, but must have scalar events",
                                 base_->type_name(), shape_string(base_->event_shape())));
  set_shape(base_->batch_shape(), base_->options());
}
void FoldedDistribution::expand_base(const std::vector<int64_t>& base) { base_ = base_->expand_ptr(base); }
Parts FoldedDistribution::parts() const { return {{"base", base_}}; }
torch::Tensor FoldedDistribution::draw(c10::IntArrayRef sizes) const {
  return draw_from(*base_, sample_shape_of(sizes, base_shape().size(), 0)).abs();
}
torch::Tensor FoldedDistribution::log_density(const torch::Tensor& v) const {
  return torch::logaddexp(base_->log_prob(v), base_->log_prob(-v));
}
void FoldedDistribution::check_params(const CheckContext& ctx) const { check_part(ctx, *base_); }

}  // namespace ppl::dist
