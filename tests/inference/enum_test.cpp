// Enumeration in inference: the ELBO with the model's enumerated sites
// summed out against brute force and the forward algorithm (a Gaussian
// mixture, a two-state HMM), its gradient, the guide's enumerated sites
// weighted by their probabilities, log_marginal, infer_discrete against
// Viterbi, and the linear cost of a Markov chain.
#include <cmath>
#include <optional>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;
namespace c = ppl::constraints;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);
const double kLogSqrt2Pi = 0.5 * std::log(2 * M_PI);

/// log N(x | loc, 1), broadcast.
torch::Tensor normal_lp(const torch::Tensor& x, const torch::Tensor& loc) {
  return -0.5 * (x - loc).pow(2) - kLogSqrt2Pi;
}

/// d loss / d every parameter in the store, by autograd.
std::vector<torch::Tensor> gradients(const torch::Tensor& loss) {
  return torch::autograd::grad({loss}, ppl::param_store().parameters(), {}, /*retain_graph=*/true,
                               /*create_graph=*/false, /*allow_unused=*/true);
}

void check_same_gradients(const torch::Tensor& loss, const torch::Tensor& expected) {
  const auto got = gradients(loss), want = gradients(expected);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("parameter " << ppl::param_store().names()[i]);
    REQUIRE(got[i].defined());
    CHECK(torch::allclose(got[i], want[i], 1e-9, 1e-10));
  }
}

void empty_guide(const torch::Tensor&) {}

// ---- a Gaussian mixture whose assignments are summed out

void mixture_model(const torch::Tensor& x) {
  auto weights = ppl::param("weights", torch::tensor({0.3, 0.7}, kF64), c::simplex);
  auto locs = ppl::param("locs", torch::tensor({-1.0, 2.0}, kF64));
  auto data = ppl::plate("data", x.size(0));
  auto z = ppl::sample("z", d::Categorical(weights), {.enumerate = true});
  ppl::observe("x", d::Normal(locs.index({z}), 1.0), x);
}

/// log p(x_n) = logsumexp_k log w_k + log N(x_n | mu_k, 1), per point.
torch::Tensor mixture_log_likelihood(const torch::Tensor& x) {
  const auto w = ppl::param_store().at("weights"), mu = ppl::param_store().at("locs");
  return torch::logsumexp(w.log() + normal_lp(x.unsqueeze(-1), mu), -1);
}

// ---- a two-state HMM with Gaussian emissions

struct HmmParams {
  torch::Tensor init, trans, locs;
};
/// The parameters (created on first use).
HmmParams hmm_params() {
  return {ppl::param("init", torch::tensor({0.6, 0.4}, kF64), c::simplex),
          ppl::param("trans", torch::tensor({{0.8, 0.2}, {0.3, 0.7}}, kF64), c::simplex),
          ppl::param("locs", torch::tensor({-0.5, 1.0}, kF64))};
}

void hmm(const torch::Tensor& x, bool chain) {
  const auto [init, trans, locs] = hmm_params();
  std::optional<ppl::Markov> markov;
  if (chain) markov.emplace();
  torch::Tensor z;
  for (int64_t t = 0; t < x.size(0); ++t) {
    if (markov) markov->step();
    const auto probs = t == 0 ? init : trans.index({z});
    z = ppl::sample(ppl::addr("z", t), d::Categorical(probs), {.enumerate = true});
    ppl::observe(ppl::addr("x", t), d::Normal(locs.index({z}), 1.0), x[t]);
  }
}
void hmm_markov(const torch::Tensor& x) { hmm(x, true); }
void hmm_flat(const torch::Tensor& x) { hmm(x, false); }

/// log p(x) by the forward algorithm.
torch::Tensor forward_algorithm(const torch::Tensor& x) {
  const auto p = hmm_params();
  auto alpha = p.init.log() + normal_lp(x[0], p.locs);
  for (int64_t t = 1; t < x.size(0); ++t)
    alpha = torch::logsumexp(alpha.unsqueeze(1) + p.trans.log(), 0) + normal_lp(x[t], p.locs);
  return torch::logsumexp(alpha, 0);
}

