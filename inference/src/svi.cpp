// Adam with parameter groups, the SVI step and checkpoints.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <set>
#include <unordered_set>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/archive.hpp>
#include <ppl/core/check.hpp>
#include <ppl/core/param_store.hpp>
#include <ppl/core/reflect.hpp>
#include <ppl/core/random.hpp>
#include <ppl/infer/checkpoint.hpp>
#include <ppl/infer/svi.hpp>

#include "fused_update.hpp"
#include "longest_prefix.hpp"

// Plateau's fields, by name, for ppl::options_to_json / options_from_json.
BOOST_HANA_ADAPT_STRUCT(ppl::infer::Plateau, factor, patience, threshold, relative, cooldown);

namespace ppl::infer {

namespace {
/// Whether the single-pass loops of fused_update.hpp take `t`: contiguous,
/// on the CPU, float or double.
bool fusable(const torch::Tensor& t) {
  return t.device().is_cpu() && t.is_contiguous() &&
         (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble);
}

/// A saved state entry that must be one number; ShapeError naming it otherwise.
const torch::Tensor& scalar_state(const std::string& key, const torch::Tensor& t) {
  if (t.numel() != 1)
    throw ShapeError(fmt::format("Optimiser: the saved state \"{}\" has shape {}, but must be one number", key,
                                 shape_string(t.sizes())));
  return t;
}
}  // namespace

/// Saved Adam moments must have the shape of the parameter they belong to.
void Optimiser::check_moments(const std::string& name, const torch::Tensor& param, const Saved& saved) {
  if (saved.m.sizes() != param.sizes())
    throw ShapeError(fmt::format("Optimiser: parameter \"{}\" has shape {}, but its saved moments have shape {}", name,
                                 shape_string(param.sizes()), shape_string(saved.m.sizes())));
}

// ------------------------------------------------------------------ Adam JSON

void to_json(nlohmann::json& j, const Adam& a) {
  auto groups = nlohmann::json::array();
  for (const auto& g : a.groups) groups.push_back({{"prefix", g.prefix}, {"lr", g.lr}});
  j = {{"lr", a.lr},         {"beta1", a.beta1},
       {"beta2", a.beta2},   {"eps", a.eps},
       {"groups", groups},   {"baseline_lr", a.baseline_lr ? nlohmann::json(*a.baseline_lr) : nlohmann::json(nullptr)},
       {"clip_norm", a.clip_norm}, {"decay", a.decay},
       {"plateau", a.plateau ? options_to_json(*a.plateau) : nlohmann::json(nullptr)},
       {"min_lr", a.min_lr},
       {"rule", a.rule == Adam::Rule::rmsprop ? "rmsprop" : "adam"},
       {"alpha", a.alpha}};
}

void from_json(const nlohmann::json& j, Adam& a) {
  nlohmann::json known;
  to_json(known, Adam());
  if (!j.is_object()) throw Error("Adam: expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.contains(it.key())) throw Error(fmt::format("Adam: unknown key \"{}\"", it.key()));
  try {
    a.lr = j.value("lr", a.lr);
    a.beta1 = j.value("beta1", a.beta1);
    a.beta2 = j.value("beta2", a.beta2);
    a.eps = j.value("eps", a.eps);
    a.clip_norm = j.value("clip_norm", a.clip_norm);
    a.decay = j.value("decay", a.decay);
    a.min_lr = j.value("min_lr", a.min_lr);
    a.alpha = j.value("alpha", a.alpha);
    if (j.contains("rule")) {
      const auto rule = j.at("rule").get<std::string>();
      if (rule != "adam" && rule != "rmsprop")
        throw Error(fmt::format("Adam: rule is \"{}\", but must be \"adam\" or \"rmsprop\"", rule));
      a.rule = rule == "rmsprop" ? Adam::Rule::rmsprop : Adam::Rule::adam;
    }
    if (j.contains("plateau")) {
      const auto& p = j.at("plateau");
      if (p.is_null()) {
        a.plateau.reset();
      } else {
        if (!p.is_object()) throw Error("Adam: \"plateau\" must be an object or null");
        a.plateau = options_from_json<Plateau>(p, Plateau{}, "plateau.");
      }
    }
    if (j.contains("groups")) {
      a.groups.clear();
      for (const auto& g : j.at("groups")) a.groups.push_back({g.at("prefix").get<std::string>(), g.at("lr").get<double>()});
    }
    if (j.contains("baseline_lr")) {
      const auto& b = j.at("baseline_lr");
      a.baseline_lr = b.is_null() ? std::nullopt : std::optional<double>(b.get<double>());
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("Adam: {}", e.what()));
  }
}

