// Hamiltonian dynamics (metric, leapfrog, warm-up) and static HMC.
#include <ppl/infer/mcmc/hmc.hpp>

#include <cmath>
#include <limits>

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <ppl/core/check.hpp>
#include <ppl/core/errors.hpp>

namespace ppl::infer::mcmc {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

void check_settings(std::string_view who, const HamiltonianSettings& s) {
  const auto fail = [&](std::string_view option, double value, std::string_view requirement) {
    throw ArgumentError(fmt::format("{}: {} is {}, but must be {}", who, option, value, requirement));
  };
  if (!(s.step_size > 0) || !std::isfinite(s.step_size)) fail("step_size", s.step_size, "positive and finite");
  if (!(s.target_accept > 0 && s.target_accept < 1)) fail("target_accept", s.target_accept, "in (0, 1)");
  if (!(s.init_radius >= 0) || !std::isfinite(s.init_radius)) fail("init_radius", s.init_radius, "nonnegative and finite");
  if (!(s.max_energy_error > 0)) fail("max_energy_error", s.max_energy_error, "positive");
  if (s.max_plate_nesting < 0) fail("max_plate_nesting", s.max_plate_nesting, "at least 0");
  const auto& a = s.adaptation;
  if (!(a.gamma > 0) || !std::isfinite(a.gamma)) fail("adaptation.gamma", a.gamma, "positive and finite");
  if (!(a.kappa > 0 && a.kappa <= 1)) fail("adaptation.kappa", a.kappa, "in (0, 1]");
  if (!(a.t0 >= 0) || !std::isfinite(a.t0)) fail("adaptation.t0", a.t0, "nonnegative and finite");
  if (a.init_buffer < 0) fail("adaptation.init_buffer", static_cast<double>(a.init_buffer), "nonnegative");
  if (a.term_buffer < 0) fail("adaptation.term_buffer", static_cast<double>(a.term_buffer), "nonnegative");
  if (a.base_window < 1) fail("adaptation.base_window", static_cast<double>(a.base_window), "at least 1");
}

// ------------------------------------------------------------------ metric

Metric::Metric(int64_t dim, bool dense) : dim_(dim), dense_(dense) {
  std::vector<double> identity(static_cast<size_t>(dense ? dim * dim : dim), 0.0);
  for (int64_t i = 0; i < dim; ++i) identity[static_cast<size_t>(dense ? i * dim + i : i)] = 1.0;
  set_inverse(std::move(identity));
}

void Metric::set_inverse(std::vector<double> inverse) {
  const auto d = static_cast<size_t>(dim_);
  PPL_ASSERT(inverse.size() == (dense_ ? d * d : d));
  inverse_ = std::move(inverse);
  if (!dense_) return;
  // Cholesky-Banachiewicz: L L^T = M^-1.
  cholesky_.assign(d * d, 0.0);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j <= i; ++j) {
      double sum = inverse_[i * d + j];
      for (size_t k = 0; k < j; ++k) sum -= cholesky_[i * d + k] * cholesky_[j * d + k];
      if (i == j) {
        if (!(sum > 0)) throw Error("MCMC: the adapted dense mass matrix is not positive definite");
        cholesky_[i * d + i] = std::sqrt(sum);
      } else {
        cholesky_[i * d + j] = sum / cholesky_[j * d + j];
      }
    }
}

void Metric::velocity(const std::vector<double>& p, std::vector<double>& v) const {
  const auto d = static_cast<size_t>(dim_);
  v.resize(d);
  if (!dense_) {
    for (size_t i = 0; i < d; ++i) v[i] = inverse_[i] * p[i];
    return;
  }
  for (size_t i = 0; i < d; ++i) {
    double sum = 0;
    for (size_t j = 0; j < d; ++j) sum += inverse_[i * d + j] * p[j];
    v[i] = sum;
  }
}

double Metric::kinetic(const std::vector<double>& p) const {
  const auto d = static_cast<size_t>(dim_);
  double sum = 0;
  if (!dense_) {
    for (size_t i = 0; i < d; ++i) sum += inverse_[i] * p[i] * p[i];
  } else {
    for (size_t i = 0; i < d; ++i) {
      double row = 0;
      for (size_t j = 0; j < d; ++j) row += inverse_[i * d + j] * p[j];
      sum += p[i] * row;
    }
  }
  return 0.5 * sum;
}

void Metric::sample_momentum(std::mt19937_64& rng, std::vector<double>& p) const {
  const auto d = static_cast<size_t>(dim_);
  std::normal_distribution<double> normal;
  p.resize(d);
  for (auto& x : p) x = normal(rng);
  if (!dense_) {
    for (size_t i = 0; i < d; ++i) p[i] /= std::sqrt(inverse_[i]);
    return;
  }
  // p = L^-T z, so that Cov p = (L L^T)^-1 = M: back substitution in L^T.
  for (size_t i = d; i-- > 0;) {
    double sum = p[i];
    for (size_t k = i + 1; k < d; ++k) sum -= cholesky_[k * d + i] * p[k];
    p[i] = sum / cholesky_[i * d + i];
  }
}

// ------------------------------------------------------------------ the chain

HamiltonianChain::HamiltonianChain(Potential& potential, HamiltonianSettings settings, uint64_t seed)
    : potential_(potential),
      settings_(std::move(settings)),
      metric_(potential.dim(), settings_.dense_mass),
      step_size_(settings_.step_size),
      rng_(seed),
      dual_averaging_(settings_.target_accept, settings_.adaptation),
      schedule_(0, settings_.adaptation),
      estimator_(potential.dim(), settings_.dense_mass) {}