/// Every path of a short chain: [2^T, T] states and their log joint.
std::pair<torch::Tensor, torch::Tensor> all_paths(const torch::Tensor& x) {
  const auto p = hmm_params();
  const int64_t n = x.size(0), count = int64_t{1} << n;
  const auto paths = torch::arange(count).unsqueeze(1).bitwise_right_shift(torch::arange(n)).bitwise_and(1);
  auto lp = p.init.log().index({paths.select(1, 0)});
  for (int64_t t = 0; t < n; ++t) {
    if (t > 0) lp = lp + p.trans.log().index({paths.select(1, t - 1), paths.select(1, t)});
    lp = lp + normal_lp(x[t], p.locs.index({paths.select(1, t)}));
  }
  return {paths, lp};
}

/// The most probable path, by Viterbi.
std::vector<int64_t> viterbi(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const auto p = hmm_params();
  auto delta = p.init.log() + normal_lp(x[0], p.locs);
  std::vector<torch::Tensor> back;
  for (int64_t t = 1; t < x.size(0); ++t) {
    const auto [best, from] = (delta.unsqueeze(1) + p.trans.log()).max(0);
    back.push_back(from);
    delta = best + normal_lp(x[t], p.locs);
  }
  std::vector<int64_t> path(static_cast<size_t>(x.size(0)));
  path.back() = delta.argmax().item<int64_t>();
  for (int64_t t = x.size(0) - 1; t > 0; --t)
    path[static_cast<size_t>(t - 1)] = back[static_cast<size_t>(t - 1)][path[static_cast<size_t>(t)]].item<int64_t>();
  return path;
}

torch::Tensor hmm_data(int64_t n) {
  torch::manual_seed(7);
  return torch::cat({torch::randn({n / 2}, kF64) - 0.5, torch::randn({n - n / 2}, kF64) + 1.0});
}

}  // namespace

TEST_CASE("the enumerated ELBO of a Gaussian mixture is its exact log-likelihood, with its gradient",
          "[enum][elbo]") {
  ppl::param_store().clear();
  const auto x = torch::tensor({-1.3, 0.2, 2.5, 1.9, -0.7}, kF64);
  infer::Elbo elbo({.enumerate = true});
  const auto loss = elbo.loss(mixture_model, empty_guide, x);
  const auto expected = -mixture_log_likelihood(x).sum();
  CHECK(loss.item<double>() == Approx(expected.item<double>()).epsilon(1e-12));
  check_same_gradients(loss, expected);
  CHECK(elbo.estimate(mixture_model, empty_guide, x) == Approx(-expected.item<double>()).epsilon(1e-12));

  // All particles in one run: the same value.
  infer::Elbo vectorised({.particles = 3, .vectorise = true, .enumerate = true});
  CHECK(vectorised.loss(mixture_model, empty_guide, x).item<double>() == Approx(expected.item<double>()).epsilon(1e-12));

  // log_marginal sums the assignments out too: exact per data point.
  for (const bool vectorise : {false, true}) {
    const auto r = infer::log_marginal(mixture_model, empty_guide, x, {.particles = 2, .vectorise = vectorise});
    CHECK(torch::allclose(r.log_likelihood, mixture_log_likelihood(x).detach(), 1e-12, 1e-12));
    CHECK_FALSE(r.joint);
  }
}