// ------------------------------------------------------------------ Optimiser

Optimiser::Optimiser(Adam spec) : spec_(std::move(spec)) {
  auto positive = [](std::string_view what, double v) {
    if (!(v >= 0.0)) throw ArgumentError(fmt::format("Adam: {} is {}, but must be nonnegative", what, v));
  };
  positive("lr", spec_.lr);
  for (const auto& g : spec_.groups) positive(fmt::format("lr of group \"{}\"", g.prefix), g.lr);
  if (spec_.baseline_lr) positive("baseline_lr", *spec_.baseline_lr);
  positive("clip_norm", spec_.clip_norm);
  positive("min_lr", spec_.min_lr);
  if (!(spec_.decay > 0 && spec_.decay <= 1))
    throw ArgumentError(fmt::format("Adam: decay is {}, but must be in (0, 1]", spec_.decay));
  if (const auto& p = spec_.plateau) {
    if (!(p->factor > 0 && p->factor < 1))
      throw ArgumentError(fmt::format("Adam: plateau factor is {}, but must be in (0, 1)", p->factor));
    if (p->patience < 0) throw ArgumentError(fmt::format("Adam: plateau patience is {}, but must be nonnegative", p->patience));
    positive("plateau threshold", p->threshold);
    if (p->cooldown < 0) throw ArgumentError(fmt::format("Adam: plateau cooldown is {}, but must be nonnegative", p->cooldown));
  }
  if (!(spec_.beta1 >= 0 && spec_.beta1 < 1 && spec_.beta2 >= 0 && spec_.beta2 < 1))
    throw ArgumentError(fmt::format("Adam: betas are ({}, {}), but must be in [0, 1)", spec_.beta1, spec_.beta2));
  if (!(spec_.alpha >= 0 && spec_.alpha < 1))
    throw ArgumentError(fmt::format("RMSprop: alpha is {}, but must be in [0, 1)", spec_.alpha));
}

double Optimiser::learning_rate(const std::string& name, bool baseline) const {
  auto it = index_.find(name);
  return scheduled(it != index_.end() ? slots_[it->second].lr : base_rate(name, baseline));
}

double Optimiser::scheduled(double lr) const {
  if (lr <= spec_.min_lr) return lr;
  return std::max(lr * scale_, spec_.min_lr);
}

bool Optimiser::step_schedule(double loss) {
  if (std::isnan(loss)) throw ArgumentError("Optimiser::step_schedule: the loss is nan");
  scale_ *= spec_.decay;
  if (!spec_.plateau) return false;
  const auto& p = *spec_.plateau;
  const double margin = p.relative ? p.threshold * std::abs(best_) : p.threshold;
  if (std::isinf(best_) || loss < best_ - margin) {
    best_ = loss;
    bad_ = 0;
  } else {
    ++bad_;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    bad_ = 0;
  }
  if (bad_ <= p.patience) return false;
  scale_ *= p.factor;
  ++reductions_;
  cooldown_left_ = p.cooldown;
  bad_ = 0;
  return true;
}

