// The ELBO surrogate (pathwise and score-function terms, baselines), the
// importance-weighted bound and importance-sampling estimates of log p(x).
#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/infer/elbo.hpp>

#include "enum/elimination.hpp"
#include "longest_prefix.hpp"
#include <ppl/infer/importance.hpp>

namespace ppl::infer {

namespace {

bool is_latent(const Site& s) { return s.kind == SiteKind::sample && !s.observed; }

/// The elements of a site's batch that its masks leave on (its own mask and
/// its distribution's, combined); undefined when it has neither.
torch::Tensor active_elements(const Site& s) {
  torch::Tensor on = s.mask;
  if (s.dist && s.dist->mask_tensor().defined()) on = on.defined() ? on.logical_and(s.dist->mask_tensor()) : s.dist->mask_tensor();
  return on.defined() ? on.to(torch::kBool) : on;
}

/// log q without the site's scale (the score of the sampling distribution),
/// masked like log_prob.
torch::Tensor unscaled_log_prob(const Site& s) {
  auto lp = s.log_prob();
  if (s.scale_tensor.defined()) {
    const auto zero = s.scale_tensor == 0;
    lp = torch::where(zero, torch::zeros({}, lp.options()), lp / torch::where(zero, torch::ones_like(s.scale_tensor), s.scale_tensor));
  }
  if (s.scale == 1.0) return lp;
  if (s.scale == 0.0) return torch::zeros_like(lp);
  return lp / s.scale;
}

/// Sums `t` over every dimension except those of the plates in `keep` that
/// `plates` (the plates of `t`'s site) also has; kept dimensions keep their
/// position from the right, summed ones stay as size 1.
torch::Tensor reduce_to(const torch::Tensor& t, const std::vector<PlateFrame>& plates,
                        const std::vector<PlateFrame>& keep) {
  if (t.dim() == 0) return t;
  std::vector<int64_t> sum_dims;
  for (int64_t d = 0; d < t.dim(); ++d) {
    const int64_t neg = d - t.dim();
    bool shared = false;
    for (const auto& f : plates) {
      if (f.dim != neg) continue;
      for (const auto& k : keep) shared = shared || (k.name == f.name && k.dim == f.dim);
    }
    if (!shared) sum_dims.push_back(d);
  }
  if (sum_dims.empty()) return t;
  if (static_cast<int64_t>(sum_dims.size()) == t.dim()) return t.sum();
  return t.sum(sum_dims, /*keepdim=*/true);
}

/// The non-finite site of a pair of traces, as a NonFiniteError.
[[noreturn]] void throw_non_finite(const TracePair& traces, const torch::Tensor& objective, std::string_view who) {
  const std::pair<const Trace*, const char*> order[] = {{&traces.guide, "guide"}, {&traces.model, "model"}};
  for (const auto& [trace, role] : order) {
    for (const auto& s : *trace) {
      if (!s.is_random()) continue;
      if (s.value.is_floating_point() && !torch::isfinite(s.value).all().item<bool>())
        throw NonFiniteError(fmt::format("{}: the value of {} {} is not finite", who, role, describe_site(s)));
      const auto& lp = s.log_prob();
      if (!torch::isfinite(lp).all().item<bool>()) {
        const auto bad = lp.isnan().any().item<bool>() ? "nan" : "infinite";
        throw NonFiniteError(fmt::format("{}: log_prob of {} {} is {} (distribution {}); check its parameters and "
                                         "value",
                                         who, role, describe_site(s), bad, s.dist->type_name()));
      }
    }
  }
  throw NonFiniteError(fmt::format("{}: the objective is {}, but every site's log_prob is finite", who,
                                   objective.item<double>()));
}

/// Leaf tensors that require grad and that `root` depends on.
void collect_leaves(const torch::Tensor& root, std::vector<torch::Tensor>& out,
                    std::unordered_set<const void*>& seen_leaves) {
  if (!root.defined() || !root.requires_grad()) return;
  if (root.is_leaf()) {
    if (seen_leaves.insert(root.unsafeGetTensorImpl()).second) out.push_back(root);
    return;
  }
  std::vector<torch::autograd::Node*> stack{root.grad_fn().get()};
  std::unordered_set<torch::autograd::Node*> seen;
  while (!stack.empty()) {
    auto* node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (auto* acc = dynamic_cast<torch::autograd::AccumulateGrad*>(node)) {
      const auto& v = acc->variable;
      if (seen_leaves.insert(v.unsafeGetTensorImpl()).second) out.push_back(v);
      continue;
    }
    for (const auto& edge : node->next_edges())
      if (edge.function) stack.push_back(edge.function.get());
  }
}

/// One cost term of the objective, downstream of the guide sites at
/// positions <= `upto`.
struct Cost {
  torch::Tensor value;                      ///< weighted log-density (or KL), batch-shaped
  const std::vector<PlateFrame>* plates;
  int64_t upto;
  bool negative = false;                    ///< the objective holds -value
  bool latent = false;                      ///< a latent site's log p or log q (or -KL)
};

/// The guide's sample sites in order, and each one's position among them
/// by its index in the guide trace (-1 for other sites).
void guide_positions(const Trace& q, std::vector<int64_t>& position, std::vector<const Site*>& guide_sites) {
  position.assign(q.size(), -1);
  guide_sites.clear();
  guide_sites.reserve(q.size());
  for (size_t i = 0; i < q.size(); ++i) {
    if (q.sites()[i].kind != SiteKind::sample) continue;
    position[i] = static_cast<int64_t>(guide_sites.size());
    guide_sites.push_back(&q.sites()[i]);
  }
}

/// The costs of a pair of traces run under enumeration: the model's
/// enumerated variables summed out (`terms` keeps the plates of the
/// contracted terms), and every cost averaged over the guide's enumerated
/// variables, weighted by their probabilities. A guide site drawn without
/// reparameterisation must not depend on the guide's enumerated ones.
void enumerated_costs(const TracePair& traces, const std::vector<int64_t>& position,
                      const std::vector<const Site*>& guide_sites,
                      const std::function<double(const std::string&)>& weight,
                      std::vector<enumeration::Term>& terms, std::vector<Cost>& costs, EliminationStats& stats) {
  const auto& q = traces.guide;
  const auto& p = traces.model;
  // Model terms depend on the guide sites up to the largest guide position
  // among the paired latents at or before them (as without enumeration).
  std::vector<int64_t> upto_at(p.size(), -1);
  int64_t upto = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    const Site& s = p.sites()[i];
    if (s.is_random() && is_latent(s))
      if (const Site* g = q.find(s.name)) upto = std::max(upto, position[static_cast<size_t>(g - q.sites().data())]);
    upto_at[i] = upto;
  }
  terms = enumeration::sum_out(traces, enumeration::Sum::model, stats, "Elbo");
  for (const auto& t : terms) {
    int64_t u = -1;
    for (const Site* s : t.sites) u = std::max(u, upto_at[static_cast<size_t>(s - p.sites().data())]);
    const Site& s = *t.sites.front();
    const bool latent = !t.contracted && is_latent(s);
    const double w = latent ? weight(s.name) : 1.0;
    auto value = enumeration::expect_under_guide(q, w == 1.0 ? t.log_value : w * t.log_value, t.plates, "Elbo");
    costs.push_back({std::move(value), &t.plates, u, false, latent});
  }
  for (size_t t = 0; t < guide_sites.size(); ++t) {
    const Site& g = *guide_sites[t];
    const auto& lq = g.log_prob();
    if (!g.reparameterised && !g.enumeration.enumerated() && g.enumeration.active()) {
      const int64_t lead = lq.dim() + g.enumeration.first_dim + 1;
      for (int64_t i = 0; i < lead; ++i)
        if (lq.size(i) > 1)
          throw ArgumentError(fmt::format("Elbo: guide {} is drawn (not reparameterised) but depends on an enumerated "
                                          "guide site; enumerate it too, or draw the sites before it",
                                          describe_site(g)));
    }
    const double w = weight(g.name);
    auto value = enumeration::expect_under_guide(q, w == 1.0 ? lq : w * lq, g.plates, "Elbo");
    costs.push_back({std::move(value), &g.plates, static_cast<int64_t>(t), true, true});
  }
}

void param_names(const TracePair& traces, std::vector<std::string>& out, std::unordered_set<std::string>& seen) {
  for (const Trace* t : {&traces.guide, &traces.model})
    for (const auto& s : *t)
      if (s.kind == SiteKind::param && seen.insert(s.name).second) out.push_back(s.name);
}

/// The data plate: the outermost plate of the first observed site in one
/// (null when no observed site is in a plate).
const PlateFrame* data_plate(const TracePair& traces) {
  for (const auto& s : traces.model) {
    if (!s.is_random() || !s.observed) continue;
    for (const auto& f : s.plates)
      if (f.name != kParticlePlate) return &f;
  }
  return nullptr;
}

/// The plate log p(x) factorises over: the data plate when every random site
/// of both programs lies inside it, else null (one joint weight per particle).
const PlateFrame* factor_plate(const TracePair& traces) {
  const PlateFrame* data = data_plate(traces);
  if (!data) return nullptr;
  for (const Trace* t : {&traces.model, &traces.guide})
    for (const auto& s : *t)
      if (s.is_random() && std::none_of(s.plates.begin(), s.plates.end(),
                                        [&](const PlateFrame& f) { return f.name == data->name; }))
        return nullptr;
  return data;
}

/// `lp` (of site `s`, in `plates`) summed to one value per element of the
/// data plate: [N], or [1] without a data plate.
torch::Tensor per_datum(const torch::Tensor& lp, const Site& s, const std::vector<PlateFrame>& plates,
                        const PlateFrame* data, std::string_view who) {
  const PlateFrame* particles = nullptr;
  for (const auto& g : plates)
    if (g.name == kParticlePlate) particles = &g;
  if (particles) {
    // Vectorised particles: [n, N] (or [n, 1]).
    std::vector<PlateFrame> keep{*particles};
    if (data) keep.push_back(*data);
    auto r = reduce_to(lp, plates, keep);
    const bool in_data = data && std::any_of(plates.begin(), plates.end(),
                                             [&](const PlateFrame& g) { return g.name == data->name; });
    if (data && !in_data)
      throw SiteError(fmt::format("{}: {} lies outside the data plate \"{}\", so log p(x) does not factorise per "
                                  "data point; put every random site inside it",
                                  who, describe_site(s), data->name));
    return r.reshape({particles->subsample_size, -1});
  }
  if (!data) return lp.sum().reshape({1});
  const PlateFrame* f = nullptr;
  for (const auto& g : plates)
    if (g.name == data->name) f = &g;
  if (!f)
    throw SiteError(fmt::format("{}: {} lies outside the data plate \"{}\", so log p(x) does not factorise per "
                                "data point; put every random site inside it",
                                who, describe_site(s), data->name));
  auto r = reduce_to(lp, plates, {*f});
  return r.dim() == 0 ? r.reshape({1}) : r.reshape({-1});
}

}  // namespace

