// Distribution base class, the JSON factory and analytic KL divergences.
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/tensor_json.hpp>
#include <ppl/dist.hpp>

namespace ppl::dist {

// ------------------------------------------------------------------ Constraint

std::string Constraint::name() const {
  switch (kind) {
    case Kind::real: return "real";
    case Kind::boolean: return "boolean";
    case Kind::unit_interval: return "unit_interval";
    case Kind::positive: return "positive";
    case Kind::interval: return "interval";
    case Kind::integer_interval: return "integer_interval";
  }
  return "?";
}

std::string Constraint::describe() const {
  auto bound = [](const torch::Tensor& t) {
    if (t.numel() == 1) return fmt::format("{:g}", t.detach().cpu().item<double>());
    return std::string(t.numel() == 0 ? "?" : "its bound");
  };
  switch (kind) {
    case Kind::real: return "a real number";
    case Kind::boolean: return "0 or 1";
    case Kind::unit_interval: return "in [0, 1]";
    case Kind::positive: return "positive";
    case Kind::interval: return fmt::format("in [{}, {})", bound(lower), bound(upper));
    case Kind::integer_interval:
      return fmt::format("an integer in [{}, {}]", bound(lower), bound(upper));
  }
  return "?";
}

torch::Tensor Constraint::check(const torch::Tensor& v) const {
  switch (kind) {
    case Kind::real: return v == v;
    case Kind::boolean: return (v == 0).logical_or(v == 1);
    case Kind::unit_interval: return (v >= 0).logical_and(v <= 1);
    case Kind::positive: return v > 0;
    case Kind::interval: return (v >= lower).logical_and(v < upper);
    case Kind::integer_interval:
      return (v == torch::floor(v)).logical_and(v >= lower).logical_and(v <= upper);
  }
  return v == v;
}

// ------------------------------------------------------------------ Distribution

namespace {
/// A 0-dim tensor holding `v`, shared by the distributions built with the
/// same number on this thread (`Normal(0.0, 1.0)` in a loop allocates
/// nothing after the first time). Parameters are never written in place.
torch::Tensor number_tensor(double v, const torch::TensorOptions& opts) {
  struct Entry {
    double value;
    c10::ScalarType dtype;
    c10::Device device;
    torch::Tensor tensor;
  };
  constexpr size_t kSize = 16;
  thread_local std::vector<Entry> cache;
  thread_local size_t next = 0;
  const auto dtype = c10::typeMetaToScalarType(opts.dtype());
  const auto device = opts.device();
  for (const auto& e : cache)
    if (std::memcmp(&e.value, &v, sizeof v) == 0 && e.dtype == dtype && e.device == device) return e.tensor;
  auto t = at::scalar_tensor(v, opts.requires_grad(false));
  if (cache.size() < kSize) cache.push_back({v, dtype, device, t});
  else cache[next++ % kSize] = {v, dtype, device, t};
  return t;
}
}  // namespace

std::vector<torch::Tensor> Distribution::broadcast_args(std::string_view who, std::vector<Arg> args,
                                                        std::vector<int> event_ranks) {
  event_ranks.resize(args.size(), 0);
  torch::TensorOptions opts = torch::TensorOptions().dtype(torch::get_default_dtype());
  for (const auto& a : args) {
    if (a.tensor.defined() && torch::isFloatingType(a.tensor.scalar_type())) {
      opts = a.tensor.options();
      break;
    }
  }
  std::vector<torch::Tensor> tensors;
  tensors.reserve(args.size());
  for (auto& a : args) {
    if (a.number) {
      tensors.push_back(number_tensor(*a.number, opts));
    } else {
      if (!a.tensor.defined())
        throw ArgumentError(fmt::format("{}: a parameter is an undefined tensor", who));
      tensors.push_back(torch::isFloatingType(a.tensor.scalar_type()) ? a.tensor
                                                                      : a.tensor.to(opts.dtype()));
    }
  }
  // Broadcast the batch parts; parameters with an event rank keep their tail.
  std::vector<int64_t> batch;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto s = tensors[i].sizes().vec();
    if (static_cast<int64_t>(s.size()) < event_ranks[i])
      throw ShapeError(fmt::format("{}: parameter {} has shape {}, but must have at least {} dimension",
                                   who, i, shape_string(s), event_ranks[i]));
    std::vector<int64_t> b(s.begin(), s.end() - event_ranks[i]);
    try {
      batch = at::infer_size(batch, b);
    } catch (const c10::Error&) {
      throw ShapeError(fmt::format("{}: parameter shapes {} and {} do not broadcast", who,
                                   shape_string(batch), shape_string(b)));
    }
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto s = tensors[i].sizes().vec();
    std::vector<int64_t> target = batch;
    target.insert(target.end(), s.end() - event_ranks[i], s.end());
    if (s != target) tensors[i] = tensors[i].expand(target);
  }
  return tensors;
}

