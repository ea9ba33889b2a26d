// The parameter store.
#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/archive.hpp>
#include <ppl/core/check.hpp>
#include <ppl/core/param_store.hpp>
#include <ppl/transforms/biject_to.hpp>
#include <ppl/transforms/transform.hpp>

namespace ppl {

// ------------------------------------------------------------------ constraints

torch::Tensor constrain(const torch::Tensor& u, const constraints::Constraint& c) {
  if (c.kind() == constraints::Constraint::Kind::real) return u;
  return transforms::biject_to(c)->forward(u);
}

torch::Tensor unconstrain(const torch::Tensor& x, const constraints::Constraint& c) {
  if (c.kind() == constraints::Constraint::Kind::real) return x;
  return transforms::biject_to(c)->inverse(x);
}

// ------------------------------------------------------------------ ParamStore

ParamStore& param_store() {
  static ParamStore store;
  return store;
}

ParamStore::Entry ParamStore::make_entry(torch::Tensor unconstrained, const constraints::Constraint& c,
                                         std::string origin) {
  Entry e{std::move(unconstrained), c, nullptr, std::move(origin)};
  if (c.kind() != constraints::Constraint::Kind::real) e.transform = transforms::biject_to(c);
  return e;
}

torch::Tensor ParamStore::value_of(const Entry& e) {
  return e.transform ? e.transform->forward(e.unconstrained) : e.unconstrained;
}

namespace {
std::string origin_of(const SourceLocation& location) {
  auto where = location.short_string();
  return where.empty() ? std::string("an unknown place") : where;
}
}  // namespace

torch::Tensor ParamStore::get_or_create(const std::string& name, const torch::Tensor& init,
                                        const constraints::Constraint& c, const SourceLocation& location) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    if (!init.defined())
      throw ArgumentError(fmt::format("param: \"{}\" is not in the param store and has no initial value", name));
    const CheckContext ctx{"param", name, &location};
    if (c.is_discrete())
      throw ArgumentError(fmt::format("param: the constraint {} is discrete, but a learnable parameter needs one "
                                      "with a bijection from the reals{}",
                                      c.to_string(), ctx.suffix()));
    auto entry = make_entry({}, c, origin_of(location));
    if (validation_enabled()) check::satisfies(ctx, "init", init, c);
    torch::Tensor u;
    {
      torch::NoGradGuard no_grad;
      u = entry.transform ? entry.transform->inverse(init.detach()) : init.detach();
      if (entry.transform && validation_enabled()) {
        // On the boundary (a probability of 1, a zero on a Cholesky diagonal)
        // the unconstrained value is infinite.
        auto finite = torch::isfinite(u);
        for (int64_t i = 0; i < entry.transform->domain_event_rank(); ++i) finite = finite.all(-1);
        check::events(ctx, "init", init, finite, c.event_rank(),
                      fmt::format("{}, off the boundary (its unconstrained value is not finite)", c.describe()));
      }
      u = u.clone();
    }
    u.set_requires_grad(true);
    entry.unconstrained = u;
    it = entries_.emplace(name, std::move(entry)).first;
    order_.push_back(name);
    return value_of(it->second);
  }
  const auto& e = it->second;
  if (e.constraint != c)
    throw ArgumentError(fmt::format("param: \"{}\" was created with constraint {} ({}), but is asked for with "
                                    "constraint {} ({})",
                                    name, e.constraint.to_string(), e.origin, c.to_string(), origin_of(location)));
  auto value = value_of(e);
  if (init.defined() && init.sizes() != value.sizes())
    throw ShapeError(fmt::format("param: \"{}\" was created with shape {} ({}), but is asked for with an init of "
                                 "shape {} ({})",
                                 name, shape_string(value.sizes()), e.origin, shape_string(init.sizes()),
                                 origin_of(location)));
  return value;
}

void ParamStore::bind(const std::string& name, torch::Tensor tensor) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    entries_.emplace(name, make_entry(tensor, constraints::real, "a module"));
    order_.push_back(name);
    return;
  }
  auto& e = it->second;
  if (e.unconstrained.is_same(tensor)) return;
  if (e.unconstrained.sizes() != tensor.sizes())
    throw ShapeError(fmt::format("module: parameter \"{}\" has shape {}, but the param store holds shape {}", name,
                                 shape_string(tensor.sizes()), shape_string(e.unconstrained.sizes())));
  {
    torch::NoGradGuard no_grad;
    tensor.copy_(e.unconstrained);
  }
  e = make_entry(tensor, constraints::real, "a module");
}

