// The handler stack, sites, plates and the built-in handlers.
#include <algorithm>

#include <fmt/format.h>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/handlers.hpp>
#include <ppl/core/param_store.hpp>
#include <ppl/core/plate.hpp>
#include <ppl/core/sites.hpp>
#include <ppl/dist/delta.hpp>

namespace ppl {

std::string_view to_string(SiteKind kind) {
  switch (kind) {
    case SiteKind::sample: return "sample";
    case SiteKind::observe: return "observe";
    case SiteKind::param: return "param";
    case SiteKind::deterministic: return "deterministic";
  }
  return "?";
}

// ------------------------------------------------------------------ the stack

namespace {
thread_local std::vector<Handler*> t_stack;
thread_local std::vector<int64_t> t_plate_dims;
thread_local std::vector<std::string> t_plate_names;

/// A site's mask (its own and the mask handlers') must broadcast with the
/// batch shape of its distribution, as the plates have made it.
void check_mask(const Message& msg) {
  if (!msg.mask.defined() || !msg.dist) return;
  const auto batch = msg.dist->batch_shape();
  bool ok = true;
  try {
    at::infer_size(msg.mask.sizes(), batch);
  } catch (const c10::Error&) {
    ok = false;
  }
  if (!ok)
    throw ShapeError(fmt::format("{}: mask has shape {}, which does not broadcast with the batch shape {} of its {}",
                                 describe_site(msg), shape_string(msg.mask.sizes()), shape_string(batch),
                                 msg.dist->type_name()));
}

void default_process(Message& msg) {
  check_mask(msg);
  if (msg.value.defined()) return;
  switch (msg.kind) {
    case SiteKind::sample:
      if (msg.dist->has_rsample()) {
        msg.value = msg.dist->rsample();
        msg.reparameterised = true;
      } else {
        msg.value = msg.dist->sample();
      }
      break;
    case SiteKind::observe:
    case SiteKind::deterministic:
      PPL_ASSERT(false && "observe and deterministic sites carry their value");
      break;
    case SiteKind::param:
      if (msg.module_param) {
        param_store().bind(msg.name, msg.init);
        msg.value = msg.init;
      } else {
        msg.value = param_store().get_or_create(msg.name, msg.init, msg.constraint, msg.location);
      }
      break;
  }
}
}  // namespace

HandlerScope::HandlerScope(Handler& handler) : handler_(&handler) { t_stack.push_back(handler_); }
HandlerScope::~HandlerScope() {
  // Scopes are strictly nested (RAII), so the top is this handler.
  if (!t_stack.empty() && t_stack.back() == handler_) t_stack.pop_back();
}

const std::vector<Handler*>& handler_stack() { return t_stack; }

void apply_stack(Message& msg) {
  const auto n = t_stack.size();
  size_t visited = 0;
  for (size_t i = n; i-- > 0;) {
    ++visited;
    t_stack[i]->process(msg);
    if (msg.stop) break;
  }
  default_process(msg);
  for (size_t i = n; i-- > n - visited;) t_stack[i]->postprocess(msg);
}

// ------------------------------------------------------------------ sites

namespace {
Message make_message(const std::string& name, SiteKind kind, const dist::Distribution& d, SampleOptions options,
                     const std::source_location& location) {
  Message msg;
  msg.name = name;
  msg.kind = kind;
  msg.location = SourceLocation::from(location);
  d.check_args(msg.context(d.type_name()));
  msg.dist = d.clone();
  if (options.mask.defined()) msg.mask = options.mask.to(torch::kBool);
  msg.options = std::move(options);
  return msg;
}
}  // namespace

torch::Tensor sample(const std::string& name, const dist::Distribution& d, SampleOptions options,
                     std::source_location location) {
  if (options.obs.defined()) {
    const auto x = std::move(options.obs);
    options.obs = torch::Tensor();
    return observe(name, d, x, std::move(options), location);
  }
  auto msg = make_message(name, SiteKind::sample, d, std::move(options), location);
  apply_stack(msg);
  return msg.value;
}

torch::Tensor observe(const std::string& name, const dist::Distribution& d, const torch::Tensor& value,
                      SampleOptions options, std::source_location location) {
  auto msg = make_message(name, SiteKind::observe, d, std::move(options), location);
  check::defined(msg.context(d.type_name()), "observed value", value);
  msg.value = value;
  msg.observed = true;
  apply_stack(msg);
  msg.dist->check_value(msg.context(msg.dist->type_name()), msg.value, msg.mask);
  return msg.value;
}

void factor(const std::string& name, const torch::Tensor& log_weight, std::source_location location) {
  const CheckContext ctx{"factor", name};
  check::defined(ctx, "log_weight", log_weight);
  if (!log_weight.is_floating_point())
    throw ArgumentError(fmt::format("factor: log_weight is a {} tensor, but must be floating point (site \"{}\", {})",
                                    c10::toString(log_weight.scalar_type()), name,
                                    SourceLocation::from(location).short_string()));
  const auto at = torch::zeros_like(log_weight, log_weight.options().requires_grad(false));
  observe(name, dist::Delta(at, log_weight), at, {}, location);
}

torch::Tensor deterministic(const std::string& name, const torch::Tensor& value, std::source_location location) {
  Message msg;
  msg.name = name;
  msg.kind = SiteKind::deterministic;
  msg.location = SourceLocation::from(location);
  check::defined(msg.context("deterministic"), "value", value);
  msg.value = value;
  apply_stack(msg);
  return msg.value;
}

torch::Tensor param(const std::string& name, const torch::Tensor& init, const constraints::Constraint& constraint,
                    std::source_location location) {
  Message msg;
  msg.name = name;
  msg.kind = SiteKind::param;
  msg.location = SourceLocation::from(location);
  msg.init = init;
  msg.constraint = constraint;
  apply_stack(msg);
  return msg.value;
}

void register_module(const std::string& name, torch::nn::Module& module, std::source_location location) {
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    // Bound into the store by the default behaviour, under the name the
    // handlers leave (a scope prefixes it).
    Message msg;
    msg.name = name + "." + item.key();
    msg.kind = SiteKind::param;
    msg.location = SourceLocation::from(location);
    msg.init = item.value();
    msg.module_param = true;
    apply_stack(msg);
  }
}

