// Per-site overhead of an ELBO step (surrogate loss + backward) through the
// DSL against the same computation written in plain libtorch.
//   ppl_bench_inference [steps]
// Prints microseconds per step and per site. Asserts nothing.
//   ppl_bench_inference --only dsl|plain|plain-dsl-order [steps]
// runs just that variant of the 1,000-scalar-site step, untimed, for counting
// instructions under valgrind (bench/instruction_counts).
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>
#include <algorithm>

#include <torch/torch.h>

#include <ppl/inference.hpp>

namespace d = ppl::dist;

namespace {

/// CPU time of the calling thread (libtorch runs single-threaded here, and the
/// CPU autograd engine runs on the caller), less disturbed by other processes
/// than wall time.
double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// Seconds per call: the best of five rounds of `steps` calls, after a warm-up.
double seconds_per_call(const std::function<void()>& fn, int steps) {
  for (int i = 0; i < std::max(3, steps / 10); ++i) fn();
  double best = 1e30;
  for (int round = 0; round < 5; ++round) {
    const double t0 = thread_seconds();
    for (int i = 0; i < steps; ++i) fn();
    best = std::min(best, (thread_seconds() - t0) / steps);
  }
  return best;
}

/// Seconds per call of `a` and of `b`, timed in alternating rounds so that a
/// change in machine load between them affects both alike: the best round of
/// each, and the median over rounds of the paired difference a - b.
struct Paired {
  double a = 1e30, b = 1e30, median_difference = 0;
};
Paired paired_seconds_per_call(const std::function<void()>& a, const std::function<void()>& b, int steps,
                               int rounds = 11) {
  for (int i = 0; i < std::max(3, steps / 10); ++i) a(), b();
  Paired out;
  std::vector<double> differences;
  for (int round = 0; round < rounds; ++round) {
    double t0 = thread_seconds();
    for (int i = 0; i < steps; ++i) a();
    const double ta = (thread_seconds() - t0) / steps;
    t0 = thread_seconds();
    for (int i = 0; i < steps; ++i) b();
    const double tb = (thread_seconds() - t0) / steps;
    out.a = std::min(out.a, ta);
    out.b = std::min(out.b, tb);
    differences.push_back(ta - tb);
  }
  std::nth_element(differences.begin(), differences.begin() + rounds / 2, differences.end());
  out.median_difference = differences[rounds / 2];
  return out;
}

torch::Tensor normal_log_density(const torch::Tensor& x, const torch::Tensor& loc, const torch::Tensor& scale) {
  // The formula of ppl::dist::Normal, so that both sides do the same arithmetic.
  const auto z = (x - loc) / scale;
  return -0.5 * z * z - scale.log() - 0.5 * std::log(2 * M_PI);
}

// ---- 1,000 scalar latent sites
constexpr int kScalarSites = 1000;

void scalar_model() {
  for (int i = 0; i < kScalarSites; ++i) ppl::sample(ppl::addr("z", i), d::Normal(0.0, 1.0));
}
void scalar_guide() {
  auto loc = ppl::param("loc", torch::zeros({kScalarSites}));
  auto scale = ppl::param("scale", torch::ones({kScalarSites}), ppl::ParamConstraint::positive);
  for (int i = 0; i < kScalarSites; ++i) ppl::sample(ppl::addr("z", i), d::Normal(loc[i], scale[i]));
}
void scalar_plain(const torch::Tensor& loc_u, const torch::Tensor& scale_u) {
  auto loc = loc_u;
  auto scale = scale_u.exp();
  const auto zero = torch::zeros({}), one = torch::ones({});
  std::vector<torch::Tensor> terms;
  terms.reserve(2 * kScalarSites);
  for (int i = 0; i < kScalarSites; ++i) {
    auto l = loc[i], s = scale[i];
    auto z = l + s * torch::randn({});
    terms.push_back(normal_log_density(z, zero, one));
    terms.push_back(-normal_log_density(z, l, s));
  }
  auto loss = -torch::stack(terms).sum();
  loss.backward();
}

/// The same arithmetic in the order the DSL runs it: the guide (each draw
/// with its log q) first, then the model's log p of every draw. Backward
/// time depends on that order, so this isolates the DSL's bookkeeping.
void scalar_plain_in_dsl_order(const torch::Tensor& loc_u, const torch::Tensor& scale_u) {
  auto loc = loc_u;
  auto scale = scale_u.exp();
  const auto zero = torch::zeros({}), one = torch::ones({});
  std::vector<torch::Tensor> zs, plus, minus;
  zs.reserve(kScalarSites);
  plus.reserve(kScalarSites);
  minus.reserve(kScalarSites);
  for (int i = 0; i < kScalarSites; ++i) {
    auto l = loc[i], s = scale[i];
    zs.push_back(l + s * torch::randn({}));
    minus.push_back(normal_log_density(zs.back(), l, s));
  }
  for (int i = 0; i < kScalarSites; ++i) plus.push_back(normal_log_density(zs[i], zero, one));
  auto loss = -(torch::stack(plus).sum() - torch::stack(minus).sum());
  loss.backward();
}

// ---- 10 large tensor sites
constexpr int kTensorSites = 10;
constexpr int64_t kRows = 512, kCols = 512;

void tensor_model(const torch::Tensor& x) {
  // One prior mean for all sites, as the plain version below.
  const auto zero = torch::zeros({kRows, kCols});
  for (int k = 0; k < kTensorSites; ++k) {
    auto z = ppl::sample(ppl::addr("z", k), d::Normal(zero, 1.0).to_event(2));
    ppl::observe(ppl::addr("x", k), d::Normal(z, 0.5).to_event(2), x);
  }
}
void tensor_guide(const torch::Tensor&) {
  for (int k = 0; k < kTensorSites; ++k) {
    auto loc = ppl::param(ppl::addr("loc", k), torch::zeros({kRows, kCols}));
    auto scale = ppl::param(ppl::addr("scale", k), torch::ones({kRows, kCols}), ppl::ParamConstraint::positive);
    ppl::sample(ppl::addr("z", k), d::Normal(loc, scale).to_event(2));
  }
}
void tensor_plain(const torch::Tensor& x, const std::vector<torch::Tensor>& locs,
                  const std::vector<torch::Tensor>& scales_u) {
  // The same tensors as the distributions hold: a full loc, scales broadcast.
  std::vector<torch::Tensor> terms;
  const auto zero = torch::zeros({kRows, kCols}), one = torch::ones({}).expand({kRows, kCols}),
             half = torch::full({}, 0.5).expand({kRows, kCols});
  for (int k = 0; k < kTensorSites; ++k) {
    auto scale = scales_u[k].exp();
    auto z = locs[k] + scale * torch::randn({kRows, kCols});
    terms.push_back(normal_log_density(z, zero, one).sum());
    terms.push_back(normal_log_density(x, z, half).sum());
    terms.push_back(-normal_log_density(z, locs[k], scale).sum());
  }
  auto loss = -torch::stack(terms).sum();
  loss.backward();
}

}  // namespace