// ------------------------------------------------------------------ pairing

void check_pairing(const TracePair& traces, std::string_view who) {
  const auto& q = traces.guide;
  const auto& p = traces.model;
  for (const auto& s : q)
    if (s.kind == SiteKind::observe)
      throw SiteError(fmt::format("{}: the guide observes {}; observations belong in the model", who, describe_site(s)));
  // Guide sample sites the model never visits (auxiliary ones aside).
  std::vector<const Site*> unvisited;
  for (const auto& s : q)
    if (s.kind == SiteKind::sample && !s.options.auxiliary && !p.contains(s.name)) unvisited.push_back(&s);
  for (const auto& s : p) {
    if (!s.is_random()) continue;
    const Site* g = q.find(s.name);
    // Summed out by the elimination: no guide site wanted.
    if (is_latent(s) && !g && s.enumeration.enumerated()) continue;
    if (is_latent(s) && (!g || g->kind != SiteKind::sample))
      throw SiteError(fmt::format("{}: model {} has no guide site{}; the guide must sample every latent site of the "
                                  "model under the same name{}",
                                  who, describe_site(s),
                                  unvisited.empty() ? std::string()
                                                    : fmt::format(", and guide {} is never visited by the model",
                                                                  describe_site(*unvisited.front())),
                                  s.options.enumerate ? " (or sum this .enumerate site out with "
                                                        "Elbo({.enumerate = true}))"
                                                      : ""));
    if (!is_latent(s) && g && g->kind == SiteKind::sample)
      throw SiteError(fmt::format("{}: guide {} is observed by the model; the guide must not sample it", who,
                                  describe_site(*g)));
  }
  if (!unvisited.empty())
    throw SiteError(fmt::format("{}: guide {} is never visited by the model; check the site names", who,
                                describe_site(*unvisited.front())));
}