// ------------------------------------------------------------------ plates

namespace {
PlateFrame make_frame(std::string name, int64_t size, const PlateOptions& options) {
  if (size < 0) throw ArgumentError(fmt::format("plate \"{}\": size is {}, but must be nonnegative", name, size));
  if (std::find(t_plate_names.begin(), t_plate_names.end(), name) != t_plate_names.end())
    throw SiteError(fmt::format("plate \"{}\": an enclosing plate has the same name; nested plates need names of "
                                "their own",
                                name));
  PlateFrame f{std::move(name), size, size, -1};
  if (options.subsample_size) {
    const auto s = *options.subsample_size;
    if (s <= 0 || s > size)
      throw ArgumentError(fmt::format("plate \"{}\": subsample_size is {}, but must be in [1, {}]", f.name, s, size));
    f.subsample_size = s;
  }
  if (options.dim) {
    if (*options.dim >= 0)
      throw ArgumentError(fmt::format("plate \"{}\": dim is {}, but must be negative", f.name, *options.dim));
    if (std::find(t_plate_dims.begin(), t_plate_dims.end(), *options.dim) != t_plate_dims.end())
      throw ArgumentError(fmt::format("plate \"{}\": dim {} is already used by an enclosing plate", f.name,
                                      *options.dim));
    f.dim = *options.dim;
  } else {
    int64_t d = -1;
    while (std::find(t_plate_dims.begin(), t_plate_dims.end(), d) != t_plate_dims.end()) --d;
    f.dim = d;
  }
  return f;
}
}  // namespace

