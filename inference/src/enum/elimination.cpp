// Tensor variable elimination over plates, and the terms of a pair of
// traces with their enumerated variables summed out.
#include "elimination.hpp"

#include <algorithm>
#include <bit>
#include <functional>
#include <numeric>
#include <set>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <ppl/core/check.hpp>

namespace ppl::infer::enumeration {

namespace {

/// The first site's enumeration record that is active (first_dim != 0).
int64_t first_dim(const TracePair& traces) {
  for (const Trace* t : {&traces.guide, &traces.model})
    for (const auto& s : *t)
      if (s.enumeration.active()) return s.enumeration.first_dim;
  return 0;
}

/// `f`'s log-values laid out over the variables `to` (size 1 where `f`
/// lacks one) followed by the plate block.
torch::Tensor align(const Factor& f, const std::vector<int64_t>& to, int64_t block) {
  const auto nv = static_cast<int64_t>(f.vars.size());
  std::vector<int64_t> perm, shape;
  perm.reserve(static_cast<size_t>(nv + block));
  shape.reserve(to.size() + static_cast<size_t>(block));
  for (const auto v : to) {
    const auto it = std::find(f.vars.begin(), f.vars.end(), v);
    if (it == f.vars.end()) {
      shape.push_back(1);
    } else {
      const auto i = it - f.vars.begin();
      perm.push_back(i);
      shape.push_back(f.log_value.size(i));
    }
  }
  for (int64_t i = 0; i < block; ++i) {
    perm.push_back(nv + i);
    shape.push_back(f.log_value.size(nv + i));
  }
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == static_cast<int64_t>(i);
  return (identity ? f.log_value : f.log_value.permute(perm)).reshape(shape);
}

/// The sum of `factors` (a product of log-factors) over the union of their
/// variables, in order of first appearance.
Factor combine(const std::vector<const Factor*>& factors, int64_t block, Ordinal ordinal) {
  Factor out;
  out.ordinal = ordinal;
  for (const Factor* f : factors)
    for (const auto v : f->vars)
      if (std::find(out.vars.begin(), out.vars.end(), v) == out.vars.end()) out.vars.push_back(v);
  for (const Factor* f : factors) {
    auto a = align(*f, out.vars, block);
    out.log_value = out.log_value.defined() ? out.log_value + a : a;
  }
  return out;
}

/// Splits `items` into groups connected through the variables `through`
/// (an item touching none is a group of its own), in order of first item.
template <class T, class VarsOf>
std::vector<std::vector<size_t>> components(const std::vector<T>& items, VarsOf vars_of,
                                            const std::function<bool(int64_t)>& through) {
  std::vector<size_t> parent(items.size());
  std::iota(parent.begin(), parent.end(), 0);
  std::function<size_t(size_t)> root = [&](size_t i) { return parent[i] == i ? i : parent[i] = root(parent[i]); };
  std::map<int64_t, size_t> first;
  for (size_t i = 0; i < items.size(); ++i)
    for (const auto v : vars_of(items[i])) {
      if (!through(v)) continue;
      const auto [it, inserted] = first.emplace(v, i);
      if (!inserted) parent[root(i)] = root(it->second);
    }
  std::vector<std::vector<size_t>> groups;
  std::map<size_t, size_t> group_of;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto r = root(i);
    const auto [it, inserted] = group_of.emplace(r, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  return groups;
}

}  // namespace

// ------------------------------------------------------------------ the graph

Ordinal Graph::ordinal(const std::vector<PlateFrame>& plates) {
  Ordinal o = 0;
  for (const auto& f : plates) {
    auto it = std::find_if(plates_.begin(), plates_.end(), [&](const PlateFrame& g) { return g.name == f.name; });
    if (it == plates_.end()) {
      if (plates_.size() == 64)
        throw ArgumentError(fmt::format("{}: enumeration handles at most 64 distinct plates", who_));
      plates_.push_back(f);
      it = plates_.end() - 1;
    }
    o |= Ordinal{1} << (it - plates_.begin());
  }
  return o;
}

std::vector<PlateFrame> Graph::frames(Ordinal o) const {
  std::vector<PlateFrame> out;
  for (size_t i = 0; i < plates_.size(); ++i)
    if (o & (Ordinal{1} << i)) out.push_back(plates_[i]);
  // Outermost (leftmost dim) first, as a site's plates.
  std::sort(out.begin(), out.end(), [](const PlateFrame& a, const PlateFrame& b) { return a.dim < b.dim; });
  return out;
}

const Variable* Graph::variable(int64_t id) const {
  const auto it = vars_.find(id);
  return it == vars_.end() ? nullptr : &it->second;
}

bool Graph::summed(int64_t var) const {
  const auto* v = variable(var);
  return v && v->sum;
}

std::vector<int64_t> Graph::variables_of(const Site& site, c10::IntArrayRef shape) const {
  std::vector<int64_t> out;
  const auto rank = static_cast<int64_t>(shape.size());
  for (int64_t d = -rank; d < -block_; ++d) {
    if (shape[static_cast<size_t>(rank + d)] == 1) continue;
    const auto v = site.enumeration.variable_at(d);
    if (v < 0 || !variable(v))
      throw ShapeError(fmt::format("{}: {} has a log-density of shape {} whose dim {} (size {}) holds no enumerated "
                                   "variable the site can see; inside a ppl::Markov chain a site may use only the "
                                   "values of the steps within its history",
                                   who_, describe_site(site), shape_string(shape), d, shape[static_cast<size_t>(rank + d)]));
    out.push_back(v);
  }
  return out;
}

Factor Graph::pack(const Site& site, const torch::Tensor& log_value) {
  Factor f;
  f.ordinal = ordinal(site.plates);
  auto t = log_value;
  while (t.dim() < block_) t = t.unsqueeze(0);
  const int64_t lead = t.dim() - block_;
  f.vars = variables_of(site, t.sizes());
  std::vector<int64_t> shape;
  for (int64_t i = 0; i < lead; ++i)
    if (t.size(i) > 1) shape.push_back(t.size(i));
  for (int64_t i = lead; i < t.dim(); ++i) {
    const int64_t d = i - t.dim();
    const bool plate = std::any_of(site.plates.begin(), site.plates.end(), [d](const PlateFrame& p) { return p.dim == d; });
    if (t.size(i) > 1 && !plate)
      throw ShapeError(fmt::format("{}: {} depends on an enumerated variable and has a log-density of shape {} whose "
                                   "dim {} (size {}) is in no plate; declare a plate for it, or move it into the "
                                   "event with to_event",
                                   who_, describe_site(site), shape_string(t.sizes().slice(static_cast<size_t>(lead))), d,
                                   t.size(i)));
    shape.push_back(t.size(i));
  }
  f.log_value = t.reshape(shape);
  return f;
}

torch::Tensor Graph::unpack(const Factor& f) const {
  std::vector<size_t> order(f.vars.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return vars_.at(f.vars[a]).dim < vars_.at(f.vars[b]).dim; });
  std::vector<int64_t> perm;
  for (const auto i : order) perm.push_back(static_cast<int64_t>(i));
  const auto nv = static_cast<int64_t>(f.vars.size());
  for (int64_t i = 0; i < block_; ++i) perm.push_back(nv + i);
  const int64_t left = f.vars.empty() ? -block_ : vars_.at(f.vars[order.front()]).dim;
  std::vector<int64_t> shape;
  size_t next = 0;
  for (int64_t d = left; d < -block_; ++d) {
    if (next < order.size() && vars_.at(f.vars[order[next]]).dim == d) {
      shape.push_back(f.log_value.size(static_cast<int64_t>(order[next])));
      ++next;
    } else {
      shape.push_back(1);
    }
  }
  PPL_ASSERT(next == order.size());
  for (int64_t i = 0; i < block_; ++i) shape.push_back(f.log_value.size(nv + i));
  return f.log_value.permute(perm).reshape(shape);
}

// ------------------------------------------------------------------ elimination

Factor Graph::sum_product(std::vector<Factor> factors, const std::vector<int64_t>& eliminate, Ring ring,
                          std::vector<TapeEntry>* tape, EliminationStats& stats) const {
  const Ordinal ordinal = factors.empty() ? 0 : factors.front().ordinal;
  std::vector<char> alive(factors.size(), 1);
  std::map<int64_t, std::set<size_t>> touching;  // variable -> factors holding it
  for (size_t i = 0; i < factors.size(); ++i)
    for (const auto v : factors[i].vars) touching[v].insert(i);
  std::map<int64_t, int64_t> size_of;
  for (const auto& f : factors)
    for (size_t i = 0; i < f.vars.size(); ++i) size_of[f.vars[i]] = f.log_value.size(static_cast<int64_t>(i));
  // Greedy order: the variable whose combined factor is smallest, so a
  // chain is eliminated from an end at K^2 a step.
  auto cost = [&](int64_t v) {
    std::set<int64_t> vars;
    for (const auto i : touching[v]) vars.insert(factors[i].vars.begin(), factors[i].vars.end());
    double c = 1;
    for (const auto u : vars) c *= static_cast<double>(size_of[u]);
    return c;
  };
  std::set<std::pair<double, int64_t>> queue;
  std::map<int64_t, double> queued;
  for (const auto v : eliminate) {
    const auto c = cost(v);
    queue.emplace(c, v);
    queued[v] = c;
  }
  while (!queue.empty()) {
    const auto v = queue.begin()->second;
    queue.erase(queue.begin());
    queued.erase(v);
    std::vector<const Factor*> group;
    const auto holders = touching[v];
    for (const auto i : holders) group.push_back(&factors[i]);
    auto combined = combine(group, block_, ordinal);
    stats.largest_factor = std::max(stats.largest_factor, combined.log_value.numel());
    ++stats.variables;
    const auto pos = static_cast<int64_t>(std::find(combined.vars.begin(), combined.vars.end(), v) - combined.vars.begin());
    if (tape) tape->push_back({v, combined.log_value, combined.vars});
    Factor reduced;
    reduced.ordinal = ordinal;
    reduced.vars = combined.vars;
    reduced.vars.erase(reduced.vars.begin() + pos);
    reduced.log_value = ring == Ring::sum ? at::logsumexp(combined.log_value, {pos}) : combined.log_value.amax({pos});
    // Replace the group by the reduced factor; the costs of its variables change.
    for (const auto i : holders) {
      alive[i] = 0;
      for (const auto u : factors[i].vars) touching[u].erase(i);
    }
    touching.erase(v);
    factors.push_back(std::move(reduced));
    alive.push_back(1);
    const auto j = factors.size() - 1;
    for (const auto u : factors[j].vars) touching[u].insert(j);
    for (const auto u : factors[j].vars) {
      const auto it = queued.find(u);
      if (it == queued.end()) continue;
      queue.erase({it->second, u});
      it->second = cost(u);
      queue.emplace(it->second, u);
    }
  }
  std::vector<const Factor*> rest;
  for (size_t i = 0; i < factors.size(); ++i)
    if (alive[i]) rest.push_back(&factors[i]);
  return combine(rest, block_, ordinal);
}

Factor Graph::plate_product(Factor f, Ordinal plates, EliminationStats& stats) const {
  const auto nv = static_cast<int64_t>(f.vars.size());
  for (size_t i = 0; i < plates_.size(); ++i) {
    if (!(plates & (Ordinal{1} << i))) continue;
    const auto& frame = plates_[i];
    // A kept (guide) variable inside this plate cannot be carried out of it.
    for (const auto v : f.vars) {
      const auto& var = vars_.at(v);
      if (var.ordinal & (Ordinal{1} << i))
        throw ArgumentError(fmt::format("{}: the model enumerates variables outside plate \"{}\" that guide site "
                                        "\"{}\" inside it depends on; model enumeration must be no more global than "
                                        "guide enumeration (enumerate those sites in the guide too)",
                                        who_, frame.name, var.site));
    }
    const int64_t pos = nv + block_ + frame.dim;
    auto t = f.log_value;
    f.log_value = t.size(pos) == 1 ? t * static_cast<double>(frame.subsample_size) : t.sum(pos, /*keepdim=*/true);
    ++stats.plate_products;
  }
  f.ordinal &= ~plates;
  return f;
}

Factor Graph::contract(std::vector<Factor> factors, Ring ring, std::vector<TapeEntry>* tape,
                       EliminationStats& stats) const {
  // Each summed variable belongs to the plates common to all its factors.
  std::map<int64_t, Ordinal> var_ordinal;
  for (const auto& f : factors)
    for (const auto v : f.vars)
      if (summed(v)) {
        const auto [it, inserted] = var_ordinal.emplace(v, f.ordinal);
        if (!inserted) it->second &= f.ordinal;
      }
  std::map<Ordinal, std::vector<int64_t>> vars_at;
  for (const auto& [v, o] : var_ordinal) vars_at[o].push_back(v);
  std::map<Ordinal, std::vector<Factor>> tree;
  Ordinal root = ~Ordinal{0};
  for (auto& f : factors) {
    root &= f.ordinal;
    tree[f.ordinal].push_back(std::move(f));
  }
  auto pending = [&] {
    return std::any_of(vars_at.begin(), vars_at.end(), [](const auto& kv) { return !kv.second.empty(); });
  };
  while (pending()) {
    PPL_ASSERT(!tree.empty());
    // The deepest ordinal (most plates) is a leaf.
    auto leaf_it = std::max_element(tree.begin(), tree.end(), [](const auto& a, const auto& b) {
      return std::popcount(a.first) < std::popcount(b.first);
    });
    const Ordinal leaf = leaf_it->first;
    std::vector<Factor> terms = std::move(leaf_it->second);
    tree.erase(leaf_it);
    std::vector<int64_t> local;
    if (auto it = vars_at.find(leaf); it != vars_at.end()) {
      local = std::move(it->second);
      vars_at.erase(it);
    }
    const auto is_local = [&](int64_t v) { return std::find(local.begin(), local.end(), v) != local.end(); };
    for (const auto& group : components(terms, [](const Factor& f) { return f.vars; }, is_local)) {
      std::vector<Factor> members;
      std::vector<int64_t> eliminate;
      for (const auto i : group) {
        for (const auto v : terms[i].vars)
          if (is_local(v) && std::find(eliminate.begin(), eliminate.end(), v) == eliminate.end()) eliminate.push_back(v);
        members.push_back(std::move(terms[i]));
      }
      auto term = sum_product(std::move(members), eliminate, ring, tape, stats);
      Ordinal parent = leaf;
      if (leaf != root) {
        // Up to the plates of the variables it still holds.
        parent = 0;
        bool any = false;
        for (const auto& [o, vs] : vars_at)
          for (const auto v : term.vars)
            if (std::find(vs.begin(), vs.end(), v) != vs.end()) {
              parent |= o;
              any = true;
            }
        if (!any) parent = root;
        if (parent == leaf || (parent & ~leaf) != 0) {
          std::vector<std::string> names;
          for (const auto& f : frames(leaf)) names.push_back(fmt::format("\"{}\"", f.name));
          throw ArgumentError(fmt::format("{}: enumerated variables depend on the independent plates {}; plates must "
                                          "nest as a tree for enumeration (make one of them a loop of sites)",
                                          who_, fmt::join(names, ", ")));
        }
        term = plate_product(std::move(term), leaf & ~parent, stats);
      }
      tree[parent].push_back(std::move(term));
    }
  }
  // Everything left lies at the root, or above it with no summed variable.
  std::vector<Factor> rest;
  for (auto& [o, fs] : tree)
    for (auto& f : fs) rest.push_back(o == root ? std::move(f) : plate_product(std::move(f), o & ~root, stats));
  std::vector<const Factor*> ptrs;
  for (const auto& f : rest) ptrs.push_back(&f);
  return combine(ptrs, block_, root);
}

// ------------------------------------------------------------------ traces

std::vector<int64_t> log_prob_shape(const Site& s) {
  const auto event = static_cast<int64_t>(s.dist->event_shape().size());
  const auto v = s.value.sizes();
  const std::vector<int64_t> value_batch(v.begin(), v.end() - std::min<int64_t>(event, v.size()));
  return at::infer_size(value_batch, s.dist->batch_shape());
}

std::vector<std::vector<Factor>> connected(std::vector<Factor> factors, const Graph& graph) {
  const auto groups = components(factors, [](const Factor& f) { return f.vars; },
                                 [&](int64_t v) { return graph.variable(v) && graph.variable(v)->sum; });
  std::vector<std::vector<Factor>> out;
  for (const auto& group : groups) {
    out.emplace_back();
    for (const auto i : group) out.back().push_back(std::move(factors[i]));
  }
  return out;
}

bool enumerated(const TracePair& traces) {
  for (const Trace* t : {&traces.guide, &traces.model})
    for (const auto& s : *t)
      if (s.enumeration.enumerated()) return true;
  return false;
}

std::vector<Term> sum_out(const TracePair& traces, Sum which, EliminationStats& stats, std::string_view who) {
  const int64_t first = first_dim(traces);
  PPL_ASSERT(first < 0);
  Graph graph(-first - 1, who);
  const auto& q = traces.guide;
  const auto& p = traces.model;
  auto declare = [&](const Site& s, bool sum) {
    const auto& e = s.enumeration;
    const auto size = s.value.size(s.value.dim() + e.dim - static_cast<int64_t>(s.dist->event_shape().size()));
    graph.add_variable(e.variable, {e.dim, size, graph.ordinal(s.plates), sum, s.name});
  };
  for (const auto& s : q)
    if (s.kind == SiteKind::sample && s.enumeration.enumerated()) declare(s, which == Sum::all);
  for (const auto& s : p)
    if (s.is_random() && s.enumeration.enumerated() && !graph.variable(s.enumeration.variable)) declare(s, true);

  // Sites that depend on a summed variable become factors; the rest are terms.
  std::vector<Term> terms;
  struct Pending {
    const Site* site;
    bool guide;
    Factor factor;
  };
  std::vector<Pending> pending;
  auto visit = [&](const Site& s, bool guide) {
    const auto shape = log_prob_shape(s);
    const auto vars = graph.variables_of(s, shape);
    const bool touches = std::any_of(vars.begin(), vars.end(), [&](int64_t v) { return graph.variable(v)->sum; });
    if (!touches) {
      terms.push_back({s.log_prob(), s.plates, {&s}, guide});
      return;
    }
    if (s.scale_tensor.defined())
      throw ArgumentError(fmt::format("{}: {} depends on an enumerated variable and has a scale tensor; enumeration "
                                      "takes only one number as the scale of the sites summed together",
                                      who, describe_site(s)));
    // Unscaled (one common scale goes outside the sum); masked, except an
    // enumerated site's own density, which must sum to one over its support.
    auto lp = s.dist->log_prob(s.value);
    if (s.mask.defined() && !s.enumeration.enumerated()) lp = at::where(s.mask, lp, at::zeros({}, lp.options()));
    if (guide) lp = -lp;
    pending.push_back({&s, guide, graph.pack(s, lp)});
  };
  for (const auto& s : p)
    if (s.is_random()) visit(s, false);
  if (which == Sum::all)
    for (const auto& s : q)
      if (s.kind == SiteKind::sample && !s.enumeration.enumerated()) visit(s, true);

  const auto groups = components(pending, [](const Pending& x) { return x.factor.vars; },
                                 [&](int64_t v) { return graph.variable(v)->sum; });
  for (const auto& group : groups) {
    std::vector<Factor> factors;
    Term term;
    term.contracted = true;
    const Site* scaled = nullptr;
    for (const auto i : group) {
      const Site& s = *pending[i].site;
      if (scaled && s.scale != scaled->scale)
        throw ArgumentError(fmt::format("{}: {} (scale {}) and {} (scale {}) are summed over one enumerated variable, "
                                        "but their scales differ; enumeration needs one scale for them (a subsampled "
                                        "plate scales only the sites inside it)",
                                        who, describe_site(*scaled), scaled->scale, describe_site(s), s.scale));
      scaled = &s;
      term.sites.push_back(&s);
      factors.push_back(std::move(pending[i].factor));
    }
    auto f = graph.contract(std::move(factors), Ring::sum, nullptr, stats);
    term.plates = graph.frames(f.ordinal);
    term.log_value = graph.unpack(f);
    if (scaled->scale != 1.0) term.log_value = term.log_value * scaled->scale;
    terms.push_back(std::move(term));
  }
  return terms;
}

torch::Tensor expect_under_guide(const Trace& guide, const torch::Tensor& value, const std::vector<PlateFrame>& plates,
                                 std::string_view who) {
  // The guide's enumerated sites by dim (they never recycle their dims).
  std::map<int64_t, const Site*> by_dim;
  int64_t block = 0;
  for (const auto& s : guide)
    if (s.kind == SiteKind::sample && s.enumeration.enumerated()) {
      by_dim[s.enumeration.dim] = &s;
      block = -s.enumeration.first_dim - 1;
    }
  if (by_dim.empty() || value.dim() <= block) return value;
  // The guide variables the value varies along, and their guide ancestors.
  std::vector<const Site*> weights;
  std::vector<int64_t> todo;
  for (int64_t d = -value.dim(); d < -block; ++d)
    if (value.size(value.dim() + d) > 1) todo.push_back(d);
  std::set<int64_t> seen;
  while (!todo.empty()) {
    const auto d = todo.back();
    todo.pop_back();
    if (!seen.insert(d).second) continue;
    const auto it = by_dim.find(d);
    if (it == by_dim.end())
      throw ShapeError(fmt::format("{}: a term of shape {} varies along dim {}, which holds no enumerated guide "
                                   "variable",
                                   who, shape_string(value.sizes()), d));
    const Site& g = *it->second;
    for (const auto& f : g.plates)
      if (std::none_of(plates.begin(), plates.end(), [&](const PlateFrame& p) { return p.name == f.name; }))
        throw ArgumentError(fmt::format("{}: a term outside plate \"{}\" depends on guide {}, which is enumerated "
                                        "inside it",
                                        who, f.name, describe_site(g)));
    if (g.mask.defined() || g.dist->mask_tensor().defined())
      throw ArgumentError(fmt::format("{}: guide {} is enumerated and masked; its probabilities weight the terms "
                                      "downstream, so it must not be masked",
                                      who, describe_site(g)));
    weights.push_back(&g);
    const auto lp_shape = log_prob_shape(g);
    const auto rank = static_cast<int64_t>(lp_shape.size());
    for (int64_t e = -rank; e < -block; ++e)
      if (lp_shape[static_cast<size_t>(rank + e)] > 1) todo.push_back(e);
  }
  if (weights.empty()) return value;
  torch::Tensor log_weight;
  for (const Site* g : weights) {
    const auto lq = g->dist->log_prob(g->value);
    log_weight = log_weight.defined() ? log_weight + lq : lq;
  }
  auto weighted = log_weight.exp() * value;
  std::vector<int64_t> lead;
  for (int64_t i = 0; i < weighted.dim() - block; ++i) lead.push_back(i);
  return lead.empty() ? weighted : weighted.sum(lead);
}

}  // namespace ppl::infer::enumeration