TEST_CASE("the enumerated ELBO of a two-state HMM equals brute force over its paths and the forward algorithm",
          "[enum][elbo][markov]") {
  ppl::param_store().clear();
  infer::Elbo elbo({.max_plate_nesting = 0, .enumerate = true});
  SECTION("8 steps: all 256 paths, with and without a Markov chain") {
    const auto x = hmm_data(8);
    const auto expected = -torch::logsumexp(all_paths(x).second, 0);
    for (auto* model : {&hmm_markov, &hmm_flat}) {
      const auto loss = elbo.loss(*model, empty_guide, x);
      CHECK(loss.item<double>() == Approx(expected.item<double>()).epsilon(1e-12));
      check_same_gradients(loss, expected);
    }
  }
  SECTION("20 steps: the forward algorithm") {
    const auto x = hmm_data(20);
    const auto expected = -forward_algorithm(x);
    const auto loss = elbo.loss(hmm_markov, empty_guide, x);
    CHECK(loss.item<double>() == Approx(expected.item<double>()).epsilon(1e-12));
    check_same_gradients(loss, expected);
    const auto r = infer::log_marginal(hmm_markov, empty_guide, x, {.particles = 1, .max_plate_nesting = 0});
    CHECK(r.log_likelihood.item<double>() == Approx(-expected.item<double>()).epsilon(1e-12));
  }
}

TEST_CASE("summing a Markov chain out takes one reduction per step over factors of K^2 elements",
          "[enum][markov]") {
  ppl::param_store().clear();
  infer::Elbo elbo({.max_plate_nesting = 0, .enumerate = true});
  for (const int64_t steps : {200, 400}) {
    const auto x = hmm_data(steps);
    const auto result = elbo.evaluate(elbo.loss_runner(hmm_markov, empty_guide, x));
    CHECK(result.elimination.variables == steps);
    CHECK(result.elimination.largest_factor == 4);
    CHECK(result.elimination.plate_products == 0);
    CHECK(result.loss.item<double>() == Approx(-forward_algorithm(x).item<double>()).epsilon(1e-10));
  }
}

TEST_CASE("infer_discrete at temperature 0 gives the Viterbi path and the brute-force argmax",
          "[enum][infer_discrete]") {
  ppl::param_store().clear();
  SECTION("20 steps against Viterbi") {
    const auto x = hmm_data(20);
    const auto t = ppl::trace(infer::infer_discrete(hmm_markov, {.temperature = 0, .max_plate_nesting = 0}), x);
    const auto path = viterbi(x);
    for (int64_t s = 0; s < 20; ++s) {
      INFO("step " << s);
      const auto& site = t.site(ppl::addr("z", s));
      CHECK(site.value.dim() == 0);
      CHECK(site.value.item<int64_t>() == path[static_cast<size_t>(s)]);
    }
  }
  SECTION("8 steps against all paths") {
    const auto x = hmm_data(8);
    const auto [paths, lp] = all_paths(x);
    const auto best = paths[lp.argmax()];
    const auto t = ppl::trace(infer::infer_discrete(hmm_flat, {.temperature = 0, .max_plate_nesting = 0}), x);
    for (int64_t s = 0; s < 8; ++s) CHECK(t.site(ppl::addr("z", s)).value.item<int64_t>() == best[s].item<int64_t>());
  }
  SECTION("a mixture: each point's most probable component") {
    const auto x = torch::tensor({-1.3, 0.2, 2.5, 1.9, -0.7, 0.6}, kF64);
    const auto t = ppl::trace(infer::infer_discrete(mixture_model, {.temperature = 0}), x);
    const auto w = ppl::param_store().at("weights"), mu = ppl::param_store().at("locs");
    const auto expected = (w.log() + normal_lp(x.unsqueeze(-1), mu)).argmax(-1);
    CHECK(torch::equal(t.site("z").value, expected));
  }
}