Plate::Plate(std::string name, int64_t size, PlateOptions options)
    : frame_(make_frame(std::move(name), size, options)),
      indices_(frame_.subsample_size == frame_.size
                   ? torch::arange(frame_.size, torch::kLong)
                   : torch::randperm(frame_.size, random::generator_for(torch::kCPU), torch::kLong)
                         .narrow(0, 0, frame_.subsample_size)),
      scope_(*this) {
  t_plate_dims.push_back(frame_.dim);
  t_plate_names.push_back(frame_.name);
}

Plate::~Plate() {
  auto it = std::find(t_plate_dims.begin(), t_plate_dims.end(), frame_.dim);
  if (it != t_plate_dims.end()) t_plate_dims.erase(it);
  auto name = std::find(t_plate_names.begin(), t_plate_names.end(), frame_.name);
  if (name != t_plate_names.end()) t_plate_names.erase(name);
}

void Plate::process(Message& msg) {
  if (!msg.dist) return;  // param and deterministic sites have no batch
  msg.plates.insert(msg.plates.begin(), frame_);
  if (frame_.subsample_size != frame_.size)
    msg.scale *= static_cast<double>(frame_.size) / static_cast<double>(frame_.subsample_size);
  auto batch = msg.dist->batch_shape();
  const auto need = static_cast<size_t>(-frame_.dim);
  std::vector<int64_t> target(batch.size() < need ? need - batch.size() : 0, 1);
  target.insert(target.end(), batch.begin(), batch.end());
  auto& at = target[target.size() - need];
  if (at == 1) {
    at = frame_.subsample_size;
  } else if (at != frame_.subsample_size) {
    throw ShapeError(fmt::format("plate \"{}\" (size {}, dim {}): {} has batch shape {}, whose dim {} is {}, "
                                 "not {} or 1",
                                 frame_.name, frame_.subsample_size, frame_.dim, describe_site(msg), shape_string(batch),
                                 frame_.dim, at, frame_.subsample_size));
  }
  if (target != batch) msg.dist = msg.dist->expand_ptr(target);
}

// ------------------------------------------------------------------ handlers

