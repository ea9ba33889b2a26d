// infer_discrete: MAP values or posterior draws of the enumerated sites, by
// elimination forwards and choices backwards.
#include <ppl/infer/enum/infer_discrete.hpp>

#include <map>

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <ppl/core/check.hpp>
#include <ppl/core/random.hpp>

#include "elimination.hpp"

namespace ppl::infer {

namespace {

using enumeration::Factor;
using enumeration::Graph;
using enumeration::TapeEntry;

constexpr const char* kWho = "infer_discrete";

/// Each variable's index into its support, in the plate block's layout,
/// chosen from the last eliminated to the first: the most probable one
/// (temperature 0) or a draw (1) given the variables chosen already.
std::map<int64_t, torch::Tensor> choose(const std::vector<TapeEntry>& tape, int temperature) {
  std::map<int64_t, torch::Tensor> chosen;
  for (auto entry = tape.rbegin(); entry != tape.rend(); ++entry) {
    auto t = entry->log_value;
    auto vars = entry->vars;
    for (size_t i = vars.size(); i-- > 0;) {
      if (vars[i] == entry->var) continue;
      const auto& index = chosen.at(vars[i]);
      std::vector<int64_t> shape(vars.size(), 1);
      shape.insert(shape.end(), index.sizes().begin(), index.sizes().end());
      t = t.take_along_dim(index.reshape(shape), static_cast<int64_t>(i)).squeeze(static_cast<int64_t>(i));
      vars.erase(vars.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (temperature == 1) {
      // Gumbel-max: argmax(log p + G) is a draw from softmax(log p).
      const auto u = random::uniform(t.sizes(), t.options().requires_grad(false), 0.0, 1.0);
      t = t.detach() - (-u.clamp_min(1e-38).log()).log();
    }
    chosen[entry->var] = t.argmax(0);
  }
  return chosen;
}

/// The support values at `index` (plate block layout), without the
/// leading dims of size 1, so that they broadcast with the site's
/// distribution when the model runs without enumeration.
torch::Tensor support_at(const Site& s, const torch::Tensor& index) {
  const auto support = s.dist->enumerate_support(/*expand=*/false);
  const auto event = s.dist->event_shape();
  auto values = support.reshape({support.size(0), -1}).index_select(0, index.reshape(-1));
  std::vector<int64_t> shape = index.sizes().vec();
  shape.insert(shape.end(), event.begin(), event.end());
  values = values.reshape(shape);
  while (values.dim() > static_cast<int64_t>(event.size()) && values.size(0) == 1) values = values.squeeze(0);
  return values;
}

}  // namespace

namespace detail {

void check_options(const InferDiscreteOptions& options) {
  if (options.temperature != 0 && options.temperature != 1)
    throw ArgumentError(fmt::format("infer_discrete: temperature is {}, but must be 0 (MAP) or 1 (a posterior draw)",
                                    options.temperature));
  if (options.max_plate_nesting < 0)
    throw ArgumentError(fmt::format("infer_discrete: max_plate_nesting is {}, but must be at least 0",
                                    options.max_plate_nesting));
}

Trace sample_discrete(const Trace& trace, int temperature) {
  int64_t first = 0;
  for (const auto& s : trace)
    if (s.enumeration.active()) first = s.enumeration.first_dim;
  PPL_ASSERT(first < 0);
  Graph graph(-first - 1, kWho);
  for (const auto& s : trace) {
    if (s.kind != SiteKind::sample || !s.enumeration.enumerated()) continue;
    const auto& e = s.enumeration;
    const auto size = s.value.size(s.value.dim() + e.dim - static_cast<int64_t>(s.dist->event_shape().size()));
    graph.add_variable(e.variable, {e.dim, size, graph.ordinal(s.plates), true, s.name});
  }
  // Every site that depends on an enumerated variable is a factor: masked,
  // unscaled, an enumerated site's own density unmasked.
  std::vector<Factor> factors;
  for (const auto& s : trace) {
    if (!s.is_random()) continue;
    if (graph.variables_of(s, enumeration::log_prob_shape(s)).empty()) continue;
    if (s.kind == SiteKind::sample && !s.observed && !s.enumeration.enumerated())
      throw ArgumentError(fmt::format("infer_discrete: latent {} is not enumerated but depends on an enumerated site; "
                                      "enumerate it, or condition it (replay a guide's trace into the model)",
                                      describe_site(s)));
    auto lp = s.dist->log_prob(s.value);
    if (s.mask.defined() && !s.enumeration.enumerated()) lp = at::where(s.mask, lp, at::zeros({}, lp.options()));
    factors.push_back(graph.pack(s, lp.detach()));
  }
  std::vector<TapeEntry> tape;
  EliminationStats stats;
  const auto ring = temperature == 0 ? enumeration::Ring::max : enumeration::Ring::sum;
  for (auto& group : enumeration::connected(std::move(factors), graph)) graph.contract(std::move(group), ring, &tape, stats);
  const auto chosen = choose(tape, temperature);

  // Every latent site to replay: the enumerated ones at their choices.
  Trace out;
  for (const auto& s : trace) {
    if (s.kind != SiteKind::sample || s.observed) continue;
    Site r;
    r.name = s.name;
    r.kind = SiteKind::sample;
    r.reparameterised = s.reparameterised;
    r.location = s.location;
    // Replayed values need only broadcast with the distribution.
    r.enumeration.first_dim = first;
    if (s.enumeration.enumerated()) {
      const auto it = chosen.find(s.enumeration.variable);
      // A variable no factor mentions (support of one value) is its only value.
      r.value = it != chosen.end() ? support_at(s, it->second)
                                   : support_at(s, torch::zeros({1}, torch::TensorOptions().dtype(torch::kLong)));
    } else {
      r.value = s.value;
    }
    out.add(std::move(r));
  }
  return out;
}

}  // namespace detail
}  // namespace ppl::infer