void Optimiser::save_schedule(TensorArchive& archive, const std::string& prefix) const {
  archive.tensors.emplace_back(prefix + "scale", torch::tensor(scale_, torch::kDouble));
  archive.tensors.emplace_back(prefix + "best", torch::tensor(best_, torch::kDouble));
  archive.tensors.emplace_back(prefix + "bad", torch::tensor(bad_, torch::kLong));
  archive.tensors.emplace_back(prefix + "cooldown", torch::tensor(cooldown_left_, torch::kLong));
  archive.tensors.emplace_back(prefix + "reductions", torch::tensor(reductions_, torch::kLong));
}

void Optimiser::load_schedule(const TensorArchive& archive, const std::string& prefix) {
  for (const auto& [key, t] : archive.tensors) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    const auto field = key.substr(prefix.size());
    if (field == "scale") scale_ = scalar_state(key, t).item<double>();
    else if (field == "best") best_ = scalar_state(key, t).item<double>();
    else if (field == "bad") bad_ = scalar_state(key, t).item<int64_t>();
    else if (field == "cooldown") cooldown_left_ = scalar_state(key, t).item<int64_t>();
    else if (field == "reductions") reductions_ = scalar_state(key, t).item<int64_t>();
  }
}

double Optimiser::base_rate(const std::string& name, bool baseline) const {
  if (const auto* best = detail::longest_prefix(name, spec_.groups, [](const ParamGroup& g) -> const std::string& { return g.prefix; }))
    return best->lr;
  if (baseline && spec_.baseline_lr) return *spec_.baseline_lr;
  return spec_.lr;
}

void Optimiser::add(const std::string& name, const torch::Tensor& param, bool baseline) {
  auto it = index_.find(name);
  if (it != index_.end()) {
    auto& s = slots_[it->second];
    s.param = param;
    if (baseline) s.lr = base_rate(name, true);
    return;
  }
  auto value = pending_values_.find(name);
  if (value != pending_values_.end()) {
    torch::NoGradGuard no_grad;
    if (value->second.sizes() != param.sizes())
      throw ShapeError(fmt::format("Optimiser: parameter \"{}\" has shape {}, but the checkpoint holds shape {}", name,
                                   shape_string(param.sizes()), shape_string(value->second.sizes())));
    torch::Tensor(param).copy_(value->second);
    pending_values_.erase(value);
  }
  Slot s;
  s.name = name;
  s.param = param;
  s.lr = base_rate(name, baseline);
  auto saved = pending_.find(name);
  if (saved != pending_.end()) {
    check_moments(name, param, saved->second);
    s.m = saved->second.m.to(param.options().requires_grad(false));
    s.v = saved->second.v.to(param.options().requires_grad(false));
    s.t = saved->second.t;
    pending_.erase(saved);
  } else {
    s.m = torch::zeros_like(param, param.options().requires_grad(false));
    s.v = torch::zeros_like(param, param.options().requires_grad(false));
  }
  index_.emplace(name, slots_.size());
  slots_.push_back(std::move(s));
}

void Optimiser::zero_grad() {
  for (auto& s : slots_)
    if (s.param.grad().defined()) s.param.mutable_grad().reset();
}