torch::Tensor ParamStore::at(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end())
    throw SiteError(fmt::format("param_store: no parameter named \"{}\" ({} parameters stored)", name, entries_.size()));
  return value_of(it->second);
}

constraints::Constraint ParamStore::constraint(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) throw SiteError(fmt::format("param_store: no parameter named \"{}\"", name));
  return it->second.constraint;
}

torch::Tensor ParamStore::unconstrained(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) throw SiteError(fmt::format("param_store: no parameter named \"{}\"", name));
  return it->second.unconstrained;
}

bool ParamStore::contains(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return entries_.count(name) > 0;
}

std::vector<std::string> ParamStore::names() const {
  std::lock_guard lock(mutex_);
  return order_;
}

std::vector<torch::Tensor> ParamStore::parameters(const std::vector<std::string>& names) const {
  std::lock_guard lock(mutex_);
  std::vector<torch::Tensor> out;
  for (const auto& n : names.empty() ? order_ : names) {
    auto it = entries_.find(n);
    if (it == entries_.end()) throw SiteError(fmt::format("param_store: no parameter named \"{}\"", n));
    out.push_back(it->second.unconstrained);
  }
  return out;
}

size_t ParamStore::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void ParamStore::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
  order_.clear();
}

namespace {
constexpr const char* kStoreKind = "ppl.param_store";
}  // namespace

TensorArchive ParamStore::to_archive() const {
  TensorArchive archive;
  nlohmann::json constraints = nlohmann::json::object();
  {
    std::lock_guard lock(mutex_);
    for (const auto& name : order_) {
      const auto& e = entries_.at(name);
      archive.tensors.emplace_back(name, e.unconstrained.detach().clone());
      constraints[name] = e.constraint.to_json();
    }
  }
  archive.metadata["kind"] = kStoreKind;
  archive.metadata["constraints"] = constraints;
  return archive;
}

void ParamStore::load(const TensorArchive& archive, const std::string& source) {
  const auto kind = archive.metadata.value("kind", std::string(kStoreKind));
  if (kind != kStoreKind)
    throw Error(fmt::format("param_store: {} holds a \"{}\", not a parameter store (\"{}\")", source, kind,
                            kStoreKind));
  const auto constraints = archive.metadata.value("constraints", nlohmann::json::object());
  // Check every name before changing any, so a bad archive leaves the store as it was.
  std::vector<constraints::Constraint> parsed;
  parsed.reserve(archive.tensors.size());
  std::lock_guard lock(mutex_);
  for (const auto& [name, t] : archive.tensors) {
    // Archives name a constraint ("positive") or give it with its bounds.
    try {
      parsed.push_back(constraints.contains(name) ? constraints::Constraint::from_json(constraints.at(name))
                                                  : constraints::real);
    } catch (const Error& e) {
      throw Error(fmt::format("param_store: \"{}\" in {}: {}", name, source, e.what()));
    }
    auto it = entries_.find(name);
    if (it != entries_.end() && it->second.unconstrained.sizes() != t.sizes())
      throw ShapeError(fmt::format("param_store: \"{}\" in {} has shape {}, but the store holds shape {}", name,
                                   source, shape_string(t.sizes()), shape_string(it->second.unconstrained.sizes())));
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < archive.tensors.size(); ++i) {
    const auto& [name, t] = archive.tensors[i];
    auto it = entries_.find(name);
    if (it != entries_.end()) {
      it->second.unconstrained.copy_(t);
      const auto origin = it->second.constraint == parsed[i] ? it->second.origin : "loaded from " + source;
      it->second = make_entry(it->second.unconstrained, parsed[i], origin);
    } else {
      auto u = t.detach().clone();
      u.set_requires_grad(true);
      entries_.emplace(name, make_entry(u, parsed[i], "loaded from " + source));
      order_.push_back(name);
    }
  }
}

void ParamStore::save(const std::filesystem::path& path) const { save_archive(to_archive(), path); }

void ParamStore::load(const std::filesystem::path& path) { load(load_archive(path), path.string()); }

}  // namespace ppl