TEST_CASE("infer_discrete at temperature 1 draws paths with their posterior probabilities",
          "[enum][infer_discrete]") {
  ppl::param_store().clear();
  const auto x = torch::tensor({0.3, -1.0, 0.8}, kF64);
  const auto [paths, lp] = all_paths(x);
  const auto posterior = torch::softmax(lp.detach(), 0);
  const int n = 3000;
  auto counts = torch::zeros({8}, kF64);
  auto sampler = infer::infer_discrete(hmm_markov, {.temperature = 1, .max_plate_nesting = 0});
  ppl::random::SeedScope seed(3);
  for (int i = 0; i < n; ++i) {
    const auto t = ppl::trace(sampler, x);
    int64_t code = 0;
    for (int64_t s = 0; s < 3; ++s) code |= t.site(ppl::addr("z", s)).value.item<int64_t>() << s;
    counts[code] += 1;
  }
  // Each path's frequency within 4.5 binomial standard errors.
  const auto freq = counts / n;
  const auto se = (posterior * (1 - posterior) / n).sqrt();
  INFO("frequencies " << freq << "\nposterior " << posterior);
  CHECK(((freq - posterior).abs() <= 4.5 * se + 1e-3).all().item<bool>());
  CHECK_THROWS_AS(infer::infer_discrete(hmm_markov, {.temperature = 2}), ppl::ArgumentError);
}

namespace {
// ---- a two-step discrete model whose guide enumerates both sites

void two_step_model(const torch::Tensor& x) {
  auto z1 = ppl::sample("z1", d::Bernoulli(torch::tensor(0.3, kF64)));
  auto z2 = ppl::sample("z2", d::Bernoulli(0.2 + 0.4 * z1));
  ppl::observe("x", d::Normal(z1 + 2 * z2, 1.0), x);
}

void two_step_guide(const torch::Tensor&) {
  auto a = ppl::param("a", torch::tensor(0.2, kF64));
  auto b = ppl::param("b", torch::tensor(-0.3, kF64));
  auto k = ppl::param("c", torch::tensor(0.5, kF64));
  auto z1 = ppl::sample("z1", d::Bernoulli(d::logits(a)), {.enumerate = true});
  ppl::sample("z2", d::Bernoulli(d::logits(b + k * z1)), {.enumerate = true});
}

/// The exact ELBO of the pair, sum over (z1, z2).
torch::Tensor two_step_elbo(double x) {
  const auto a = ppl::param_store().at("a"), b = ppl::param_store().at("b"), k = ppl::param_store().at("c");
  auto total = torch::zeros({}, kF64);
  for (double z1 : {0.0, 1.0})
    for (double z2 : {0.0, 1.0}) {
      const auto lq1 = z1 * torch::log_sigmoid(a) + (1 - z1) * torch::log_sigmoid(-a);
      const auto l2 = b + k * z1;
      const auto lq2 = z2 * torch::log_sigmoid(l2) + (1 - z2) * torch::log_sigmoid(-l2);
      const double p2 = 0.2 + 0.4 * z1;
      const double lp = std::log(z1 ? 0.3 : 0.7) + std::log(z2 ? p2 : 1 - p2) - 0.5 * std::pow(x - z1 - 2 * z2, 2) -
                        kLogSqrt2Pi;
      total = total + torch::exp(lq1 + lq2) * (lp - lq1 - lq2);
    }
  return total;
}

// ---- a guide that draws z1 (score function) and a model that sums z2 out

void scored_model(const torch::Tensor& x) {
  auto z1 = ppl::sample("z1", d::Bernoulli(torch::tensor(0.3, kF64)));
  auto z2 = ppl::sample("z2", d::Bernoulli(0.2 + 0.4 * z1), {.enumerate = true});
  ppl::observe("x", d::Normal(z1 + 2 * z2, 1.0), x);
}
void scored_guide(const torch::Tensor&) {
  auto a = ppl::param("a", torch::tensor(0.2, kF64));
  ppl::sample("z1", d::Bernoulli(d::logits(a)));
}
/// E_q(z1) [log p(z1) + log sum_z2 p(z2 | z1) p(x | z1, z2) - log q(z1)].
torch::Tensor scored_elbo(double x) {
  const auto a = ppl::param_store().at("a");
  auto total = torch::zeros({}, kF64);
  for (double z1 : {0.0, 1.0}) {
    const auto lq = z1 * torch::log_sigmoid(a) + (1 - z1) * torch::log_sigmoid(-a);
    const double p2 = 0.2 + 0.4 * z1;
    const double marginal = std::log(p2 * std::exp(-0.5 * std::pow(x - z1 - 2, 2)) +
                                     (1 - p2) * std::exp(-0.5 * std::pow(x - z1, 2))) -
                            kLogSqrt2Pi;
    total = total + torch::exp(lq) * (std::log(z1 ? 0.3 : 0.7) + marginal - lq);
  }
  return total;
}
}  // namespace