void Distribution::set_params(std::vector<torch::Tensor> params) {
  params_ = std::move(params);
  const auto specs = param_specs();
  PPL_ASSERT(specs.size() == params_.size());
  const auto s = params_[0].sizes().vec();
  base_shape_.assign(s.begin(), s.end() - specs[0].event_rank);
}

std::vector<int64_t> Distribution::batch_shape() const {
  return {base_shape_.begin(), base_shape_.end() - event_dims_};
}
std::vector<int64_t> Distribution::event_shape() const {
  std::vector<int64_t> e(base_shape_.end() - event_dims_, base_shape_.end());
  const auto atom = base_event_shape();
  e.insert(e.end(), atom.begin(), atom.end());
  return e;
}
std::vector<int64_t> Distribution::shape(c10::IntArrayRef sample_shape) const {
  std::vector<int64_t> s(sample_shape.begin(), sample_shape.end());
  s.insert(s.end(), base_shape_.begin(), base_shape_.end());
  const auto atom = base_event_shape();
  s.insert(s.end(), atom.begin(), atom.end());
  return s;
}

torch::TensorOptions Distribution::options() const { return params_.at(0).options(); }

std::vector<std::pair<std::string, torch::Tensor>> Distribution::named_params() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  const auto specs = param_specs();
  for (size_t i = 0; i < specs.size(); ++i) out.emplace_back(specs[i].name, params_[i]);
  return out;
}

void Distribution::check_args(const CheckContext& ctx) const {
  if (checked_ || !validation_enabled()) return;
  check_params(ctx);
  checked_ = true;
}

void Distribution::check_value(const CheckContext& ctx, const torch::Tensor& value, const torch::Tensor& mask) const {
  check::defined(ctx, "value", value);
  const auto event = event_shape();
  const auto vs = value.sizes().vec();
  const auto ne = static_cast<int64_t>(event.size());
  bool ok = static_cast<int64_t>(vs.size()) >= ne && std::equal(event.begin(), event.end(), vs.end() - ne);
  if (ok) {
    try {
      at::infer_size(std::vector<int64_t>(vs.begin(), vs.end() - ne), batch_shape());
    } catch (const c10::Error&) {
      ok = false;
    }
  }
  if (!ok)
    throw ShapeError(fmt::format("{}: value has shape {}, but the distribution has batch shape {} and "
                                 "event shape {}{}",
                                 type_name(), shape_string(vs), shape_string(batch_shape()),
                                 shape_string(event), ctx.suffix()));
  if (!validation_enabled()) return;
  const auto sup = support();
  auto in_support = sup.check(value.detach());
  auto m = mask_;
  if (mask.defined()) {
    std::vector<int64_t> aligned = mask.sizes().vec();
    aligned.insert(aligned.end(), event_dims_, 1);
    auto given = mask.to(torch::kBool).reshape(aligned);
    m = m.defined() ? m.logical_and(given) : given;
  }
  if (m.defined()) {
    // Masks are aligned with the base shape; a multivariate base's value has
    // its own trailing dimensions, over which the mask is constant.
    for (size_t i = 0; i < base_event_shape().size(); ++i) m = m.unsqueeze(-1);
    in_support = in_support.logical_or(m.logical_not());
  }
  check::elementwise(ctx, "value", value, in_support, fmt::format("{} (the support)", sup.describe()));
}