/// `--only VARIANT [steps]`: runs `steps` scalar-site steps of one variant.
int run_only(const std::string& variant, int steps) {
  ppl::param_store().clear();
  ppl::infer::Elbo elbo;
  auto loc = torch::zeros({kScalarSites}).requires_grad_(true);
  auto scale = torch::zeros({kScalarSites}).requires_grad_(true);
  std::function<void()> step;
  if (variant == "dsl") step = [&] { elbo.loss(scalar_model, scalar_guide).backward(); };
  else if (variant == "plain") step = [&] { scalar_plain(loc, scale); };
  else if (variant == "plain-dsl-order") step = [&] { scalar_plain_in_dsl_order(loc, scale); };
  if (!step) {
    std::fprintf(stderr, "ppl_bench_inference: --only takes dsl, plain or plain-dsl-order, not \"%s\"\n",
                 variant.c_str());
    return 2;
  }
  for (int i = 0; i < steps; ++i) step();
  return 0;
}

// ---- log_marginal: vectorised particles against one run per particle

/// z_n ~ N(0, 1), x_n ~ N(z_n, 0.5), with the prior as guide.
void local_model(const torch::Tensor& x) {
  auto data = ppl::plate("data", x.size(0));
  auto z = ppl::sample("z", d::Normal(torch::zeros({}), 1.0));
  ppl::sample("x", d::Normal(z, 0.5), {.obs = x});
}
void local_guide(const torch::Tensor& x) {
  auto data = ppl::plate("data", x.size(0));
  ppl::sample("z", d::Normal(torch::zeros({}), 1.0));
}

