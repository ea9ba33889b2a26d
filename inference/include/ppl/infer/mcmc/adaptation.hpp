#pragma once
/// Warm-up adaptation of the Hamiltonian kernels, as Stan does it: the step
/// size by dual averaging, the inverse mass matrix from the draws of
/// doubling windows between a fast initial and a fast terminal phase.
#include <cstdint>
#include <utility>
#include <vector>

namespace ppl::infer::mcmc {

/// Settings of the warm-up (Stan's defaults).
struct AdaptationOptions {
  /// Dual averaging: the shrinkage gamma, the decay kappa of the averaged
  /// iterate, and the offset t0 that damps the first iterations.
  double gamma = 0.05;
  double kappa = 0.75;
  double t0 = 10;
  /// Fast initial phase (step size only), first slow window (doubling after
  /// each), fast terminal phase, in iterations.
  int64_t init_buffer = 75;
  int64_t base_window = 25;
  int64_t term_buffer = 50;
};

/// Dual averaging of the log step size towards a target mean acceptance
/// probability delta (Hoffman and Gelman 2014, Sec. 3.2, after Nesterov
/// 2009): with h_t = delta - alpha_t,
///
///     H_t = (1 - 1/(t + t0)) H_{t-1} + h_t / (t + t0)
///     log eps_t = mu - sqrt(t) / gamma * H_t,     mu = log(10 eps_0)
///     log eps~_t = t^-kappa log eps_t + (1 - t^-kappa) log eps~_{t-1}
///
/// The iterate eps_t explores; the average eps~_t is kept after warm-up.
class DualAveraging {
 public:
  DualAveraging(double target, const AdaptationOptions& options);
  /// Starts again around `step_size` (mu = log(10 step_size)).
  void restart(double step_size);
  /// Learns from one transition's acceptance statistic (clipped to 1);
  /// returns the next step size eps_t.
  double update(double accept_prob);
  /// The averaged step size eps~_t (the one kept after warm-up).
  double averaged() const;

 private:
  double target_, gamma_, kappa_, t0_;
  double mu_ = 0, h_bar_ = 0, log_eps_bar_ = 0;
  int64_t t_ = 0;
};

/// Stan's warm-up windows for the mass matrix: none during the first
/// `init_buffer` and the last `term_buffer` iterations; between them slow
/// windows of `base_window` iterations, each twice the last, the final one
/// stretched to the terminal phase when the next could not fit. With fewer
/// than 20 warm-up iterations there is no window; when the three phases do
/// not fit, they take 15 %, 75 % and 10 % of the warm-up.
class WarmupSchedule {
 public:
  WarmupSchedule(int64_t warmup, const AdaptationOptions& options);
  /// The windows [begin, end) in warm-up iterations (0-based).
  const std::vector<std::pair<int64_t, int64_t>>& windows() const { return windows_; }
  /// True when iteration `i` lies in a window.
  bool in_window(int64_t i) const;
  /// True when iteration `i` is the last of a window.
  bool window_end(int64_t i) const;

 private:
  std::vector<std::pair<int64_t, int64_t>> windows_;
};

/// Running mean and (co)variance of vectors (Welford's algorithm), for the
/// inverse mass matrix: the diagonal or the dense sample covariance.
class WelfordCovariance {
 public:
  WelfordCovariance(int64_t dim, bool dense);
  void add(const std::vector<double>& x);
  void reset();
  int64_t count() const { return n_; }
  /// Stan's regularised estimate from n draws: (n / (n + 5)) S + 1e-3 (5 / (n + 5)) I,
  /// S the sample (co)variance; the diagonal [D], or the dense matrix [D * D].
  std::vector<double> regularised() const;

 private:
  int64_t dim_;
  bool dense_;
  int64_t n_ = 0;
  std::vector<double> mean_, m2_;
};

}  // namespace ppl::infer::mcmc