void Optimiser::reduce_gradients() {
  torch::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(slots_.size());
  const bool nccl = group_->backend() == "nccl";
  const auto flag_device = nccl && n > 0 ? slots_.front().param.device() : torch::Device(torch::kCPU);
  // Averages the gradients over the ranks. Per slot: 1 where this rank has
  // a gradient; then the number of slots,
  // which every rank must share.
  auto flags = torch::zeros({n + 1}, torch::TensorOptions().dtype(torch::kDouble));
  auto* f = flags.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) f[i] = slots_[static_cast<size_t>(i)].param.grad().defined() ? 1.0 : 0.0;
  f[n] = static_cast<double>(n);
  // The gradients themselves are summed in place (the group gathers small
  // ones into buckets); a slot without one sends zeros.
  std::vector<torch::Tensor> all{flags.to(flag_device)};
  for (auto& s : slots_) {
    const auto& p = s.param;
    all.push_back(p.grad().defined() ? p.mutable_grad() : torch::zeros_like(p, p.options().requires_grad(false)));
  }
  group_->all_reduce_sum(all);
  const auto summed = all.front().cpu();
  const double* g = summed.data_ptr<double>();
  if (g[n] != static_cast<double>(n) * group_->size())
    throw Error(fmt::format("Optimiser: rank {} trains {} parameters, but the ranks of its group do not all train as "
                            "many; every rank must run the same program",
                            group_->rank(), n));
  const auto world = static_cast<double>(group_->size());
  for (int64_t i = 0; i < n; ++i) {
    auto& p = slots_[static_cast<size_t>(i)].param;
    if (g[i] <= 0) continue;  // no rank has a gradient for it: it keeps none
    auto& summed_grad = all[static_cast<size_t>(i) + 1];
    summed_grad.div_(world);  // the mean over the ranks
    if (!p.grad().defined()) p.mutable_grad() = summed_grad;
  }
}

void Optimiser::broadcast_parameters(int root) {
  if (!group_ || group_->size() < 2) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> params;
  for (auto& s : slots_) params.push_back(s.param.detach().contiguous());
  group_->broadcast(params, root);
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].param.copy_(params[i]);
}

double Optimiser::update(bool check_finite) {
  torch::NoGradGuard no_grad;
  if (group_ && group_->size() > 1) reduce_gradients();
  double norm = NAN;
  if (check_finite || spec_.clip_norm > 0) {
    // Gradients in contiguous CPU memory are summed in one pass each; the
    // others (CUDA) as tensors, read back once.
    double squares = 0;
    std::vector<torch::Tensor> norms;
    for (const auto& s : slots_) {
      const auto& g = s.param.grad();
      if (!g.defined()) continue;
      if (fusable(g))
        AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "Optimiser norm", [&] {
          squares += detail::sum_of_squares(g.data_ptr<scalar_t>(), g.numel());
        });
      else
        norms.push_back(g.detach().to(torch::kDouble).pow(2).sum());
    }
    if (!norms.empty()) squares += torch::stack(norms).sum().item<double>();
    norm = std::sqrt(squares);
    if (check_finite && !std::isfinite(norm)) {
      for (const auto& s : slots_)
        if (s.param.grad().defined() && !torch::isfinite(s.param.grad()).all().item<bool>())
          throw NonFiniteError(fmt::format("Svi: the gradient of parameter \"{}\" is {}", s.name,
                                           s.param.grad().isnan().any().item<bool>() ? "nan" : "infinite"));
    }
    if (spec_.clip_norm > 0 && norm > spec_.clip_norm) {
      const double factor = spec_.clip_norm / (norm + 1e-6);
      for (auto& s : slots_)
        if (s.param.grad().defined()) s.param.mutable_grad().mul_(factor);
    }
  }
  for (auto& s : slots_) {
    const auto& g = s.param.grad();
    if (!g.defined()) continue;
    ++s.t;
    // One pass over contiguous CPU tensors of one dtype; the same formulas
    // as tensor operations otherwise.
    const bool fused = fusable(g) && fusable(s.param) && fusable(s.m) && fusable(s.v) &&
                       g.scalar_type() == s.param.scalar_type() && s.m.scalar_type() == s.param.scalar_type() &&
                       s.v.scalar_type() == s.param.scalar_type();
    if (spec_.rule == Adam::Rule::rmsprop) {
      if (fused) {
        AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "Optimiser RMSprop", [&] {
          detail::rmsprop_update(s.param.data_ptr<scalar_t>(), s.v.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                                 g.numel(), spec_.alpha, scheduled(s.lr), spec_.eps);
        });
        s.param.unsafeGetTensorImpl()->bump_version();  // as an in-place operation would
        continue;
      }
      s.v.mul_(spec_.alpha).addcmul_(g, g, 1 - spec_.alpha);
      s.param.addcdiv_(g, s.v.sqrt().add_(spec_.eps), -scheduled(s.lr));
      continue;
    }
    const double bc1 = 1 - std::pow(spec_.beta1, static_cast<double>(s.t));
    const double bc2 = 1 - std::pow(spec_.beta2, static_cast<double>(s.t));
    if (fused) {
      const detail::AdamConstants c{spec_.beta1, spec_.beta2, scheduled(s.lr) / bc1, std::sqrt(bc2), spec_.eps};
      AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "Optimiser Adam", [&] {
        detail::adam_update(s.param.data_ptr<scalar_t>(), s.m.data_ptr<scalar_t>(), s.v.data_ptr<scalar_t>(),
                            g.data_ptr<scalar_t>(), g.numel(), c);
      });
      s.param.unsafeGetTensorImpl()->bump_version();
      continue;
    }
    s.m.mul_(spec_.beta1).add_(g, 1 - spec_.beta1);
    s.v.mul_(spec_.beta2).addcmul_(g, g, 1 - spec_.beta2);
    auto denom = (s.v.sqrt() / std::sqrt(bc2)).add_(spec_.eps);
    s.param.addcdiv_(s.m, denom, -scheduled(s.lr) / bc1);
  }
  return norm;
}