// ------------------------------------------------------------------ options JSON

nlohmann::json to_json(const ElboOptions& o) {
  return {{"particles", o.particles},           {"beta", o.beta},
          {"analytic_kl", o.analytic_kl},       {"decaying_baseline", o.decaying_baseline},
          {"baseline_decay", o.baseline_decay}, {"normalise_variance", o.normalise_variance},
          {"signal_kl_weight", o.signal_kl_weight}, {"downstream_only", o.downstream_only}, {"iwae", o.iwae},
          {"check_finite", o.check_finite}, {"pooled_baselines", o.pooled_baselines},
          {"vectorise", o.vectorise}, {"max_plate_nesting", o.max_plate_nesting}, {"enumerate", o.enumerate}};
}

ElboOptions elbo_options_from_json(const nlohmann::json& j) {
  ElboOptions o;
  const auto known = to_json(o);
  if (!j.is_object()) throw Error("ElboOptions: expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.contains(it.key())) throw Error(fmt::format("ElboOptions: unknown key \"{}\"", it.key()));
  try {
    o.particles = j.value("particles", o.particles);
    o.beta = j.value("beta", o.beta);
    o.analytic_kl = j.value("analytic_kl", o.analytic_kl);
    o.decaying_baseline = j.value("decaying_baseline", o.decaying_baseline);
    o.baseline_decay = j.value("baseline_decay", o.baseline_decay);
    o.normalise_variance = j.value("normalise_variance", o.normalise_variance);
    o.signal_kl_weight = j.value("signal_kl_weight", o.signal_kl_weight);
    o.downstream_only = j.value("downstream_only", o.downstream_only);
    o.pooled_baselines = j.value("pooled_baselines", o.pooled_baselines);
    o.iwae = j.value("iwae", o.iwae);
    o.check_finite = j.value("check_finite", o.check_finite);
    o.vectorise = j.value("vectorise", o.vectorise);
    o.max_plate_nesting = j.value("max_plate_nesting", o.max_plate_nesting);
    o.enumerate = j.value("enumerate", o.enumerate);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("ElboOptions: {}", e.what()));
  }
  return o;
}

