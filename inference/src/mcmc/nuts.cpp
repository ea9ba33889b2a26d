// The No-U-Turn sampler: multinomial trajectories with the generalised criterion.
#include <ppl/infer/mcmc/nuts.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include <ppl/core/errors.hpp>

namespace ppl::infer::mcmc {

namespace {
constexpr double kInfinity = std::numeric_limits<double>::infinity();

double log_add_exp(double a, double b) {
  if (a == -kInfinity) return b;
  if (b == -kInfinity) return a;
  const double m = std::max(a, b);
  return m + std::log(std::exp(a - m) + std::exp(b - m));
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

std::vector<double> add(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] + b[i];
  return out;
}

/// The generalised no-U-turn criterion over a trajectory with summed
/// momentum rho and velocities v_minus, v_plus at its two ends (Betancourt
/// 2017, A.4.2): both ends still move along rho.
bool no_u_turn(const std::vector<double>& v_minus, const std::vector<double>& v_plus, const std::vector<double>& rho) {
  return dot(v_plus, rho) > 0 && dot(v_minus, rho) > 0;
}
}  // namespace

/// A subtree, with the momenta and velocities at the end where it began
/// (next to the rest of the trajectory) and at the end where it stopped.
struct NutsChain::Subtree {
  std::vector<double> p_begin, p_end, v_begin, v_end, rho;
  PhasePoint proposal;
  double log_weight = -kInfinity;  ///< log of the sum of exp(H0 - H) over its points
  bool valid = true;
};

NutsChain::NutsChain(Potential& potential, HamiltonianSettings settings, int64_t max_tree_depth, uint64_t seed)
    : HamiltonianChain(potential, std::move(settings), seed), max_tree_depth_(max_tree_depth) {}

NutsChain::Subtree NutsChain::build(int64_t depth, PhasePoint& edge, double sign, double h0, TransitionStats& stats) {
  if (depth == 0) {
    Subtree leaf;
    ++stats.num_steps;
    const double h = leapfrog(edge, sign * step_size_) ? hamiltonian(edge) : kInfinity;
    if (h - h0 > settings_.max_energy_error) {
      stats.diverging = true;
      leaf.valid = false;
    }
    leaf.log_weight = h0 - h;
    stats.accept_prob += h0 - h > 0 ? 1.0 : std::exp(h0 - h);  // summed here, averaged by `transition`
    leaf.proposal = edge;
    leaf.p_begin = leaf.p_end = leaf.rho = edge.p;
    metric_.velocity(edge.p, leaf.v_begin);
    leaf.v_end = leaf.v_begin;
    return leaf;
  }
  Subtree first = build(depth - 1, edge, sign, h0, stats);
  if (!first.valid) return first;
  Subtree second = build(depth - 1, edge, sign, h0, stats);
  if (!second.valid) return second;
  Subtree tree;
  tree.log_weight = log_add_exp(first.log_weight, second.log_weight);
  // Within a subtree, a point is drawn in proportion to its weight.
  tree.proposal = uniform() < std::exp(second.log_weight - tree.log_weight) ? std::move(second.proposal)
                                                                              : std::move(first.proposal);
  tree.rho = add(first.rho, second.rho);
  tree.valid = no_u_turn(first.v_begin, second.v_end, tree.rho) &&
               no_u_turn(first.v_begin, second.v_begin, add(first.rho, second.p_begin)) &&
               no_u_turn(first.v_end, second.v_end, add(second.rho, first.p_end));
  tree.p_begin = std::move(first.p_begin);
  tree.v_begin = std::move(first.v_begin);
  tree.p_end = std::move(second.p_end);
  tree.v_end = std::move(second.v_end);
  return tree;
}

TransitionStats NutsChain::transition() {
  PhasePoint start = z_;
  metric_.sample_momentum(rng_, start.p);
  const double h0 = hamiltonian(start);
  // The trajectory's two ends: 0 backwards in time, 1 forwards.
  PhasePoint edge[2] = {start, start};
  std::vector<double> end_p[2] = {start.p, start.p}, end_v[2];
  metric_.velocity(start.p, end_v[0]);
  end_v[1] = end_v[0];
  std::vector<double> rho = start.p;
  double log_weight = 0;  // the starting point's weight, exp(H0 - H0)
  PhasePoint chosen = std::move(start);
  TransitionStats stats;
  int64_t depth = 0;
  while (depth < max_tree_depth_) {
    const int forward = uniform() > 0.5 ? 1 : 0;
    Subtree tree = build(depth, edge[forward], forward ? 1.0 : -1.0, h0, stats);
    if (!tree.valid) break;
    ++depth;
    // Biased progressive sampling: the new subtree's point replaces the
    // current one with probability min(1, w_new / w_old).
    if (tree.log_weight > log_weight || uniform() < std::exp(tree.log_weight - log_weight))
      chosen = std::move(tree.proposal);
    log_weight = log_add_exp(log_weight, tree.log_weight);
    const int near = forward, far = 1 - forward;
    auto total = add(rho, tree.rho);
    const bool go_on = no_u_turn(end_v[far], tree.v_end, total) &&
                       no_u_turn(end_v[far], tree.v_begin, add(rho, tree.p_begin)) &&
                       no_u_turn(end_v[near], tree.v_end, add(tree.rho, end_p[near]));
    rho = std::move(total);
    end_p[near] = std::move(tree.p_end);
    end_v[near] = std::move(tree.v_end);
    if (!go_on) break;
  }
  stats.tree_depth = depth;
  stats.accept_prob = stats.num_steps > 0 ? stats.accept_prob / static_cast<double>(stats.num_steps) : 0.0;
  stats.energy = hamiltonian(chosen);
  z_ = std::move(chosen);
  return stats;
}

NutsKernel::NutsKernel(NutsOptions options) : HamiltonianKernel("NUTS", std::move(options)) {
  if (options_.max_tree_depth < 1 || options_.max_tree_depth > 30)
    throw ArgumentError(fmt::format("NUTS: max_tree_depth is {}, but must be in [1, 30]", options_.max_tree_depth));
}

std::unique_ptr<ChainKernel> NutsKernel::chain(Potential& potential, uint64_t seed) const {
  return std::make_unique<NutsChain>(potential, settings_, options_.max_tree_depth, seed);
}

}  // namespace ppl::infer::mcmc