/// Particles per second of log_marginal with and without vectorising.
void bench_log_marginal() {
  const auto x = torch::randn({100});
  for (const int64_t k : {200, 2000}) {
    auto rate = [&](bool vectorise) {
      const auto t = seconds_per_call(
          [&] { ppl::infer::log_marginal(local_model, local_guide, x, {.particles = k, .chunk = 500, .vectorise = vectorise}); },
          vectorise ? 5 : 1);
      return static_cast<double>(k) / t;
    };
    const double looped = rate(false), vectorised = rate(true);
    std::printf("log_marginal, 100 data points, K = %ld: one run per particle %.0f particles/s, vectorised (chunks "
                "of 500) %.0f particles/s (%.0fx)\n",
                static_cast<long>(k), looped, vectorised, vectorised / looped);
  }
}

// ---- an autoguide against the same guide written by hand

constexpr int64_t kFeatures = 10;
void regression_model(const torch::Tensor& x, const torch::Tensor& y) {
  auto w = ppl::sample("w", d::Normal(torch::zeros({kFeatures}), 1.0).to_event(1));
  auto data = ppl::plate("data", x.size(0));
  ppl::sample("y", d::Normal(x.matmul(w), 0.5), {.obs = y});
}
/// What AutoNormal builds for this model, written by hand.
void regression_guide(const torch::Tensor&, const torch::Tensor&) {
  auto loc = ppl::param("loc", torch::zeros({kFeatures}));
  auto scale = ppl::param("scale", torch::full({kFeatures}, 0.1), ppl::constraints::positive);
  ppl::sample("w", d::Normal(loc, scale).to_event(1));
}

void bench_autoguide(int steps) {
  const auto x = torch::randn({200, kFeatures});
  const auto y = x.matmul(torch::randn({kFeatures})) + 0.5 * torch::randn({200});
  ppl::param_store().clear();
  ppl::infer::Svi hand(regression_model, regression_guide, ppl::infer::Elbo(), ppl::infer::Adam(0.01));
  ppl::infer::AutoNormal auto_normal(regression_model);
  ppl::infer::Svi autoguide(regression_model, auto_normal, ppl::infer::Elbo(), ppl::infer::Adam(0.01));
  const auto timed = paired_seconds_per_call([&] { autoguide.step(x, y); }, [&] { hand.step(x, y); }, steps);
  std::printf("SVI step on Bayesian linear regression (%ld features, 200 points): AutoNormal %.0f us, hand-written "
              "guide %.0f us (AutoNormal / hand %.3f best rounds, %.3f median paired)\n",
              static_cast<long>(kFeatures), timed.a * 1e6, timed.b * 1e6, timed.a / timed.b,
              (timed.b + timed.median_difference) / timed.b);
}

