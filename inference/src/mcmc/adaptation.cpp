// Step-size dual averaging, Stan's warm-up windows and the mass-matrix estimator.
#include <ppl/infer/mcmc/adaptation.hpp>

#include <algorithm>
#include <cmath>

namespace ppl::infer::mcmc {

DualAveraging::DualAveraging(double target, const AdaptationOptions& options)
    : target_(target), gamma_(options.gamma), kappa_(options.kappa), t0_(options.t0) {}

void DualAveraging::restart(double step_size) {
  mu_ = std::log(10 * step_size);
  h_bar_ = 0;
  log_eps_bar_ = 0;
  t_ = 0;
}

double DualAveraging::update(double accept_prob) {
  ++t_;
  const double t = static_cast<double>(t_);
  const double a = std::min(1.0, accept_prob);
  const double w = 1 / (t + t0_);
  h_bar_ = (1 - w) * h_bar_ + w * (target_ - a);
  const double log_eps = mu_ - std::sqrt(t) / gamma_ * h_bar_;
  const double decay = std::pow(t, -kappa_);
  log_eps_bar_ = decay * log_eps + (1 - decay) * log_eps_bar_;
  return std::exp(log_eps);
}

double DualAveraging::averaged() const { return std::exp(log_eps_bar_); }

WarmupSchedule::WarmupSchedule(int64_t warmup, const AdaptationOptions& options) {
  if (warmup < 20) return;
  int64_t init = options.init_buffer, term = options.term_buffer, base = options.base_window;
  if (init + base + term > warmup) {
    init = warmup * 15 / 100;
    term = warmup / 10;
    base = warmup - init - term;
  }
  const int64_t last = warmup - term;  // the slow phase ends here
  int64_t begin = init, size = base;
  int64_t end = begin + size;
  while (true) {
    windows_.emplace_back(begin, end);
    if (end >= last) break;
    begin = end;
    size *= 2;
    end = begin + size;
    // The window after this one (twice as long) would not fit: stretch this one.
    if (end + 2 * size > last) end = last;
  }
}

bool WarmupSchedule::in_window(int64_t i) const {
  return std::any_of(windows_.begin(), windows_.end(), [i](const auto& w) { return i >= w.first && i < w.second; });
}

bool WarmupSchedule::window_end(int64_t i) const {
  return std::any_of(windows_.begin(), windows_.end(), [i](const auto& w) { return i == w.second - 1; });
}

WelfordCovariance::WelfordCovariance(int64_t dim, bool dense) : dim_(dim), dense_(dense) { reset(); }

void WelfordCovariance::reset() {
  n_ = 0;
  mean_.assign(static_cast<size_t>(dim_), 0.0);
  m2_.assign(static_cast<size_t>(dense_ ? dim_ * dim_ : dim_), 0.0);
}

void WelfordCovariance::add(const std::vector<double>& x) {
  ++n_;
  const auto d = static_cast<size_t>(dim_);
  std::vector<double> before(d);
  for (size_t i = 0; i < d; ++i) {
    before[i] = x[i] - mean_[i];
    mean_[i] += before[i] / static_cast<double>(n_);
  }
  // M2 += (x - mean_old) (x - mean_new)^T
  if (dense_) {
    for (size_t i = 0; i < d; ++i)
      for (size_t j = 0; j < d; ++j) m2_[i * d + j] += before[i] * (x[j] - mean_[j]);
  } else {
    for (size_t i = 0; i < d; ++i) m2_[i] += before[i] * (x[i] - mean_[i]);
  }
}

std::vector<double> WelfordCovariance::regularised() const {
  const double n = static_cast<double>(n_);
  const double shrink = n / (n + 5), ridge = 1e-3 * 5 / (n + 5);
  std::vector<double> out(m2_.size());
  const auto d = static_cast<size_t>(dim_);
  for (size_t k = 0; k < m2_.size(); ++k) {
    const bool diagonal = !dense_ || k / d == k % d;
    out[k] = shrink * (n > 1 ? m2_[k] / (n - 1) : 0.0) + (diagonal ? ridge : 0.0);
  }
  return out;
}

}  // namespace ppl::infer::mcmc