void to_json(nlohmann::json& j, const ElboOptions& options) { j = to_json(options); }
void from_json(const nlohmann::json& j, ElboOptions& options) { options = elbo_options_from_json(j); }

void to_json(nlohmann::json& j, const ImportanceOptions& o) {
  j = {{"particles", o.particles},
       {"chunk", o.chunk},
       {"vectorise", o.vectorise ? nlohmann::json(*o.vectorise) : nlohmann::json(nullptr)},  // null: try it
       {"max_plate_nesting", o.max_plate_nesting}};
}

void from_json(const nlohmann::json& j, ImportanceOptions& o) {
  nlohmann::json known;
  to_json(known, ImportanceOptions{});
  if (!j.is_object()) throw Error("ImportanceOptions: expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.contains(it.key())) throw Error(fmt::format("ImportanceOptions: unknown key \"{}\"", it.key()));
  try {
    o.particles = j.value("particles", o.particles);
    o.chunk = j.value("chunk", o.chunk);
    if (j.contains("vectorise"))
      o.vectorise = j.at("vectorise").is_null() ? std::nullopt : std::optional<bool>(j.at("vectorise").get<bool>());
    o.max_plate_nesting = j.value("max_plate_nesting", o.max_plate_nesting);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("ImportanceOptions: {}", e.what()));
  }
}

// ------------------------------------------------------------------ Elbo

Elbo::Elbo(ElboOptions options) : options_(std::move(options)) {
  if (options_.particles < 1)
    throw ArgumentError(fmt::format("Elbo: particles is {}, but must be at least 1", options_.particles));
  if (options_.max_plate_nesting < 0)
    throw ArgumentError(fmt::format("Elbo: max_plate_nesting is {}, but must be at least 0", options_.max_plate_nesting));
  if (!(options_.baseline_decay >= 0.0 && options_.baseline_decay < 1.0))
    throw ArgumentError(fmt::format("Elbo: baseline_decay is {}, but must be in [0, 1)", options_.baseline_decay));
  for (const auto& [prefix, w] : options_.beta)
    if (!(w >= 0.0)) throw ArgumentError(fmt::format("Elbo: beta[\"{}\"] is {}, but must be nonnegative", prefix, w));
  if (!(options_.signal_kl_weight >= 0.0))
    throw ArgumentError(
        fmt::format("Elbo: signal_kl_weight is {}, but must be nonnegative", options_.signal_kl_weight));
  if (options_.iwae && options_.signal_kl_weight != 1.0)
    throw ArgumentError(fmt::format("Elbo: signal_kl_weight is {}, but the importance-weighted bound (iwae) has "
                                    "one learning signal for all sites and takes only 1",
                                    options_.signal_kl_weight));
  if (options_.enumerate && (options_.iwae || options_.analytic_kl))
    throw ArgumentError(fmt::format("Elbo: enumerate sums sites out of the ELBO, and does not combine with {}",
                                    options_.iwae ? "iwae" : "analytic_kl"));
}

double Elbo::weight(const std::string& name) const {
  const auto* match = detail::longest_prefix(name, options_.beta, [](const auto& kv) -> const std::string& { return kv.first; });
  return match ? match->second : 1.0;
}

std::string Elbo::stats_key(const std::string& site) const {
  const auto* match = detail::longest_prefix(site, options_.pooled_baselines, [](const std::string& p) -> const std::string& { return p; });
  return match ? *match : site;
}

torch::Tensor Elbo::centre(const std::string& key, const torch::Tensor& signal, const torch::Tensor& active) {
  const auto& r = running_[key];
  torch::Tensor out = signal;
  if (r.mean.defined()) {
    out = out - r.mean.to(signal.scalar_type());
    if (options_.normalise_variance) out = out / r.var.sqrt().clamp_min(1.0).to(signal.scalar_type());
  }
  // The statistics move after this evaluation: this step's baseline never
  // depends on this step's draws.
  auto s = signal.detach().to(torch::kDouble);
  torch::Tensor sums;
  if (active.defined()) {
    const auto shape = at::infer_size(s.sizes(), active.sizes());
    s = s.expand(shape);
    const auto w = active.expand(shape).to(torch::kDouble);
    sums = torch::stack({(s * w).sum(), (s * s * w).sum(), w.sum()});
  } else {
    sums = torch::stack({s.sum(), (s * s).sum(), torch::tensor(static_cast<double>(s.numel()), s.options())});
  }
  auto& acc = batch_[key];
  acc = acc.defined() ? acc + sums : sums;
  return out;
}