std::vector<std::pair<std::string, torch::Tensor>> Optimiser::parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& s : slots_) out.emplace_back(s.name, s.param);
  return out;
}

void Optimiser::set_pending_value(const std::string& name, torch::Tensor value) {
  auto it = index_.find(name);
  if (it != index_.end()) {
    torch::NoGradGuard no_grad;
    slots_[it->second].param.copy_(value);
    return;
  }
  pending_values_[name] = std::move(value);
}

std::vector<std::string> Optimiser::names() const {
  std::vector<std::string> out;
  for (const auto& s : slots_) out.push_back(s.name);
  return out;
}

void Optimiser::save_state(TensorArchive& archive, const std::string& prefix) const {
  for (const auto& s : slots_) {
    archive.tensors.emplace_back(prefix + s.name + "/m", s.m);
    archive.tensors.emplace_back(prefix + s.name + "/v", s.v);
    archive.tensors.emplace_back(prefix + s.name + "/t", torch::tensor(s.t, torch::kLong));
  }
  for (const auto& [name, s] : pending_) {
    archive.tensors.emplace_back(prefix + name + "/m", s.m);
    archive.tensors.emplace_back(prefix + name + "/v", s.v);
    archive.tensors.emplace_back(prefix + name + "/t", torch::tensor(s.t, torch::kLong));
  }
}

void Optimiser::load_state(const TensorArchive& archive, const std::string& prefix) {
  std::unordered_map<std::string, Saved> saved;
  for (const auto& [key, t] : archive.tensors) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    const auto rest = key.substr(prefix.size());
    const auto slash = rest.rfind('/');
    if (slash == std::string::npos) continue;
    auto& s = saved[rest.substr(0, slash)];
    const auto field = rest.substr(slash + 1);
    if (field == "m") s.m = t.clone();
    else if (field == "v") s.v = t.clone();
    else if (field == "t") s.t = scalar_state(key, t).item<int64_t>();
  }
  for (const auto& [name, s] : saved)
    if (!s.m.defined() || !s.v.defined() || s.m.sizes() != s.v.sizes() || !s.m.is_floating_point() ||
        !s.v.is_floating_point())
      throw ShapeError(fmt::format("Optimiser: the saved moments of parameter \"{}\" are incomplete or of two "
                                   "shapes ({} and {})",
                                   name, s.m.defined() ? shape_string(s.m.sizes()) : "none",
                                   s.v.defined() ? shape_string(s.v.sizes()) : "none"));
  torch::NoGradGuard no_grad;
  pending_.clear();
  for (auto& [name, s] : saved) {
    auto it = index_.find(name);
    if (it == index_.end()) {
      pending_.emplace(name, std::move(s));
      continue;
    }
    auto& slot = slots_[it->second];
    check_moments(name, slot.param, s);
    slot.m.copy_(s.m);
    slot.v.copy_(s.v);
    slot.t = s.t;
  }
}