int main(int argc, char** argv) {
  ppl::set_validation(false);
  torch::manual_seed(0);
  torch::set_num_threads(1);
  if (argc > 1 && std::string(argv[1]) == "--only") {
    if (argc < 3) {
      std::fprintf(stderr, "ppl_bench_inference: --only needs a variant (dsl, plain or plain-dsl-order)\n");
      return 2;
    }
    return run_only(argv[2], argc > 3 ? std::atoi(argv[3]) : 1);
  }
  const int steps = argc > 1 ? std::atoi(argv[1]) : 30;
  std::printf("libtorch threads: 1, validation off, thread CPU time; DSL and plain timed in 11 alternating rounds "
              "of %d steps (best round each, median paired difference)\n",
              steps);

  {
    ppl::param_store().clear();
    ppl::infer::Elbo elbo;
    auto loc = torch::zeros({kScalarSites}).requires_grad_(true);
    auto scale = torch::zeros({kScalarSites}).requires_grad_(true);
    const auto timed = paired_seconds_per_call([&] { elbo.loss(scalar_model, scalar_guide).backward(); },
                                               [&] { scalar_plain(loc, scale); }, steps);
    const double dsl = timed.a, plain = timed.b;
    const auto same_order = paired_seconds_per_call([&] { elbo.loss(scalar_model, scalar_guide).backward(); },
                                                    [&] { scalar_plain_in_dsl_order(loc, scale); }, steps);
    // Where the DSL's time goes, cumulatively.
    const double guide_only = seconds_per_call([&] { ppl::trace(scalar_guide); }, steps);
    const double traces = seconds_per_call(
        [&] {
          auto q = ppl::trace(scalar_guide);
          ppl::trace(ppl::handlers::replay(scalar_model, q));
        },
        steps);
    const double densities = seconds_per_call(
        [&] {
          auto q = ppl::trace(scalar_guide);
          auto p = ppl::trace(ppl::handlers::replay(scalar_model, q));
          (p.log_prob_sum() - q.log_prob_sum()).backward();
        },
        steps);
    const double log_probs = seconds_per_call(
        [&] {
          auto q = ppl::trace(scalar_guide);
          auto p = ppl::trace(ppl::handlers::replay(scalar_model, q));
          (p.log_prob_sum() - q.log_prob_sum());
        },
        steps);
    const double surrogate = seconds_per_call([&] { elbo.loss(scalar_model, scalar_guide); }, steps);
    std::printf("  forward only per site: hand-written ELBO %.2f us, Elbo::loss %.2f us\n",
                log_probs * 1e6 / kScalarSites, surrogate * 1e6 / kScalarSites);
    std::printf("  breakdown per site: guide trace %.2f us, + replayed model trace %.2f us, "
                "+ log_probs and backward (hand-written ELBO) %.2f us; Elbo::loss without backward %.2f us\n",
                guide_only * 1e6 / kScalarSites, traces * 1e6 / kScalarSites, densities * 1e6 / kScalarSites,
                surrogate * 1e6 / kScalarSites);
    std::printf("%d scalar sites: DSL %.0f us/step, plain libtorch %.0f us/step; %.2f us/site (DSL), "
                "%.2f us/site (plain), overhead %.2f us/site (best rounds), %.2f us/site (median paired "
                "difference; %.0f%% of the DSL step)\n",
                kScalarSites, dsl * 1e6, plain * 1e6, dsl * 1e6 / kScalarSites, plain * 1e6 / kScalarSites,
                (dsl - plain) * 1e6 / kScalarSites, timed.median_difference * 1e6 / kScalarSites,
                100 * timed.median_difference / dsl);
    std::printf("  against plain libtorch in the DSL's order (guide with its log q, then the model): DSL %.0f "
                "us/step, plain %.0f us/step; overhead %.2f us/site (best rounds), %.2f us/site (median paired "
                "difference)\n",
                same_order.a * 1e6, same_order.b * 1e6, (same_order.a - same_order.b) * 1e6 / kScalarSites,
                same_order.median_difference * 1e6 / kScalarSites);
  }
  {
    ppl::param_store().clear();
    ppl::infer::Elbo elbo;
    auto x = torch::randn({kRows, kCols});
    std::vector<torch::Tensor> locs, scales;
    for (int k = 0; k < kTensorSites; ++k) {
      locs.push_back(torch::zeros({kRows, kCols}).requires_grad_(true));
      scales.push_back(torch::zeros({kRows, kCols}).requires_grad_(true));
    }
    const auto timed = paired_seconds_per_call([&] { elbo.loss(tensor_model, tensor_guide, x).backward(); },
                                               [&] { tensor_plain(x, locs, scales); }, steps);
    const double dsl = timed.a, plain = timed.b;
    std::printf("%d tensor sites of [%ld, %ld] (+%d observed): DSL %.0f us/step, plain libtorch %.0f us/step "
                "(DSL/plain %.3f best rounds, %.3f median paired)\n",
                kTensorSites, static_cast<long>(kRows), static_cast<long>(kCols), kTensorSites, dsl * 1e6,
                plain * 1e6, dsl / plain, (plain + timed.median_difference) / plain);
  }
  bench_log_marginal();
  bench_autoguide(steps * 10);
  return 0;
}