torch::Tensor Distribution::sample(c10::IntArrayRef sample_shape) const {
  check_args({type_name()});
  torch::NoGradGuard no_grad;
  return draw(shape(sample_shape)).detach();
}

torch::Tensor Distribution::rsample(c10::IntArrayRef sample_shape) const {
  if (!has_rsample())
    throw ArgumentError(fmt::format("{}: rsample is not available (the distribution is not "
                                    "reparameterisable); use sample() and a score-function estimator",
                                    type_name()));
  check_args({type_name()});
  return draw(shape(sample_shape));
}

torch::Tensor Distribution::log_prob(const torch::Tensor& value) const {
  check_args({type_name()});
  auto lp = log_density_of(value);
  if (mask_.defined()) lp = torch::where(mask_, lp, torch::zeros({}, lp.options()));
  if (event_dims_ > 0) {
    std::vector<int64_t> dims;
    for (int64_t i = 1; i <= event_dims_; ++i) dims.push_back(-i);
    lp = lp.sum(dims);
  }
  return lp;
}

std::shared_ptr<Distribution> Distribution::expand(c10::IntArrayRef batch_shape) const {
  auto copy = clone();
  const std::vector<int64_t> event(base_shape_.end() - event_dims_, base_shape_.end());
  std::vector<int64_t> base(batch_shape.begin(), batch_shape.end());
  base.insert(base.end(), event.begin(), event.end());
  const auto specs = param_specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    auto s = params_[i].sizes().vec();
    std::vector<int64_t> target = base;
    target.insert(target.end(), s.end() - specs[i].event_rank, s.end());
    try {
      copy->params_[i] = params_[i].expand(target);
    } catch (const c10::Error&) {
      throw ShapeError(fmt::format("{}: cannot expand batch shape {} to {}", type_name(),
                                   shape_string(this->batch_shape()), shape_string(batch_shape)));
    }
  }
  copy->base_shape_ = base;
  return copy;
}

std::shared_ptr<Distribution> Distribution::to_event_ptr(int64_t n) const {
  const auto batch = static_cast<int64_t>(batch_shape().size());
  if (n < 0 || n > batch)
    throw ShapeError(fmt::format("{}: to_event({}) needs {} batch dimensions, but the batch shape is {}",
                                 type_name(), n, n, shape_string(batch_shape())));
  auto copy = clone();
  copy->event_dims_ += n;
  return copy;
}

std::shared_ptr<Distribution> Distribution::mask_ptr(const torch::Tensor& m) const {
  auto copy = clone();
  auto mb = m.to(torch::kBool);
  try {
    at::infer_size(mb.sizes(), batch_shape());
  } catch (const c10::Error&) {
    throw ShapeError(fmt::format("{}: mask has shape {}, which does not broadcast to the batch shape {}",
                                 type_name(), shape_string(m.sizes()), shape_string(batch_shape())));
  }
  // Stored aligned with the base shape: trailing 1s over the event dimensions,
  // so the mask applies elementwise before the event sum (as Pyro's mask).
  std::vector<int64_t> aligned = mb.sizes().vec();
  aligned.insert(aligned.end(), event_dims_, 1);
  mb = mb.reshape(aligned);
  copy->mask_ = mask_.defined() ? mask_.logical_and(mb) : mb;
  return copy;
}

void Distribution::options_to_json(nlohmann::json&) const {}