// ------------------------------------------------------------------ SVI

double svi_step(Elbo& elbo, Optimiser& optimiser, const Runner& run) {
  auto result = elbo.evaluate(run);
  std::unordered_set<const void*> named;
  for (const auto& name : result.params) {
    auto p = param_store().unconstrained(name);
    named.insert(p.unsafeGetTensorImpl());
    optimiser.add(name, p);
  }
  // Baseline networks: named by the store when registered there, else by position.
  size_t unnamed = 0;
  std::unordered_map<const void*, std::string> names_by_impl;
  if (!result.baseline_params.empty())
    for (const auto& name : result.params) names_by_impl.emplace(param_store().unconstrained(name).unsafeGetTensorImpl(), name);
  for (const auto& p : result.baseline_params) {
    auto it = names_by_impl.find(p.unsafeGetTensorImpl());
    optimiser.add(it != names_by_impl.end() ? it->second : fmt::format("baseline#{}", unnamed++), p, true);
  }
  optimiser.zero_grad();
  result.loss.backward();
  optimiser.update(elbo.options().check_finite);
  return -result.objective.item<double>();
}

double sum_over_ranks(ProcessGroup& group, double value) {
  std::vector<torch::Tensor> t{torch::tensor({value}, torch::kDouble)};
  if (group.backend() == "nccl") t[0] = t[0].to(torch::kCUDA);
  group.all_reduce_sum(t);
  return t[0].item<double>();
}

// ------------------------------------------------------------------ checkpoints

namespace {
constexpr const char* kKind = "ppl.checkpoint";
}  // namespace

TensorArchive checkpoint_archive(const Elbo& elbo, const Optimiser& optimiser, int64_t step, const nlohmann::json& user) {
  // The store's own archive (with its constraints), folded into ours.
  const auto params = param_store().to_archive();

  TensorArchive archive;
  for (auto& [name, t] : params.tensors) archive.tensors.emplace_back("param/" + name, t);
  optimiser.save_state(archive, "adam/");
  optimiser.save_schedule(archive, "schedule/");
  // Parameters outside the store (unregistered baseline networks).
  for (const auto& [name, p] : optimiser.parameters())
    if (!param_store().contains(name)) archive.tensors.emplace_back("value/" + name, p.detach());
  elbo.save_state(archive, "elbo/");
  archive.tensors.emplace_back("rng/cpu", random::generator_state(random::cpu_generator()));
  archive.metadata["kind"] = kKind;
  archive.metadata["step"] = step;
  archive.metadata["param_store"] = params.metadata;
  if (!user.is_null()) archive.metadata["user"] = user;
  return archive;
}

void save_checkpoint(const std::filesystem::path& path, const Elbo& elbo, const Optimiser& optimiser, int64_t step,
                     const nlohmann::json& user) {
  save_archive(checkpoint_archive(elbo, optimiser, step, user), path);
}

int64_t load_checkpoint(const std::filesystem::path& path, Elbo& elbo, Optimiser& optimiser) {
  return load_checkpoint(load_archive(path), path.string(), elbo, optimiser);
}