void Elbo::reduce_batch() {
  // The keys in order (std::map), each [3] (sum, sum of squares, count), then
  // the number of keys and a hash of their names: sums that every rank must
  // reach alike.
  std::vector<torch::Tensor> parts;
  std::size_t names = 0;
  for (const auto& [key, acc] : batch_) {
    parts.push_back(acc.to(torch::kCPU, torch::kDouble).reshape({3}));
    names = names * 31 + std::hash<std::string>{}(key) % 1000003;
  }
  const double count = static_cast<double>(batch_.size()), hash = static_cast<double>(names % 1000003);
  parts.push_back(torch::tensor({count, hash}, torch::kDouble));
  std::vector<torch::Tensor> all{torch::cat(parts)};
  if (group_->backend() == "nccl" && !batch_.empty()) all[0] = all[0].to(batch_.begin()->second.device());
  group_->all_reduce_sum(all);
  const auto sums = all[0].cpu();
  const double* v = sums.data_ptr<double>();
  const auto w = static_cast<double>(group_->size());
  const auto tail = static_cast<int64_t>(3 * batch_.size());
  if (v[tail] != count * w || v[tail + 1] != hash * w)
    throw Error(fmt::format("Elbo: rank {} has {} score-function statistics, but the ranks of its group do not all have "
                            "the same; every rank must run the same program",
                            group_->rank(), batch_.size()));
  int64_t at = 0;
  for (auto& [key, acc] : batch_) {
    acc = sums.narrow(0, at, 3).to(acc.device());
    at += 3;
  }
}

void Elbo::update_running() {
  if (group_ && group_->size() > 1) reduce_batch();
  for (const auto& [key, acc] : batch_) {
    const auto sums = acc.cpu();  // one transfer per key and step
    const double* v = sums.data_ptr<double>();
    if (v[2] <= 0) continue;  // no active element this time
    const double mean = v[0] / v[2], var = std::max(0.0, v[1] / v[2] - mean * mean);
    auto& r = running_[key];
    const auto opts = torch::TensorOptions().dtype(torch::kDouble);
    if (!r.mean.defined()) {
      r.mean = torch::tensor(mean, opts);
      r.var = r.var.defined() ? r.var : torch::tensor(var, opts);
    } else {
      const double a = options_.baseline_decay, old = r.mean.item<double>();
      r.mean = torch::tensor(a * old + (1 - a) * mean, opts);
      r.var = torch::tensor(a * r.var.item<double>() + (1 - a) * (var + (mean - old) * (mean - old)), opts);
    }
  }
}

ElboResult Elbo::evaluate(const Runner& run) {
  batch_.clear();
  auto result = options_.iwae ? evaluate_iwae(run) : evaluate_elbo(run);
  if (options_.decaying_baseline) update_running();
  return result;
}