TEST_CASE("enumerated guide sites are weighted by their probabilities: the exact ELBO and gradient",
          "[enum][elbo]") {
  ppl::param_store().clear();
  const auto x = torch::tensor(1.4, kF64);
  infer::Elbo elbo({.enumerate = true});
  const auto loss = elbo.loss(two_step_model, two_step_guide, x);
  const auto expected = -two_step_elbo(1.4);
  CHECK(loss.item<double>() == Approx(expected.item<double>()).epsilon(1e-12));
  check_same_gradients(loss, expected);
  CHECK(elbo.estimate(two_step_model, two_step_guide, x) == Approx(-expected.item<double>()).epsilon(1e-12));

  // As importance weights the guide's q cancels: log p(x) exactly.
  const double px = std::log(0.7 * 0.8 * std::exp(-0.5 * 1.4 * 1.4) + 0.7 * 0.2 * std::exp(-0.5 * 0.6 * 0.6) +
                             0.3 * 0.4 * std::exp(-0.5 * 0.4 * 0.4) + 0.3 * 0.6 * std::exp(-0.5 * 1.6 * 1.6)) -
                    kLogSqrt2Pi;
  const auto r = infer::log_marginal(two_step_model, two_step_guide, x, {.particles = 1});
  CHECK(r.log_likelihood.item<double>() == Approx(px).epsilon(1e-12));
}

TEST_CASE("a score-function guide site upstream of a site the model sums out keeps an unbiased gradient",
          "[enum][elbo]") {
  ppl::param_store().clear();
  const auto x = torch::tensor(1.4, kF64);
  infer::Elbo elbo({.enumerate = true});
  elbo.loss(scored_model, scored_guide, x);  // creates the parameter
  const auto a = ppl::param_store().parameters({"a"});
  const auto exact = torch::autograd::grad({-scored_elbo(1.4)}, a)[0].item<double>();
  const int n = 4000;
  std::vector<double> g(n);
  for (int i = 0; i < n; ++i) g[i] = torch::autograd::grad({elbo.loss(scored_model, scored_guide, x)}, a)[0].item<double>();
  double mean = 0, var = 0;
  for (const double v : g) mean += v / n;
  for (const double v : g) var += (v - mean) * (v - mean) / (n - 1);
  INFO("mean " << mean << ", exact " << exact << ", sd " << std::sqrt(var));
  CHECK(std::abs(mean - exact) < 4 * std::sqrt(var / n));
}

TEST_CASE("enumeration options: pairing without it, iwae, JSON", "[enum][elbo]") {
  ppl::param_store().clear();
  const auto x = torch::tensor({0.1, 0.4}, kF64);
  CHECK_THROWS_WITH(infer::Elbo().loss(mixture_model, empty_guide, x),
                    Catch::Contains("model site \"z\"") && Catch::Contains("Elbo({.enumerate = true})"));
  CHECK_THROWS_AS(infer::Elbo({.iwae = true, .enumerate = true}), ppl::ArgumentError);
  CHECK_THROWS_AS(infer::Elbo({.analytic_kl = true, .enumerate = true}), ppl::ArgumentError);
  nlohmann::json j = infer::ElboOptions{.max_plate_nesting = 2, .enumerate = true};
  const auto back = j.get<infer::ElboOptions>();
  CHECK(back.enumerate);
  CHECK(back.max_plate_nesting == 2);
  CHECK_FALSE(nlohmann::json(infer::ElboOptions{}).get<infer::ElboOptions>().enumerate);
}