nlohmann::json Distribution::to_json() const {
  nlohmann::json j;
  j["type"] = std::string(type_name());
  nlohmann::json params = nlohmann::json::object();
  for (auto& [name, t] : named_params()) params[name] = tensor_to_json(t);
  j["params"] = std::move(params);
  j["event_dims"] = event_dims_;
  j["mask"] = mask_.defined() ? tensor_to_json(mask_) : nlohmann::json(nullptr);
  nlohmann::json options = nlohmann::json::object();
  options_to_json(options);
  j["options"] = std::move(options);
  return j;
}

std::shared_ptr<Distribution> from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j.contains("params"))
    throw Error("distribution JSON: expected an object with \"type\" and \"params\"");
  const auto type = j.at("type").get<std::string>();
  const auto& p = j.at("params");
  auto get = [&](const char* name) -> torch::Tensor {
    if (!p.contains(name))
      throw Error(fmt::format("distribution JSON: {} has no parameter \"{}\"", type, name));
    return tensor_from_json(p.at(name));
  };
  auto has = [&](const char* name) { return p.contains(name); };
  const auto options = j.value("options", nlohmann::json::object());
  std::shared_ptr<Distribution> d;
  if (type == "Normal") d = std::make_shared<Normal>(get("loc"), get("scale"));
  else if (type == "Laplace") d = std::make_shared<Laplace>(get("loc"), get("scale"));
  else if (type == "Uniform") d = std::make_shared<Uniform>(get("low"), get("high"));
  else if (type == "Beta") d = std::make_shared<Beta>(get("concentration1"), get("concentration0"));
  else if (type == "Gamma") d = std::make_shared<Gamma>(get("concentration"), get("rate"));
  else if (type == "Delta") d = std::make_shared<Delta>(get("v"), get("log_density"));
  else if (type == "Bernoulli")
    d = has("logits") ? std::make_shared<Bernoulli>(Logits{get("logits")})
                      : std::make_shared<Bernoulli>(Probs{get("probs")});
  else if (type == "GaussianMixture")
    d = has("logits") ? std::make_shared<GaussianMixture>(Logits{get("logits")}, get("loc"), get("scale_tril"))
                      : std::make_shared<GaussianMixture>(Probs{get("probs")}, get("loc"), get("scale_tril"));
  else if (type == "Categorical")
    d = has("logits") ? std::make_shared<Categorical>(Logits{get("logits")})
                      : std::make_shared<Categorical>(Probs{get("probs")});
  else if (type == "ContinuousBernoulli")
    d = has("logits") ? std::make_shared<ContinuousBernoulli>(Logits{get("logits")})
                      : std::make_shared<ContinuousBernoulli>(Probs{get("probs")});
  else if (type == "RelaxedBernoulli") {
    const bool st = options.value("straight_through", false);
    d = has("logits") ? std::make_shared<RelaxedBernoulli>(get("temperature"), Logits{get("logits")}, st)
                      : std::make_shared<RelaxedBernoulli>(get("temperature"), Probs{get("probs")}, st);
  } else {
    throw Error(fmt::format("distribution JSON: unknown distribution type \"{}\"", type));
  }
  // The mask is stored aligned with the base shape: apply it before to_event.
  if (j.contains("mask") && !j.at("mask").is_null()) d = d->mask_ptr(tensor_from_json(j.at("mask")));
  const int64_t event_dims = j.value("event_dims", 0);
  if (event_dims > 0) d = d->to_event_ptr(event_dims);
  return d;
}

// ------------------------------------------------------------------ KL