int64_t load_checkpoint(const TensorArchive& archive, const std::string& source, Elbo& elbo, Optimiser& optimiser) {
  const std::filesystem::path path = source;
  if (archive.metadata.value("kind", std::string()) != kKind)
    throw Error(fmt::format("load_checkpoint: {} is not a checkpoint (kind \"{}\")", path.string(),
                            archive.metadata.value("kind", std::string())));
  // The generator state is checked before anything changes: a short or
  // foreign one would break the promise that a resumed run repeats its draws.
  auto gen = random::cpu_generator();
  const auto* rng = [&]() -> const torch::Tensor* {
    for (const auto& [name, t] : archive.tensors)
      if (name == "rng/cpu") return &t;
    return nullptr;
  }();
  const auto rng_entry = fmt::format("load_checkpoint: {} (\"rng/cpu\")", path.string());
  random::check_generator_state(gen, rng, rng_entry);
  TensorArchive params;
  params.metadata = archive.metadata.value("param_store", nlohmann::json::object());
  // A released model may store its weights as float16 (`ppl export --dtype
  // float16`); the parameters are float32 again once loaded.
  const auto released = archive.metadata.value("released", nlohmann::json::object());
  const bool widen = released.is_object() && released.value("weights", std::string()) == "float16";
  for (const auto& [name, t] : archive.tensors)
    if (name.rfind("param/", 0) == 0)
      params.tensors.emplace_back(name.substr(6), widen && t.scalar_type() == torch::kHalf ? t.to(torch::kFloat32) : t);
  param_store().load(params, path.string());
  optimiser.load_state(archive, "adam/");
  optimiser.load_schedule(archive, "schedule/");
  for (const auto& [name, t] : archive.tensors)
    if (name.rfind("value/", 0) == 0) optimiser.set_pending_value(name.substr(6), t);
  elbo.load_state(archive, "elbo/");
  random::set_generator_state(gen, *rng, rng_entry);
  return archive.metadata.value("step", int64_t{0});
}

std::vector<std::string> drop_parameters(TensorArchive& archive, const std::vector<std::string>& prefixes,
                                         const std::string& source) {
  // The parameter an entry belongs to: "param/NAME", "value/NAME" (a baseline
  // network's weight) or "adam/NAME/FIELD"; other entries belong to none.
  auto owner = [](const std::string& key) -> std::string {
    for (const char* kind : {"param/", "value/"})
      if (key.rfind(kind, 0) == 0) return key.substr(std::strlen(kind));
    if (key.rfind("adam/", 0) == 0) {
      const auto slash = key.rfind('/');
      if (slash > 5) return key.substr(5, slash - 5);
    }
    return {};
  };
  auto dropped_by = [&](const std::string& name) {
    return !name.empty() && std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) {
      return name.rfind(p, 0) == 0;
    });
  };
  std::set<std::string> names, all;
  for (const auto& [key, t] : archive.tensors)
    if (key.rfind("param/", 0) == 0 || key.rfind("value/", 0) == 0) all.insert(owner(key));
  for (const auto& prefix : prefixes) {
    if (prefix.empty()) throw ArgumentError(fmt::format("drop_parameters: an empty prefix would drop every parameter "
                                                        "of {}", source));
    if (std::none_of(all.begin(), all.end(), [&](const std::string& n) { return n.rfind(prefix, 0) == 0; })) {
      // Name the networks the archive has (its names up to the second dot).
      std::set<std::string> networks;
      for (const auto& n : all) networks.insert(n.substr(0, n.find('.', n.find('.') + 1)));
      throw ArgumentError(fmt::format("drop_parameters: no parameter of {} starts with \"{}\"; its parameters start "
                                      "with {}",
                                      source, prefix, fmt::join(networks, ", ")));
    }
  }
  std::vector<std::pair<std::string, torch::Tensor>> kept;
  for (auto& [key, t] : archive.tensors) {
    const auto name = owner(key);
    if (!dropped_by(name)) {
      kept.emplace_back(key, std::move(t));
      continue;
    }
    if (key.rfind("param/", 0) == 0) names.insert(name);
  }
  archive.tensors = std::move(kept);
  return {names.begin(), names.end()};
}

}  // namespace ppl::infer