ElboResult Elbo::evaluate_elbo(const Runner& run) {
  ElboResult result;
  std::unordered_set<std::string> seen_params;
  std::unordered_set<const void*> seen_leaves;
  std::vector<torch::Tensor> losses, objectives;
  for (int r = 0; r < runs(); ++r) {
    const TracePair traces = run();
    check_pairing(traces);
    param_names(traces, result.params, seen_params);
    const auto& q = traces.guide;
    const auto& p = traces.model;

    // Guide positions of the sample sites, by their index in the guide trace
    // (check_pairing has made sure that every latent has one).
    std::vector<int64_t> position;
    std::vector<const Site*> guide_sites;
    guide_positions(q, position, guide_sites);
    std::vector<char> analytic(guide_sites.size(), 0);
    std::vector<Cost> costs;
    costs.reserve(guide_sites.size() + p.size());
    std::vector<enumeration::Term> terms;
    const bool enumerated = options_.enumerate && enumeration::enumerated(traces);
    if (enumerated)
      enumerated_costs(traces, position, guide_sites, [this](const std::string& n) { return weight(n); }, terms,
                       costs, result.elimination);

    // Model terms: a term at model position k depends on the guide sites up
    // to the largest guide position among the latents at model positions <= k.
    int64_t upto = -1;
    for (const auto& s : p) {
      if (enumerated) break;
      if (!s.is_random()) continue;
      if (!is_latent(s)) {
        costs.push_back({s.log_prob(), &s.plates, upto});
        continue;
      }
      const int64_t t = position[static_cast<size_t>(q.find(s.name) - q.sites().data())];
      const Site& g = *guide_sites[static_cast<size_t>(t)];
      const double w = weight(s.name);
      if (options_.analytic_kl && dist::has_kl(*g.dist, *s.dist)) {
        auto kl = dist::kl(*g.dist, *s.dist);
        if (g.dist->mask_tensor().defined()) kl = torch::where(g.dist->mask_tensor(), kl, torch::zeros({}, kl.options()));
        if (g.mask.defined()) kl = torch::where(g.mask, kl, torch::zeros({}, kl.options()));
        if (g.scale != 1.0) kl = kl * g.scale;
        if (g.scale_tensor.defined()) kl = kl * g.scale_tensor;
        analytic[static_cast<size_t>(t)] = 1;
        // -KL does not depend on z_t itself, only on what came before it.
        costs.push_back({w == 1.0 ? kl : w * kl, &g.plates, std::max(t - 1, upto), true, true});
        upto = std::max(upto, t);
        continue;
      }
      upto = std::max(upto, t);
      costs.push_back({w == 1.0 ? s.log_prob() : w * s.log_prob(), &s.plates, upto, false, true});
    }
    for (size_t t = 0; t < guide_sites.size() && !enumerated; ++t) {
      if (analytic[t]) continue;
      const Site& g = *guide_sites[t];
      const double w = weight(g.name);
      costs.push_back({w == 1.0 ? g.log_prob() : w * g.log_prob(), &g.plates, static_cast<int64_t>(t), true, true});
    }

    // The pathwise part: the objective itself.
    std::vector<torch::Tensor> plus, minus;
    plus.reserve(costs.size());
    minus.reserve(costs.size());
    for (const auto& c : costs) (c.negative ? minus : plus).push_back(c.value.dim() == 0 ? c.value : c.value.sum());
    auto objective = plus.empty() ? torch::zeros({}) : torch::stack(plus).sum();
    if (!minus.empty()) objective = objective - torch::stack(minus).sum();
    objectives.push_back(objective.detach());
    auto surrogate = objective;

    // Score-function terms, latest site first, so that each plate signature
    // accumulates its downstream costs once.
    bool any_score = false;
    // (A guide site enumerated is weighted by its probabilities instead.)
    for (const Site* g : guide_sites) any_score = any_score || !(g->reparameterised || g->enumeration.enumerated());
    if (any_score) {
      std::vector<size_t> order(costs.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return costs[a].upto > costs[b].upto; });
      struct Accumulator {
        torch::Tensor sum;
        size_t next = 0;
      };
      std::map<std::string, Accumulator> accumulators;
      std::vector<torch::Tensor> extra, baseline_losses;
      for (size_t ti = guide_sites.size(); ti-- > 0;) {
        const Site& g = *guide_sites[ti];
        if (g.reparameterised || g.enumeration.enumerated()) continue;
        const auto t = static_cast<int64_t>(ti);
        std::string key;
        for (const auto& f : g.plates) key += fmt::format("{}@{};", f.name, f.dim);
        auto& acc = accumulators[key];
        while (acc.next < order.size() && (!options_.downstream_only || costs[order[acc.next]].upto >= t)) {
          const auto& c = costs[order[acc.next]];
          auto r = reduce_to(c.value.detach(), *c.plates, g.plates);
          if (c.latent && options_.signal_kl_weight != 1.0) r = r * options_.signal_kl_weight;
          acc.sum = acc.sum.defined() ? (c.negative ? acc.sum - r : acc.sum + r) : (c.negative ? -r : r);
          ++acc.next;
        }
        auto signal = acc.sum.defined() ? acc.sum : torch::zeros({}, g.log_prob().options());
        const auto& lq = unscaled_log_prob(g);
        const auto& b = g.options.baseline;
        if (b.defined()) {
          std::vector<int64_t> shape;
          bool ok = true;
          try {
            shape = at::infer_size(b.sizes(), lq.sizes());
          } catch (const c10::Error&) {
            ok = false;
          }
          if (!ok || shape != lq.sizes().vec())
            throw ShapeError(fmt::format("Elbo: {} has a baseline of shape {}, which does not broadcast to its "
                                         "log_prob shape {}",
                                         describe_site(g), shape_string(b.sizes()), shape_string(lq.sizes())));
        }
        torch::Tensor centred;
        const auto stats = stats_key(g.name);
        const auto active = active_elements(g);
        if (b.defined()) {
          // NVIL: the network b predicts the signal left after the running mean c.
          const auto it = running_.find(stats);
          const bool has_c = options_.decaying_baseline && it != running_.end() && it->second.mean.defined();
          const auto c = has_c ? it->second.mean.to(signal.scalar_type()) : torch::zeros({}, signal.options());
          const auto residual = signal - b.detach();
          centred = options_.decaying_baseline ? centre(stats, residual, active) : residual;
          auto err = (signal - c - b).pow(2);
          if (active.defined()) err = torch::where(active, err, torch::zeros({}, err.options()));
          baseline_losses.push_back(err.sum());
          collect_leaves(b, result.baseline_params, seen_leaves);
        } else {
          centred = options_.decaying_baseline ? centre(stats, signal, active) : signal;
        }
        extra.push_back((lq * centred.detach()).sum());
      }
      if (!extra.empty()) surrogate = surrogate + torch::stack(extra).sum();
      if (!baseline_losses.empty()) surrogate = surrogate - torch::stack(baseline_losses).sum();
    }
    losses.push_back(-surrogate);
    if (options_.check_finite && !torch::isfinite(objectives.back()).item<bool>())
      throw_non_finite(traces, objectives.back(), "Elbo");
  }
  // The mean over particles (vectorised ones are summed over their plate).
  const double k = options_.particles;
  result.loss = (losses.size() == 1 ? losses[0] : torch::stack(losses).sum()) / k;
  result.objective = (objectives.size() == 1 ? objectives[0] : torch::stack(objectives).sum()) / k;
  return result;
}