namespace {

torch::Tensor sum_event(const Distribution& p, torch::Tensor kl) {
  if (p.mask_tensor().defined()) kl = torch::where(p.mask_tensor(), kl, torch::zeros({}, kl.options()));
  if (p.event_dims() > 0) {
    std::vector<int64_t> dims;
    for (int64_t i = 1; i <= p.event_dims(); ++i) dims.push_back(-i);
    kl = kl.sum(dims);
  }
  return kl;
}

template <class P, class Q = P>
std::pair<const P*, const Q*> as(const Distribution& p, const Distribution& q) {
  return {dynamic_cast<const P*>(&p), dynamic_cast<const Q*>(&q)};
}

torch::Tensor lbeta(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::lgamma(a) + torch::lgamma(b) - torch::lgamma(a + b);
}

std::optional<torch::Tensor> kl_elementwise(const Distribution& p, const Distribution& q) {
  if (auto [a, b] = as<Normal>(p, q); a && b) {
    auto var_ratio = (a->scale() / b->scale()).pow(2);
    auto t1 = ((a->loc() - b->loc()) / b->scale()).pow(2);
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log());
  }
  if (auto [a, b] = as<Laplace>(p, q); a && b) {
    auto ratio = a->scale() / b->scale();
    auto diff = (a->loc() - b->loc()).abs();
    return -ratio.log() + diff / b->scale() + ratio * torch::exp(-diff / a->scale()) - 1;
  }
  if (auto [a, b] = as<Bernoulli>(p, q); a && b) {
    auto lp = a->logits(), lq = b->logits();
    auto pp = torch::sigmoid(lp);
    return pp * (torch::log_sigmoid(lp) - torch::log_sigmoid(lq)) +
           (1 - pp) * (torch::log_sigmoid(-lp) - torch::log_sigmoid(-lq));
  }
  if (auto [a, b] = as<Categorical>(p, q); a && b) {
    auto lp = a->logits(), lq = b->logits();
    auto t = a->probs() * (lp - lq);
    t = torch::where(a->probs() == 0, torch::zeros({}, t.options()), t);
    return t.sum(-1);
  }
  if (auto [a, b] = as<Uniform>(p, q); a && b) {
    auto kl = ((b->high() - b->low()) / (a->high() - a->low())).log();
    auto outside = (b->low() > a->low()).logical_or(b->high() < a->high());
    return torch::where(outside, torch::full({}, INFINITY, kl.options()), kl);
  }
  if (auto [a, b] = as<Beta>(p, q); a && b) {
    auto a1 = a->concentration1(), b1 = a->concentration0();
    auto a2 = b->concentration1(), b2 = b->concentration0();
    return lbeta(a2, b2) - lbeta(a1, b1) + (a1 - a2) * torch::digamma(a1) +
           (b1 - b2) * torch::digamma(b1) + (a2 - a1 + b2 - b1) * torch::digamma(a1 + b1);
  }
  if (auto [a, b] = as<Gamma>(p, q); a && b) {
    auto ap = a->concentration(), bp = a->rate(), aq = b->concentration(), bq = b->rate();
    return (ap - aq) * torch::digamma(ap) - torch::lgamma(ap) + torch::lgamma(aq) +
           aq * (bp.log() - bq.log()) + ap * (bq - bp) / bp;
  }
  if (auto [a, b] = as<ContinuousBernoulli>(p, q); a && b) {
    auto lp = a->logits(), lq = b->logits();
    auto m = a->mean();
    return m * (lp - lq) + torch::log_sigmoid(-lp) - torch::log_sigmoid(-lq) + a->log_normalizer() -
           b->log_normalizer();
  }
  return std::nullopt;
}

}  // namespace

bool has_kl(const Distribution& p, const Distribution& q) {
  if (p.type_name() != q.type_name()) return false;
  static const std::array<std::string_view, 8> kinds = {"Normal", "Laplace", "Bernoulli", "Categorical",
                                                        "Uniform", "Beta", "Gamma", "ContinuousBernoulli"};
  return std::find(kinds.begin(), kinds.end(), p.type_name()) != kinds.end();
}

torch::Tensor kl(const Distribution& p, const Distribution& q) {
  if (p.event_dims() != q.event_dims())
    throw ShapeError(fmt::format("kl: {} has {} event dimensions but {} has {}", p.type_name(),
                                 p.event_dims(), q.type_name(), q.event_dims()));
  auto k = kl_elementwise(p, q);
  if (!k)
    throw ArgumentError(fmt::format("kl: no closed form for KL({} || {})", p.type_name(), q.type_name()));
  return sum_event(p, *k);
}

}  // namespace ppl::dist