bool HamiltonianChain::evaluate(PhasePoint& z) {
  try {
    z.potential = potential_(z.q, z.grad);
  } catch (const ArgumentError&) {
    // The model rejects the point (a parameter or value outside what its
    // distributions accept, e.g. after an overflow): zero density.
    z.potential = kInf;
  } catch (const c10::Error&) {
    z.potential = kInf;  // libtorch refuses it (a factorisation that fails)
  }
  return std::isfinite(z.potential);
}

double HamiltonianChain::hamiltonian(const PhasePoint& z) const {
  const double h = z.potential + metric_.kinetic(z.p);
  return std::isnan(h) ? kInf : h;
}

bool HamiltonianChain::leapfrog(PhasePoint& z, double eps) {
  const auto d = z.q.size();
  for (size_t i = 0; i < d; ++i) z.p[i] -= 0.5 * eps * z.grad[i];
  std::vector<double> v;
  metric_.velocity(z.p, v);
  for (size_t i = 0; i < d; ++i) z.q[i] += eps * v[i];
  if (!evaluate(z)) return false;
  for (size_t i = 0; i < d; ++i) z.p[i] -= 0.5 * eps * z.grad[i];
  return true;
}

double HamiltonianChain::uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

void HamiltonianChain::start(std::vector<double> q, int64_t warmup) {
  z_.q = std::move(q);
  if (!evaluate(z_)) throw Error(fmt::format("{}: the initial point has zero density", settings_.who));
  warmup_ = warmup;
  iteration_ = 0;
  schedule_ = WarmupSchedule(settings_.adapt_mass_matrix ? warmup : 0, settings_.adaptation);
  estimator_.reset();
  if (settings_.adapt_step_size && warmup > 0) {
    find_reasonable_step_size();
    dual_averaging_.restart(step_size_);
  }
}

TransitionStats HamiltonianChain::step() {
  auto stats = transition();
  stats.step_size = step_size_;
  if (iteration_ < warmup_) {
    const int64_t i = iteration_;
    if (settings_.adapt_step_size) step_size_ = dual_averaging_.update(stats.accept_prob);
    if (schedule_.in_window(i)) estimator_.add(z_.q);
    if (schedule_.window_end(i)) {
      metric_.set_inverse(estimator_.regularised());
      estimator_.reset();
      if (settings_.adapt_step_size) {
        find_reasonable_step_size();
        dual_averaging_.restart(step_size_);
      }
    }
    if (i + 1 == warmup_ && settings_.adapt_step_size) step_size_ = dual_averaging_.averaged();
  }
  ++iteration_;
  return stats;
}

void HamiltonianChain::find_reasonable_step_size() {
  const double log_target = std::log(0.8);
  int direction = 0;
  while (true) {
    PhasePoint z = z_;
    metric_.sample_momentum(rng_, z.p);
    const double h0 = hamiltonian(z);
    const double h = leapfrog(z, step_size_) ? hamiltonian(z) : kInf;
    const double delta = h0 - h;
    if (direction == 0) {
      direction = delta > log_target ? 1 : -1;
    } else if ((direction == 1 && !(delta > log_target)) || (direction == -1 && !(delta < log_target))) {
      return;
    }
    step_size_ = direction == 1 ? 2 * step_size_ : step_size_ / 2;
    if (step_size_ > 1e7)
      throw Error(fmt::format("{}: the step size grows without bound while searching for a reasonable one; the "
                              "posterior may be improper",
                              settings_.who));
    if (step_size_ == 0)
      throw Error(fmt::format("{}: no step size keeps one leapfrog step's energy finite from the current point",
                              settings_.who));
  }
}

// ------------------------------------------------------------------ static HMC

HmcChain::HmcChain(Potential& potential, HamiltonianSettings settings, int64_t num_steps, uint64_t seed)
    : HamiltonianChain(potential, std::move(settings), seed), num_steps_(num_steps) {}

TransitionStats HmcChain::transition() {
  PhasePoint z = z_;
  metric_.sample_momentum(rng_, z.p);
  const double h0 = hamiltonian(z);
  TransitionStats stats;
  for (int64_t s = 0; s < num_steps_; ++s) {
    ++stats.num_steps;
    if (!leapfrog(z, step_size_) || hamiltonian(z) - h0 > settings_.max_energy_error) {
      stats.diverging = true;
      break;
    }
  }
  const double h = stats.diverging ? kInf : hamiltonian(z);
  stats.accept_prob = std::min(1.0, std::exp(h0 - h));
  if (uniform() < stats.accept_prob) {
    z_ = std::move(z);
    stats.energy = h;
  } else {
    stats.energy = h0;
  }
  return stats;
}

HmcKernel::HmcKernel(HmcOptions options) : HamiltonianKernel("HMC", std::move(options)) {
  if (options_.num_steps < 1)
    throw ArgumentError(fmt::format("HMC: num_steps is {}, but must be at least 1", options_.num_steps));
}

std::unique_ptr<ChainKernel> HmcKernel::chain(Potential& potential, uint64_t seed) const {
  return std::make_unique<HmcChain>(potential, settings_, options_.num_steps, seed);
}

}  // namespace ppl::infer::mcmc
