// The Distribution base class: shapes, checks, sampling, masking and the JSON form.
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/tensor_json.hpp>
#include <ppl/dist/distribution.hpp>

namespace ppl::dist {

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
  options_ = params_[0].options();
}

void Distribution::set_shape(std::vector<int64_t> base_shape, torch::TensorOptions options) {
  base_shape_ = std::move(base_shape);
  options_ = options;
}

torch::Tensor Distribution::mean() const { no_moment("mean"); }
torch::Tensor Distribution::variance() const { no_moment("variance"); }
void Distribution::no_moment(std::string_view what) const {
  throw ArgumentError(fmt::format("{}: the {} is not available (no finite closed form for this family)",
                                  type_name(), what));
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

torch::TensorOptions Distribution::options() const { return options_; }

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
  auto in_support = sup.check(value);
  if (in_support.all().item<bool>()) return;
  auto m = mask_;
  if (mask.defined()) {
    std::vector<int64_t> aligned = mask.sizes().vec();
    aligned.insert(aligned.end(), event_dims_, 1);
    auto given = mask.to(torch::kBool).reshape(aligned);
    m = m.defined() ? m.logical_and(given) : given;
  }
  if (m.defined()) {
    // Masks are aligned with the base shape; a multivariate base's value has
    // its own trailing dimensions, over which the mask is constant (up to
    // those the support's own events span).
    const auto extra = static_cast<int64_t>(base_event_shape().size()) - sup.event_rank();
    for (int64_t i = 0; i < extra; ++i) m = m.unsqueeze(-1);
    in_support = in_support.logical_or(m.logical_not());
  }
  check::events(ctx, "value", value, in_support, sup.event_rank(), fmt::format("{} (the support)", sup.describe()));
}

torch::Tensor Distribution::support_values() const {
  throw ArgumentError(fmt::format("{}: enumerate_support is not available: its support {} is not a finite set "
                                  "(Bernoulli, Categorical, OneHotCategorical, DiscreteUniform and Binomial can "
                                  "be enumerated)",
                                  type_name(), support().describe()));
}

torch::Tensor Distribution::enumerate_support(bool expand) const {
  if (event_dims_ > 0)
    throw ArgumentError(fmt::format("{}: enumerate_support over the {} event dimension{} added by to_event is not "
                                    "available (the support would be their cartesian product); enumerate a batch "
                                    "instead",
                                    type_name(), event_dims_, event_dims_ == 1 ? "" : "s"));
  check_args({type_name()});
  const auto values = support_values();
  const auto n = values.size(0);
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), base_shape_.size(), 1);
  const auto atom = base_event_shape();
  shape.insert(shape.end(), atom.begin(), atom.end());
  auto out = values.reshape(shape);
  if (!expand) return out;
  return out.expand(this->shape({n}));
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

std::shared_ptr<Distribution> Distribution::expand_ptr(c10::IntArrayRef batch_shape) const {
  auto copy = clone();
  const std::vector<int64_t> event(base_shape_.end() - event_dims_, base_shape_.end());
  std::vector<int64_t> base(batch_shape.begin(), batch_shape.end());
  base.insert(base.end(), event.begin(), event.end());
  try {
    if (base.size() < base_shape_.size() || at::infer_size(base, base_shape_) != base) throw ShapeError("");
    copy->expand_base(base);
  } catch (const std::exception&) {
    throw ShapeError(fmt::format("{}: cannot expand batch shape {} to {}", type_name(),
                                 shape_string(this->batch_shape()), shape_string(batch_shape)));
  }
  copy->base_shape_ = base;
  return copy;
}

void Distribution::expand_base(const std::vector<int64_t>& base) {
  const auto specs = param_specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto s = params_[i].sizes().vec();
    std::vector<int64_t> target = base;
    target.insert(target.end(), s.end() - specs[i].event_rank, s.end());
    params_[i] = params_[i].expand(target);
  }
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
  const auto children = parts();
  if (!children.empty()) {
    nlohmann::json p = nlohmann::json::object();
    for (const auto& [name, d] : children) p[name] = d->to_json();
    j["parts"] = std::move(p);
  }
  return j;
}

}  // namespace ppl::dist