namespace {
// ---- a global enumerated variable over a plate of local ones

const auto kTable = torch::tensor({{0.5, 0.3, 0.2}, {0.1, 0.3, 0.6}}, kF64);
const auto kLocs = torch::tensor({-1.0, 0.0, 1.5}, kF64);

void regime_model(const torch::Tensor& x) {
  auto z = ppl::sample("regime", d::Bernoulli(torch::tensor(0.4, kF64)), {.enumerate = true});
  auto data = ppl::plate("data", x.size(0));
  auto y = ppl::sample("y", d::Categorical(kTable.index({z.to(torch::kLong)})), {.enumerate = true});
  ppl::observe("x", d::Normal(kLocs.index({y}) + z, 1.0), x);
}

const auto kRegimePrior = torch::tensor({0.6, 0.4}, kF64).log();

/// [2 (regime), N, 3 (y)]: log p(y | regime) + log p(x_n | y, regime).
torch::Tensor regime_local(const torch::Tensor& x) {
  const auto z = torch::tensor({0.0, 1.0}, kF64).reshape({2, 1, 1});
  return kTable.log().unsqueeze(1) + normal_lp(x.reshape({1, -1, 1}), kLocs + z);
}

// ---- nested plates: a variable per group, one per member

void groups_model(const torch::Tensor& x) {  // x: [G, M]
  auto groups = ppl::plate("groups", x.size(0), {.dim = -2});
  auto z = ppl::sample("z", d::Bernoulli(torch::tensor(0.3, kF64)), {.enumerate = true});
  auto members = ppl::plate("members", x.size(1), {.dim = -1});
  auto y = ppl::sample("y", d::Bernoulli(0.2 + 0.6 * z), {.enumerate = true});
  ppl::observe("x", d::Normal(2.0 * y - z, 1.0), x);
}

/// sum_g log sum_z p(z) prod_m sum_y p(y | z) N(x_gm | 2y - z, 1).
torch::Tensor groups_log_likelihood(const torch::Tensor& x) {
  auto total = torch::zeros({x.size(0)}, kF64);
  std::vector<torch::Tensor> per_z;
  for (double z : {0.0, 1.0}) {
    const double py1 = 0.2 + 0.6 * z;
    const auto member = torch::logaddexp(std::log(1 - py1) + normal_lp(x, torch::tensor(-z, kF64)),
                                         std::log(py1) + normal_lp(x, torch::tensor(2.0 - z, kF64)));
    per_z.push_back(std::log(z ? 0.3 : 0.7) + member.sum(1));
  }
  return torch::logsumexp(torch::stack(per_z), 0).sum();
}

torch::Tensor g_indices;  // the subsample the last run drew

void subsampled_mixture(const torch::Tensor& x) {
  auto weights = ppl::param("weights", torch::tensor({0.3, 0.7}, kF64), c::simplex);
  auto locs = ppl::param("locs", torch::tensor({-1.0, 2.0}, kF64));
  auto data = ppl::plate("data", x.size(0), {.subsample_size = 3});
  g_indices = data.indices();
  auto z = ppl::sample("z", d::Categorical(weights), {.enumerate = true});
  ppl::observe("x", d::Normal(locs.index({z}), 1.0), x.index_select(0, g_indices));
}
}  // namespace