namespace handlers {

TraceHandler::TraceHandler(bool score_sites) : score_sites_(score_sites), grad_mode_(torch::GradMode::is_enabled()) {}

void TraceHandler::postprocess(Message& msg) {
  // Trace::add throws SiteError on a duplicate name, naming both locations.
  Site s;
  s.name = msg.name;
  s.kind = msg.kind;
  s.dist = msg.dist;
  s.value = msg.value;
  s.observed = msg.observed;
  s.reparameterised = msg.reparameterised;
  s.plates = msg.plates;
  s.scale = msg.scale;
  s.scale_tensor = msg.scale_tensor;
  s.mask = msg.mask;
  s.options = msg.options;
  s.location = msg.location;
  s.enumeration = msg.enumeration;
  trace_.add(std::move(s));
  if (score_sites_ && trace_.sites().back().is_random()) {
    torch::AutoGradMode mode(grad_mode_);
    trace_.sites().back().log_prob();
  }
}

void ReplayHandler::process(Message& msg) {
  if (msg.kind != SiteKind::sample || msg.observed) return;
  const Site* s = trace_.find(msg.name);
  if (!s) return;
  const auto expected = msg.dist->shape();
  // Under enumeration a value may carry the guide's enumeration dims, which
  // the model's distribution need not have: it must only broadcast with it
  // (check_value below).
  if (!s->enumeration.active() && s->value.sizes() != c10::IntArrayRef(expected))
    throw ShapeError(fmt::format("replay: {} has shape {} in the replayed trace, but the program's "
                                 "distribution there has shape {} (batch {}, event {})",
                                 describe_site(msg), shape_string(s->value.sizes()), shape_string(expected),
                                 shape_string(msg.dist->batch_shape()), shape_string(msg.dist->event_shape())));
  // A replayed value is scored by the program's distribution: outside its
  // support the score would be meaningless (log(1/3) for a Categorical(3) at 7).
  msg.dist->check_value(msg.context(msg.dist->type_name()), s->value, msg.mask);
  msg.value = s->value;
  msg.reparameterised = s->reparameterised;
  if (s->enumeration.enumerated()) {
    msg.enumeration.dim = s->enumeration.dim;
    msg.enumeration.variable = s->enumeration.variable;
  }
}

void ConditionHandler::process(Message& msg) {
  if (!msg.dist || msg.kind == SiteKind::deterministic) return;
  auto it = data_.find(msg.name);
  if (it == data_.end()) return;
  used_.insert(msg.name);
  msg.value = it->second;
  msg.observed = true;
  msg.reparameterised = false;
  msg.dist->check_value(msg.context(msg.dist->type_name()), msg.value, msg.mask);
}

void ConditionHandler::check_all_used() const {
  std::vector<std::string> unused;
  for (const auto& [name, value] : data_)
    if (!used_.count(name)) unused.push_back(fmt::format("\"{}\"", name));
  if (!unused.empty())
    throw SiteError(fmt::format("condition: the program never visited {} {}; check the site names",
                                unused.size() == 1 ? "site" : "sites", fmt::join(unused, ", ")));
}

void BlockHandler::process(Message& msg) {
  if (hide_(msg)) msg.stop = true;
}

void ScaleHandler::process(Message& msg) {
  if (msg.kind == SiteKind::param) return;
  if (!factor_tensor_.defined()) {
    msg.scale *= factor_;
    return;
  }
  if (msg.dist) {
    const auto batch = msg.dist->batch_shape();
    try {
      at::infer_size(factor_tensor_.sizes(), batch);
    } catch (const c10::Error&) {
      throw ShapeError(fmt::format("scale: {}: the scale has shape {}, which does not broadcast with the batch shape {} "
                                   "of its {}",
                                   describe_site(msg), shape_string(factor_tensor_.sizes()), shape_string(batch),
                                   msg.dist->type_name()));
    }
  }
  msg.scale_tensor = msg.scale_tensor.defined() ? msg.scale_tensor * factor_tensor_ : factor_tensor_;
}

void SubstituteHandler::process(Message& msg) {
  if (msg.kind != SiteKind::param && !(msg.kind == SiteKind::sample && !msg.observed) &&
      msg.kind != SiteKind::deterministic)
    return;
  const auto it = values_.find(msg.name);
  if (it == values_.end()) return;
  if (msg.dist) msg.dist->check_value(msg.context(msg.dist->type_name()), it->second, msg.mask);
  msg.value = it->second;
  msg.reparameterised = false;
}

void DoHandler::process(Message& msg) {
  if (!msg.dist || msg.kind == SiteKind::deterministic) return;
  const auto it = values_.find(msg.name);
  if (it == values_.end()) return;
  msg.dist->check_value(msg.context(msg.dist->type_name()), it->second, msg.mask);
  msg.value = it->second;
  msg.kind = SiteKind::deterministic;  // fixed from outside: no density
  msg.observed = false;
  msg.reparameterised = false;
}

void UnconditionHandler::process(Message& msg) {
  if (!msg.dist || !(msg.kind == SiteKind::observe || msg.observed)) return;
  msg.kind = SiteKind::sample;
  msg.observed = false;
  msg.value = torch::Tensor();
}

void ScopeHandler::process(Message& msg) { msg.name = prefix_ + "/" + msg.name; }

void MaskHandler::process(Message& msg) {
  if (msg.kind == SiteKind::param) return;
  auto m = mask_.to(torch::kBool);
  msg.mask = msg.mask.defined() ? msg.mask.logical_and(m) : m;
}

}  // namespace handlers
}  // namespace ppl