ElboResult Elbo::evaluate_iwae(const Runner& run) {
  ElboResult result;
  std::unordered_set<std::string> seen_params;
  std::vector<torch::Tensor> weights, scores;
  for (int r = 0; r < runs(); ++r) {
    const TracePair traces = run();
    check_pairing(traces, "Elbo (iwae)");
    param_names(traces, result.params, seen_params);
    auto lw = log_weights(traces, "Elbo (iwae)");
    if (options_.check_finite && !torch::isfinite(lw).all().item<bool>()) throw_non_finite(traces, lw.sum(), "Elbo (iwae)");
    weights.push_back(lw);
    // Score of the non-reparameterised guide draws of this particle, per data point.
    torch::Tensor score;
    for (const auto& s : traces.guide) {
      if (s.kind != SiteKind::sample || s.reparameterised) continue;
      auto r = per_datum(unscaled_log_prob(s), s, s.plates, factor_plate(traces), "Elbo (iwae)");
      score = score.defined() ? score + r : r;
    }
    if (score.defined()) scores.push_back(score);
  }
  const auto k = static_cast<double>(options_.particles);
  // Log-weights [K, N], from K runs or one vectorised run.
  const auto all = options_.vectorise ? weights.front() : torch::stack(weights);
  auto bound = torch::logsumexp(all, 0) - std::log(k);  // [N]
  auto surrogate = bound.sum();
  result.objective = surrogate.detach();
  if (!scores.empty()) {
    auto signal = bound.detach();
    auto centred = options_.decaying_baseline ? centre("iwae", signal, torch::Tensor()) : signal;
    auto total = (options_.vectorise ? scores.front() : torch::stack(scores)).sum(0);
    surrogate = surrogate + (total * centred).sum();
  }
  result.loss = -surrogate;
  return result;
}

double Elbo::estimate_impl(const Runner& run) {
  torch::NoGradGuard no_grad;
  double total = 0;
  for (int r = 0; r < runs(); ++r) {
    const TracePair traces = run();
    check_pairing(traces);
    if (options_.enumerate && enumeration::enumerated(traces)) {
      std::vector<int64_t> position;
      std::vector<const Site*> guide_sites;
      guide_positions(traces.guide, position, guide_sites);
      std::vector<enumeration::Term> terms;
      std::vector<Cost> costs;
      EliminationStats stats;
      enumerated_costs(traces, position, guide_sites, [](const std::string&) { return 1.0; }, terms, costs, stats);
      for (const auto& c : costs) total += (c.negative ? -1.0 : 1.0) * c.value.sum().item<double>();
      continue;
    }
    total += (traces.model.log_prob_sum() - traces.guide.log_prob_sum()).item<double>();
  }
  return total / options_.particles;
}

void Elbo::save_state(TensorArchive& archive, const std::string& prefix) const {
  for (const auto& [name, r] : running_) {
    if (!r.mean.defined()) continue;
    archive.tensors.emplace_back(prefix + name + "/mean", r.mean);
    archive.tensors.emplace_back(prefix + name + "/var", r.var);
  }
}

void Elbo::load_state(const TensorArchive& archive, const std::string& prefix) {
  running_.clear();
  for (const auto& [name, t] : archive.tensors) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const auto rest = name.substr(prefix.size());
    const auto slash = rest.rfind('/');
    if (slash == std::string::npos) continue;
    if (t.numel() != 1 || !t.is_floating_point())
      throw ShapeError(fmt::format("Elbo: the saved baseline statistic \"{}\" is a {} tensor of shape {}, but must be "
                                   "one real number",
                                   name, c10::toString(t.scalar_type()), shape_string(t.sizes())));
    auto& r = running_[rest.substr(0, slash)];
    (rest.substr(slash + 1) == "mean" ? r.mean : r.var) = t.clone();
  }
}