TEST_CASE("a global enumerated variable over a plate of local ones: sums, products over the plate, MAP",
          "[enum][elbo][infer_discrete]") {
  const auto x = torch::tensor({-1.2, 0.4, 2.2, 1.1}, kF64);
  const auto local = regime_local(x);
  const auto log_px = torch::logsumexp(kRegimePrior + local.logsumexp(-1).sum(-1), 0);
  infer::Elbo elbo({.enumerate = true});
  const auto result = elbo.evaluate(elbo.loss_runner(regime_model, empty_guide, x));
  CHECK(result.loss.item<double>() == Approx(-log_px.item<double>()).epsilon(1e-12));
  CHECK(result.elimination.variables == 2);
  CHECK(result.elimination.plate_products == 1);
  const auto r = infer::log_marginal(regime_model, empty_guide, x, {.particles = 1});
  CHECK(r.joint);
  CHECK(r.log_likelihood.item<double>() == Approx(log_px.item<double>()).epsilon(1e-12));

  // MAP: the best regime with each point's best y, then those y.
  const auto z = (kRegimePrior + local.amax(-1).sum(-1)).argmax().item<int64_t>();
  const auto t = ppl::trace(infer::infer_discrete(regime_model, {.temperature = 0}), x);
  CHECK(t.site("regime").value.item<double>() == static_cast<double>(z));
  CHECK(torch::equal(t.site("y").value, local[z].argmax(-1)));
}

TEST_CASE("nested plates: a variable per group summed inside one per member", "[enum][elbo]") {
  torch::manual_seed(1);
  const auto x = torch::randn({3, 4}, kF64) + 1.0;
  infer::Elbo elbo({.max_plate_nesting = 2, .enumerate = true});
  const auto result = elbo.evaluate(elbo.loss_runner(groups_model, empty_guide, x));
  CHECK(result.loss.item<double>() == Approx(-groups_log_likelihood(x).item<double>()).epsilon(1e-12));
  CHECK(result.elimination.variables == 2);
  CHECK(result.elimination.plate_products == 1);
  // Without room for both plates, the handler says so.
  CHECK_THROWS_WITH(infer::Elbo({.enumerate = true}).loss(groups_model, empty_guide, x),
                    Catch::Contains("raise max_plate_nesting"));
}

TEST_CASE("enumeration over plates that do not nest, and over sites of different scales, is an error",
          "[enum][elbo]") {
  auto crossed = [](const torch::Tensor& x) {
    torch::Tensor r, k;
    {
      auto rows = ppl::plate("rows", x.size(0), {.dim = -2});
      r = ppl::sample("r", d::Bernoulli(0.5), {.enumerate = true});
    }
    {
      auto cols = ppl::plate("cols", x.size(1), {.dim = -1});
      k = ppl::sample("k", d::Bernoulli(0.5), {.enumerate = true});
    }
    auto rows = ppl::plate("rows", x.size(0), {.dim = -2});
    auto cols = ppl::plate("cols", x.size(1), {.dim = -1});
    ppl::observe("x", d::Normal(r + k, 1.0), x);
  };
  const auto x = torch::zeros({2, 3}, kF64);
  CHECK_THROWS_WITH(infer::Elbo({.max_plate_nesting = 2, .enumerate = true}).loss(crossed, empty_guide, x),
                    Catch::Contains("independent plates") && Catch::Contains("\"rows\"") && Catch::Contains("\"cols\""));

  // A subsampled plate scales the sites inside it alike: fine for local
  // variables, an error for a global one summed with them.
  ppl::param_store().clear();
  const auto data = torch::tensor({-1.3, 0.2, 2.5, 1.9, -0.7}, kF64);
  const auto loss = infer::Elbo({.enumerate = true}).loss(subsampled_mixture, empty_guide, data);
  const auto expected = -(5.0 / 3.0) * mixture_log_likelihood(data.index_select(0, g_indices)).sum();
  CHECK(loss.item<double>() == Approx(expected.item<double>()).epsilon(1e-12));
  auto global = [](const torch::Tensor& x) {
    auto z = ppl::sample("z", d::Bernoulli(0.5), {.enumerate = true});
    auto data = ppl::plate("data", x.size(0), {.subsample_size = 2});
    ppl::observe("x", d::Normal(z, 1.0), x.index_select(0, data.indices()));
  };
  CHECK_THROWS_WITH(infer::Elbo({.enumerate = true}).loss(global, empty_guide, data),
                    Catch::Contains("scales differ"));
}
