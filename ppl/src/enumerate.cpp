// Markov chains and the parallel enumeration handler.
#include <algorithm>

#include <fmt/format.h>
#include <ATen/ATen.h>

#include <ppl/core/check.hpp>
#include <ppl/core/enumerate.hpp>
#include <ppl/core/markov.hpp>
#include <ppl/core/message.hpp>

namespace ppl {

// ------------------------------------------------------------------ Markov

namespace {
thread_local std::vector<Markov*> t_markov;
}  // namespace

Markov::Markov(MarkovOptions options) : history_(options.history) {
  if (history_ < 0) throw ArgumentError(fmt::format("markov: history is {}, but must be nonnegative", history_));
  t_markov.push_back(this);
}

Markov::~Markov() {
  const auto it = std::find(t_markov.begin(), t_markov.end(), this);
  if (it != t_markov.end()) t_markov.erase(it);
}

void Markov::step() {
  ++position_;
  window_.emplace_back();
  if (window_.size() > static_cast<size_t>(history_) + 1) window_.erase(window_.begin());
}

void Markov::add(int64_t variable) {
  if (position_ < 0) step();
  window_.back().push_back(variable);
}

void Markov::visible(std::vector<int64_t>& out) const {
  for (const auto& s : window_) out.insert(out.end(), s.begin(), s.end());
}

const std::vector<Markov*>& markov_stack() { return t_markov; }

namespace handlers {

// ------------------------------------------------------------------ the dims

EnumerationState::EnumerationState(int64_t first_dim) : first_dim_(first_dim) {
  if (first_dim >= 0)
    throw ArgumentError(fmt::format("enumerate: first_dim is {}, but must be negative (-(max_plate_nesting + 1))",
                                    first_dim));
}

std::pair<int64_t, int64_t> EnumerationState::global(int64_t size) {
  const int64_t dim = leftmost_ == 0 ? first_dim_ : leftmost_ - 1;
  leftmost_ = dim;
  const int64_t id = next_id_++;
  globals_.emplace_back(dim, id);
  vars_[id] = {dim, size};
  return {dim, id};
}

std::pair<int64_t, int64_t> EnumerationState::local(int64_t size, const std::vector<int64_t>& in_scope) {
  auto taken = [&](int64_t d) {
    return std::find(in_scope.begin(), in_scope.end(), d) != in_scope.end() ||
           std::any_of(globals_.begin(), globals_.end(), [d](const auto& g) { return g.first == d; });
  };
  int64_t dim = first_dim_;
  while (taken(dim)) --dim;
  leftmost_ = leftmost_ == 0 ? dim : std::min(leftmost_, dim);
  const int64_t id = next_id_++;
  vars_[id] = {dim, size};
  return {dim, id};
}

int64_t EnumerationState::dim_of(int64_t variable) const {
  const auto it = vars_.find(variable);
  PPL_ASSERT(it != vars_.end());
  return it->second.first;
}

int64_t EnumerationState::size_of(int64_t variable) const {
  const auto it = vars_.find(variable);
  PPL_ASSERT(it != vars_.end());
  return it->second.second;
}

// ------------------------------------------------------------------ the handler

void EnumerateHandler::process(Message& msg) {
  if (!msg.dist || (msg.kind != SiteKind::sample && msg.kind != SiteKind::observe)) return;
  const bool enumerate =
      msg.kind == SiteKind::sample && !msg.observed && msg.options.enumerate && !msg.value.defined();
  // Until the first variable, sites run as without enumeration.
  if (state_.variables() == 0 && !enumerate && !msg.enumeration.enumerated()) return;
  auto& e = msg.enumeration;
  const int64_t first = state_.first_dim();
  const int64_t block = -first - 1;  // the plates' dims
  e.first_dim = first;
  for (const auto& f : msg.plates)
    if (f.dim < -block)
      throw ShapeError(fmt::format("enumerate: {} is in plate \"{}\" at dim {}, but enumeration leaves plates only "
                                   "the {} rightmost dims (dims from {} on enumerate); raise max_plate_nesting",
                                   describe_site(msg), f.name, f.dim, block, first));

  // The variables the site may depend on: the global ones and those within
  // reach of every chain it is in.
  const bool in_chain = recycle_ && !t_markov.empty();
  e.visible = state_.globals();
  std::vector<int64_t> local_dims;
  if (in_chain) {
    std::vector<int64_t> vars;
    for (const Markov* m : t_markov) m->visible(vars);
    for (const auto v : vars) {
      const auto d = state_.dim_of(v);
      if (e.variable_at(d) < 0) e.visible.emplace_back(d, v);
      local_dims.push_back(d);
    }
  }

  // Batch dims left of the plates belong to enumerated variables.
  const auto batch = msg.dist->batch_shape();
  const auto rank = static_cast<int64_t>(batch.size());
  for (int64_t d = first; d >= -rank; --d) {
    const auto size = batch[static_cast<size_t>(rank + d)];
    if (size == 1) continue;
    const auto v = e.variable_at(d);
    if (v < 0 || state_.size_of(v) != size)
      throw ShapeError(fmt::format("enumerate: {} has batch shape {}, whose dim {} (size {}) lies left of the plates, "
                                   "where enumeration puts its variables, but is not the dim of an enumerated "
                                   "variable the site can see; declare a plate for it (and raise max_plate_nesting), "
                                   "and inside a ppl::Markov chain depend only on the steps within its history",
                                   describe_site(msg), shape_string(batch), d, size));
  }

  if (!enumerate) return;
  torch::Tensor support;
  try {
    support = msg.dist->enumerate_support(/*expand=*/false);
  } catch (const ArgumentError& err) {
    throw ArgumentError(fmt::format("{}{}", err.what(), msg.context("").suffix()));
  }
  const auto [dim, id] = in_chain ? state_.local(support.size(0), local_dims) : state_.global(support.size(0));
  if (in_chain)
    for (Markov* m : t_markov) m->add(id);
  // The support along `dim`: [K, 1, ..., 1] + event shape.
  std::vector<int64_t> shape{support.size(0)};
  shape.insert(shape.end(), static_cast<size_t>(-dim - 1), 1);
  const auto event = msg.dist->event_shape();
  shape.insert(shape.end(), event.begin(), event.end());
  msg.value = support.reshape(shape);
  msg.reparameterised = false;
  e.dim = dim;
  e.variable = id;
  e.visible.emplace_back(dim, id);
}

}  // namespace handlers
}  // namespace ppl