// ------------------------------------------------------------------ importance sampling

bool is_joint(const TracePair& traces) { return data_plate(traces) && !factor_plate(traces); }

torch::Tensor log_weights(const TracePair& traces, std::string_view who) {
  const PlateFrame* data = factor_plate(traces);
  torch::Tensor total;
  auto add = [&](const torch::Tensor& lp, const Site& s, const std::vector<PlateFrame>& plates, bool minus) {
    auto r = per_datum(lp, s, plates, data, who);
    total = total.defined() ? (minus ? total - r : total + r) : (minus ? -r : r);
  };
  if (enumeration::enumerated(traces)) {
    // Every enumerated variable summed out; the guide's q of its own
    // enumerated sites cancels from the weight.
    EliminationStats stats;
    for (const auto& t : enumeration::sum_out(traces, enumeration::Sum::all, stats, who))
      add(t.log_value, *t.sites.front(), t.plates, t.guide);
    return total.defined() ? total : torch::zeros({1});
  }
  for (const auto& s : traces.model)
    if (s.is_random()) add(s.log_prob(), s, s.plates, false);
  for (const auto& s : traces.guide)
    if (s.kind == SiteKind::sample) add(s.log_prob(), s, s.plates, true);
  return total.defined() ? total : torch::zeros({1});
}

LogMarginal log_marginal_impl(const Runner& run, const ImportanceOptions& options, const VectorisedRunner& vectorised) {
  if (options.particles < 1)
    throw ArgumentError(fmt::format("log_marginal: particles is {}, but must be at least 1", options.particles));
  if (options.chunk < 1)
    throw ArgumentError(fmt::format("log_marginal: chunk is {}, but must be at least 1", options.chunk));
  if (options.vectorise.value_or(false) && !vectorised)
    throw ArgumentError("log_marginal: vectorise is set, but no vectorised runner was given");
  torch::NoGradGuard no_grad;
  LogMarginal out;
  // Tried on the first chunk unless told: a program that does not broadcast
  // over the particle plate fails there, and the loop takes over.
  bool vectorise = options.vectorise.value_or(true) && vectorised;
  bool tried = false;
  torch::Tensor lse1, lse2;  // running logsumexp of w and of 2w
  for (int64_t start = 0; start < options.particles; start += options.chunk) {
    const auto n = std::min(options.chunk, options.particles - start);
    torch::Tensor w;
    if (vectorise) {
      const bool trial = !options.vectorise.has_value() && !tried;
      tried = true;
      try {
        const TracePair traces = vectorised(n);
        check_pairing(traces, "log_marginal");
        w = log_weights(traces, "log_marginal").to(torch::kDouble);
        if (w.dim() != 2 || w.size(0) != n)
          throw ShapeError(fmt::format("log_marginal: vectorised log-weights have shape {}, expected [{}, N]",
                                       shape_string(w.sizes()), n));
        if (start == 0) out.joint = is_joint(traces);
      } catch (const std::exception& e) {
        if (!trial) throw;
        // SiteErrors are the program's, not the vectorisation's: the loop would raise them too.
        if (dynamic_cast<const SiteError*>(&e)) throw;
        vectorise = false;
        w = torch::Tensor();
        const std::string what = e.what();
        out.note = fmt::format("particles drawn one run at a time: the programs do not broadcast over a leading "
                               "particle dimension ({})",
                               what.substr(0, what.find('\n')));
      }
    }
    std::vector<torch::Tensor> chunk;
    chunk.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n && !w.defined(); ++i) {
      const TracePair traces = run();
      check_pairing(traces, "log_marginal");
      if (start == 0 && i == 0) out.joint = is_joint(traces);
      chunk.push_back(log_weights(traces, "log_marginal").to(torch::kDouble));
    }
    if (!w.defined()) w = torch::stack(chunk);
    auto c1 = torch::logsumexp(w, 0), c2 = torch::logsumexp(2 * w, 0);
    lse1 = lse1.defined() ? torch::logaddexp(lse1, c1) : c1;
    lse2 = lse2.defined() ? torch::logaddexp(lse2, c2) : c2;
  }
  const auto k = static_cast<double>(options.particles);
  out.log_likelihood = lse1 - std::log(k);
  out.ess = torch::exp(2 * lse1 - lse2);
  // Delta method: Var(log mean w) ~ (E[w^2] / E[w]^2 - 1) / K = 1 / ESS - 1 / K.
  out.standard_error = (1.0 / out.ess - 1.0 / k).clamp_min(0.0).sqrt();
  out.vectorised = vectorise;
  return out;
}

}  // namespace ppl::infer
