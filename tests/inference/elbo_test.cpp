// The ELBO surrogate: pathwise and score-function gradients against exact
// enumeration, baselines, downstream signals, pairing, shapes, NaN detection.
#include <cmath>

#include <catch2/catch.hpp>

#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

// ---- a two-step discrete model, small enough to enumerate

torch::Tensor p_z2(const torch::Tensor& z1) { return 0.2 + 0.4 * z1; }

void two_step_model(const torch::Tensor& x) {
  auto z1 = ppl::sample("z1", d::Bernoulli(torch::tensor(0.3, kF64)));
  auto z2 = ppl::sample("z2", d::Bernoulli(p_z2(z1)));
  ppl::observe("x", d::Normal(z1 + 2 * z2, 1.0), x);
}

torch::Tensor neural_baseline{};  // when defined, the z2 site's `.baseline`

void two_step_guide(const torch::Tensor&) {
  auto a = ppl::param("a", torch::tensor(0.2, kF64));
  auto b = ppl::param("b", torch::tensor(-0.3, kF64));
  auto c = ppl::param("c", torch::tensor(0.5, kF64));
  auto z1 = ppl::sample("z1", d::Bernoulli(d::logits(a)));
  ppl::sample("z2", d::Bernoulli(d::logits(b + c * z1)), {.baseline = neural_baseline});
}

/// The exact ELBO of the two-step pair by enumerating (z1, z2), differentiable in (a, b, c).
torch::Tensor exact_elbo(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c, double x) {
  auto total = torch::zeros({}, kF64);
  for (double z1 : {0.0, 1.0}) {
    for (double z2 : {0.0, 1.0}) {
      auto lq1 = z1 * torch::log_sigmoid(a) + (1 - z1) * torch::log_sigmoid(-a);
      auto l2 = b + c * z1;
      auto lq2 = z2 * torch::log_sigmoid(l2) + (1 - z2) * torch::log_sigmoid(-l2);
      const double p2 = 0.2 + 0.4 * z1;
      const double lp = std::log(z1 ? 0.3 : 0.7) + std::log(z2 ? p2 : 1 - p2) - 0.5 * std::pow(x - z1 - 2 * z2, 2) -
                        0.5 * std::log(2 * M_PI);
      total = total + torch::exp(lq1 + lq2) * (lp - lq1 - lq2);
    }
  }
  return total;
}

const std::vector<std::string> kParams = {"a", "b", "c"};

/// `n` gradient estimates of the ELBO in (a, b, c): rows of [n, 3].
torch::Tensor gradient_samples(infer::Elbo& elbo, const torch::Tensor& x, int n) {
  auto out = torch::zeros({n, 3}, kF64);
  for (int i = 0; i < n; ++i) {
    auto loss = elbo.loss(two_step_model, two_step_guide, x);
    for (auto& p : ppl::param_store().parameters(kParams)) p.mutable_grad().reset();
    loss.backward();
    for (int j = 0; j < 3; ++j) out[i][j] = -ppl::param_store().unconstrained(kParams[j]).grad();
  }
  return out;
}

torch::Tensor exact_gradient(double x) {
  std::vector<torch::Tensor> ps;
  for (const auto& n : kParams) ps.push_back(ppl::param_store().at(n).detach().clone().requires_grad_(true));
  auto e = exact_elbo(ps[0], ps[1], ps[2], x);
  auto g = torch::autograd::grad({e}, ps);
  return torch::stack(g);
}

/// |mean - exact| within 4.5 standard errors, componentwise.
void check_unbiased(const torch::Tensor& samples, const torch::Tensor& exact) {
  const auto n = static_cast<double>(samples.size(0));
  auto mean = samples.mean(0), se = samples.std(0) / std::sqrt(n);
  for (int j = 0; j < exact.size(0); ++j) {
    INFO("parameter " << kParams[j] << ": mean " << mean[j].item<double>() << " +- " << se[j].item<double>()
                      << ", exact " << exact[j].item<double>());
    CHECK(std::abs(mean[j].item<double>() - exact[j].item<double>()) < 4.5 * se[j].item<double>() + 1e-9);
  }
}

}  // namespace

TEST_CASE("score-function gradients match the enumerated ELBO gradient, baselines and downstream signals "
          "lower the variance",
          "[elbo][score]") {
  ppl::param_store().clear();
  neural_baseline = torch::Tensor();
  torch::manual_seed(11);
  const auto x = torch::tensor(1.5, kF64);
  ppl::trace(two_step_guide, x);  // creates the parameters
  const auto exact = exact_gradient(1.5);
  const int n = 3000;

  infer::Elbo plain({.decaying_baseline = false});
  auto g_plain = gradient_samples(plain, x, n);
  check_unbiased(g_plain, exact);

  infer::Elbo averaged;
  gradient_samples(averaged, x, 50);  // warms the running averages up
  auto g_avg = gradient_samples(averaged, x, n);
  check_unbiased(g_avg, exact);

  infer::Elbo full({.decaying_baseline = false, .downstream_only = false});
  auto g_full = gradient_samples(full, x, n);
  check_unbiased(g_full, exact);

  // Closed-form KL for both Bernoulli sites: still unbiased (each site's own
  // KL leaves its score signal, later ones stay in it).
  infer::Elbo analytic({.analytic_kl = true});
  check_unbiased(gradient_samples(analytic, x, n), exact);

  const auto v_plain = g_plain.var(0), v_avg = g_avg.var(0), v_full = g_full.var(0);
  INFO("variance without baseline " << v_plain << ", with decaying baseline " << v_avg << ", full signal "
                                    << v_full);
  CHECK(v_avg.sum().item<double>() < 0.7 * v_plain.sum().item<double>());
  // z2's parameters (b, c) lose the upstream z1 terms from their signal.
  CHECK((v_plain[1] + v_plain[2]).item<double>() < (v_full[1] + v_full[2]).item<double>());
  // z1's signal is the whole ELBO either way.
  CHECK(v_plain[0].item<double>() == Approx(v_full[0].item<double>()).epsilon(0.2));
}

TEST_CASE("normalise_variance divides the centred signal by max(1, running standard deviation)", "[elbo][score]") {
  // One Bernoulli latent whose learning signal f(z) = log p(z) + log p(x | z)
  // - log q(z) differs by about 8 nats between z = 0 and z = 1, so the running
  // standard deviation soon exceeds 1. With a fixed guide the gradient in the
  // logit a is (z - sigmoid(a)) (1 - centred); the reference below keeps the
  // running mean and variance by hand (updated after use, decay 0.5).
  ppl::param_store().clear();
  const auto x = torch::tensor(0.0, kF64);
  auto model = [](const torch::Tensor& obs) {
    auto z = ppl::sample("z", d::Bernoulli(torch::tensor(0.5, kF64)));
    ppl::observe("x", d::Normal(4.0 * z, 1.0), obs);
  };
  auto guide = [](const torch::Tensor&) {
    auto a = ppl::param("a", torch::tensor(0.3, kF64));
    ppl::sample("z", d::Bernoulli(d::logits(a)));
  };
  ppl::trace(guide, x);
  const double q1 = 1.0 / (1.0 + std::exp(-0.3));
  auto signal = [&](double z) {
    const double lq = z > 0 ? std::log(q1) : std::log(1 - q1);
    return std::log(0.5) - 0.5 * std::log(2 * M_PI) - 0.5 * 16.0 * z * z - lq;
  };
  for (bool normalise : {false, true}) {
    INFO("normalise_variance " << normalise);
    infer::Elbo elbo({.baseline_decay = 0.5, .normalise_variance = normalise});
    double mean = 0, var = 0, largest_sd = 0;
    for (int i = 0; i < 40; ++i) {
      torch::manual_seed(100 + i);
      auto loss = elbo.loss(model, guide, x);
      auto a = ppl::param_store().unconstrained("a");
      a.mutable_grad().reset();
      loss.backward();
      torch::manual_seed(100 + i);  // the same draw again, read from the guide's trace
      const double z = ppl::trace(guide, x).site("z").value.item<double>();
      const double f = signal(z);
      double centred = f;
      if (i > 0) {
        centred = f - mean;
        if (normalise) centred /= std::max(1.0, std::sqrt(var));
        largest_sd = std::max(largest_sd, std::sqrt(var));
      }
      INFO("step " << i << ", z = " << z);
      CHECK(a.grad().item<double>() == Approx((z - q1) * (1.0 - centred)).epsilon(1e-9).margin(1e-12));
      if (i == 0) {
        mean = f;
      } else {
        var = 0.5 * var + 0.5 * (f - mean) * (f - mean);
        mean = 0.5 * mean + 0.5 * f;
      }
    }
    CHECK(largest_sd > 2.0);  // the normalisation was exercised
  }
}

TEST_CASE("signal_kl_weight weighs the KL terms of the learning signal and leaves the objective alone",
          "[elbo][score]") {
  // z ~ Bernoulli(0.5) scored, u ~ Normal(0, 1) reparameterised, x ~ Normal(4z + u, 1).
  // Without baselines the logit's gradient is (z - q1) (1 - f_w), with
  // f_w = w (log p(z) - log q(z) + log p(u) - log q(u)) + log p(x | z, u):
  // the 1 is the pathwise -log q(z), which keeps weight 1 whatever w is; the
  // objective is the plain ELBO; and the reparameterised mean m gets the
  // plain ELBO's pathwise gradient.
  ppl::param_store().clear();
  const auto x = torch::tensor(1.5, kF64);
  auto model = [](const torch::Tensor& obs) {
    auto z = ppl::sample("z", d::Bernoulli(torch::tensor(0.5, kF64)));
    auto u = ppl::sample("u", d::Normal(0.0, 1.0));
    ppl::observe("x", d::Normal(4.0 * z + u, 1.0), obs);
  };
  auto guide = [](const torch::Tensor&) {
    auto a = ppl::param("a", torch::tensor(0.3, kF64));
    auto m = ppl::param("m", torch::tensor(0.2, kF64));
    ppl::sample("z", d::Bernoulli(d::logits(a)));
    ppl::sample("u", d::Normal(m, 0.5));
  };
  ppl::trace(guide, x);
  const double q1 = 1.0 / (1.0 + std::exp(-0.3)), m = 0.2;
  const double half_log_2pi = 0.5 * std::log(2 * M_PI);
  for (double w : {1.0, 4.0, 0.25}) {
    infer::Elbo elbo({.decaying_baseline = false, .signal_kl_weight = w});
    for (int i = 0; i < 6; ++i) {
      torch::manual_seed(300 + i);
      auto result = elbo.evaluate(elbo.loss_runner(model, guide, x));
      auto a = ppl::param_store().unconstrained("a");
      auto mp = ppl::param_store().unconstrained("m");
      a.mutable_grad().reset();
      mp.mutable_grad().reset();
      result.loss.backward();
      torch::manual_seed(300 + i);
      auto tr = ppl::trace(guide, x);
      const double z = tr.site("z").value.item<double>(), u = tr.site("u").value.item<double>();
      const double lpz = std::log(0.5), lqz = z > 0 ? std::log(q1) : std::log(1 - q1);
      const double lpu = -half_log_2pi - 0.5 * u * u;
      const double lqu = -half_log_2pi - std::log(0.5) - 0.5 * (u - m) * (u - m) / 0.25;
      const double r = 1.5 - 4.0 * z - u, lx = -half_log_2pi - 0.5 * r * r;
      const double f_w = w * (lpz - lqz + lpu - lqu) + lx;
      INFO("w = " << w << ", step " << i << ", z = " << z << ", u = " << u);
      CHECK(result.objective.item<double>() == Approx(lpz - lqz + lpu - lqu + lx).epsilon(1e-9));
      CHECK(a.grad().item<double>() == Approx((z - q1) * (1.0 - f_w)).epsilon(1e-9).margin(1e-12));
      // d/dm of the ELBO at u = m + 0.5 eps: d log p(u)/du + d log p(x|u)/du (log q(u) is flat in m).
      CHECK(mp.grad().item<double>() == Approx(-(-u + r)).epsilon(1e-9).margin(1e-12));
    }
  }
  CHECK_THROWS_WITH(infer::Elbo({.signal_kl_weight = -1.0}), Catch::Contains("signal_kl_weight is -1"));
  CHECK_THROWS_WITH(infer::Elbo({.signal_kl_weight = 2.0, .iwae = true}), Catch::Contains("iwae"));
  CHECK(infer::elbo_options_from_json({{"signal_kl_weight", 4.0}}).signal_kl_weight == 4.0);
}

TEST_CASE("IWAE score-function gradients match the enumerated bound's gradient", "[elbo][score][iwae]") {
  ppl::param_store().clear();
  neural_baseline = torch::Tensor();
  torch::manual_seed(14);
  const auto x = torch::tensor(1.5, kF64);
  ppl::trace(two_step_guide, x);
  // Exact L_2 = sum over two independent draws of q(a) q(b) log((w_a + w_b) / 2).
  std::vector<torch::Tensor> ps;
  for (const auto& n : kParams) ps.push_back(ppl::param_store().at(n).detach().clone().requires_grad_(true));
  std::vector<torch::Tensor> log_q, log_w;
  for (double z1 : {0.0, 1.0})
    for (double z2 : {0.0, 1.0}) {
      auto lq1 = z1 * torch::log_sigmoid(ps[0]) + (1 - z1) * torch::log_sigmoid(-ps[0]);
      auto l2 = ps[1] + ps[2] * z1;
      auto lq = lq1 + z2 * torch::log_sigmoid(l2) + (1 - z2) * torch::log_sigmoid(-l2);
      const double p2 = 0.2 + 0.4 * z1;
      const double lp = std::log(z1 ? 0.3 : 0.7) + std::log(z2 ? p2 : 1 - p2) - 0.5 * std::pow(1.5 - z1 - 2 * z2, 2) -
                        0.5 * std::log(2 * M_PI);
      log_q.push_back(lq);
      log_w.push_back(lp - lq);
    }
  auto bound = torch::zeros({}, kF64);
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 4; ++j)
      bound = bound + torch::exp(log_q[i] + log_q[j]) *
                          (torch::logaddexp(log_w[i], log_w[j]) - std::log(2.0));
  const auto exact = torch::stack(torch::autograd::grad({bound}, ps));
  infer::Elbo iwae({.particles = 2, .iwae = true});
  gradient_samples(iwae, x, 50);
  check_unbiased(gradient_samples(iwae, x, 3000), exact);
}

TEST_CASE("a neural baseline keeps the gradient unbiased and is trained by squared error", "[elbo][score]") {
  ppl::param_store().clear();
  torch::manual_seed(12);
  const auto x = torch::tensor(1.5, kF64);
  auto bl = torch::tensor(0.7, kF64).requires_grad_(true);
  neural_baseline = bl * 1.0;
  ppl::trace(two_step_guide, x);
  const auto exact = exact_gradient(1.5);
  infer::Elbo elbo({.decaying_baseline = false});
  auto out = torch::zeros({2000, 3}, kF64);
  double bl_grad = 0;
  for (int i = 0; i < 2000; ++i) {
    neural_baseline = bl * 1.0;
    auto loss = elbo.loss(two_step_model, two_step_guide, x);
    for (auto& p : ppl::param_store().parameters(kParams)) p.mutable_grad().reset();
    bl.mutable_grad().reset();
    loss.backward();
    for (int j = 0; j < 3; ++j) out[i][j] = -ppl::param_store().unconstrained(kParams[j]).grad();
    bl_grad += bl.grad().item<double>() / 2000;
  }
  check_unbiased(out, exact);
  // d/db E[(A - b)^2] = 2 (b - E[A]) with E[A] the expected downstream signal of z2.
  double expected_signal = 0;
  {
    auto a = ppl::param_store().at("a").item<double>(), b = ppl::param_store().at("b").item<double>(),
         c = ppl::param_store().at("c").item<double>();
    for (double z1 : {0.0, 1.0})
      for (double z2 : {0.0, 1.0}) {
        const double q1 = z1 ? 1 / (1 + std::exp(-a)) : 1 / (1 + std::exp(a));
        const double s2 = 1 / (1 + std::exp(-(b + c * z1)));
        const double q2 = z2 ? s2 : 1 - s2;
        const double p2 = 0.2 + 0.4 * z1;
        const double signal = std::log(z2 ? p2 : 1 - p2) - 0.5 * std::pow(1.5 - z1 - 2 * z2, 2) -
                              0.5 * std::log(2 * M_PI) - std::log(q2);
        expected_signal += q1 * q2 * signal;
      }
  }
  CHECK(bl_grad == Approx(2 * (0.7 - expected_signal)).margin(0.1));
  neural_baseline = torch::Tensor();
}

namespace {
void plate_model(const torch::Tensor& x) {
  auto data = ppl::plate("data", x.size(0));
  auto z = ppl::sample("z", d::Bernoulli(torch::full({x.size(0)}, 0.4, kF64)));
  ppl::observe("x", d::Normal(2 * z, 1.0), x);
}
void plate_guide(const torch::Tensor& x) {
  auto a = ppl::param("logits", torch::zeros({x.size(0)}, kF64));
  auto data = ppl::plate("data", x.size(0));
  ppl::sample("z", d::Bernoulli(d::logits(a)));
}
}  // namespace

TEST_CASE("score-function signals stay within their plate element", "[elbo][score][plate]") {
  ppl::param_store().clear();
  torch::manual_seed(13);
  const auto x = torch::tensor({-1.0, 0.5, 2.5}, kF64);
  ppl::trace(plate_guide, x);
  auto a = ppl::param_store().at("logits").detach().clone().requires_grad_(true);
  // Exact: the data points are independent, so the ELBO is a sum of enumerations.
  auto q1 = torch::sigmoid(a);
  auto lp = [&](double z) {
    return std::log(z ? 0.4 : 0.6) - 0.5 * (x - 2 * z).pow(2) - 0.5 * std::log(2 * M_PI);
  };
  auto elbo_exact = (q1 * (lp(1) - torch::log(q1)) + (1 - q1) * (lp(0) - torch::log(1 - q1))).sum();
  auto exact = torch::autograd::grad({elbo_exact}, {a})[0];

  auto run = [&](bool plates_respected) {
    infer::Elbo elbo({.decaying_baseline = false});
    const int n = 3000;
    auto out = torch::zeros({n, 3}, kF64);
    auto u = ppl::param_store().unconstrained("logits");
    for (int i = 0; i < n; ++i) {
      torch::Tensor loss;
      if (plates_respected) {
        loss = elbo.loss(plate_model, plate_guide, x);
      } else {
        // The same data without a plate: one joint site, so every element's
        // score sees the whole sum.
        loss = elbo.loss(
            [](const torch::Tensor& xx) {
              auto z = ppl::sample("z", d::Bernoulli(torch::full({xx.size(0)}, 0.4, kF64)).to_event(1));
              ppl::observe("x", d::Normal(2 * z, 1.0).to_event(1), xx);
            },
            [](const torch::Tensor& xx) {
              auto l = ppl::param("logits", torch::zeros({xx.size(0)}, kF64));
              ppl::sample("z", d::Bernoulli(d::logits(l)).to_event(1));
            },
            x);
      }
      u.mutable_grad().reset();
      loss.backward();
      out[i] = -u.grad();
    }
    return out;
  };
  auto with_plates = run(true);
  auto joint = run(false);
  const auto n = static_cast<double>(with_plates.size(0));
  for (const auto* g : {&with_plates, &joint}) {
    auto mean = g->mean(0), se = g->std(0) / std::sqrt(n);
    for (int j = 0; j < 3; ++j) CHECK(std::abs((mean[j] - exact[j]).item<double>()) < 4.5 * se[j].item<double>());
  }
  CHECK(with_plates.var(0).sum().item<double>() < 0.8 * joint.var(0).sum().item<double>());
}

TEST_CASE("vectorised particles: the same estimator as the loop, in one run", "[elbo][score][vectorise]") {
  ppl::param_store().clear();
  torch::manual_seed(14);
  const auto x = torch::tensor({-1.0, 0.5, 2.5}, kF64);
  ppl::trace(plate_guide, x);
  auto a = ppl::param_store().at("logits").detach().clone().requires_grad_(true);
  auto q1 = torch::sigmoid(a);
  auto lp = [&](double z) { return std::log(z ? 0.4 : 0.6) - 0.5 * (x - 2 * z).pow(2) - 0.5 * std::log(2 * M_PI); };
  auto elbo_exact = (q1 * (lp(1) - torch::log(q1)) + (1 - q1) * (lp(0) - torch::log(1 - q1))).sum();
  auto exact = torch::autograd::grad({elbo_exact}, {a})[0];
  // 4 particles per evaluation, drawn in one run or in four: both means of
  // the gradient within 4.5 standard errors of the exact one.
  auto run = [&](bool vectorise) {
    infer::Elbo elbo({.particles = 4, .vectorise = vectorise});
    const int n = 1500;
    auto out = torch::zeros({n, 3}, kF64);
    auto u = ppl::param_store().unconstrained("logits");
    for (int i = 0; i < n; ++i) {
      auto loss = elbo.loss(plate_model, plate_guide, x);
      u.mutable_grad().reset();
      loss.backward();
      out[i] = -u.grad();
    }
    return out;
  };
  const auto looped = run(false), vectorised = run(true);
  const auto n = static_cast<double>(looped.size(0));
  for (const auto* g : {&looped, &vectorised}) {
    auto mean = g->mean(0), se = g->std(0) / std::sqrt(n);
    for (int j = 0; j < 3; ++j) CHECK(std::abs((mean[j] - exact[j]).item<double>()) < 4.5 * se[j].item<double>());
  }
  // The same variance: each particle's signal is its own in both.
  const double ratio = vectorised.var(0).sum().item<double>() / looped.var(0).sum().item<double>();
  CHECK(ratio == Approx(1.0).margin(0.2));
  // The exact posterior of a local-latent model: every particle's ELBO is log p(x).
  auto model = [](const torch::Tensor& xx) {
    auto data = ppl::plate("data", xx.size(0));
    auto z = ppl::sample("z", d::Normal(torch::zeros({}, kF64), 1.0));
    ppl::observe("x", d::Normal(z, 0.5), xx);
  };
  auto posterior = [](const torch::Tensor& xx) {
    auto data = ppl::plate("data", xx.size(0));
    ppl::sample("z", d::Normal(xx / 1.25, 0.5 / std::sqrt(1.25)));
  };
  double evidence = 0;
  for (double v : {-1.0, 0.5, 2.5}) evidence += -0.5 * v * v / 1.25 - 0.5 * std::log(2 * M_PI * 1.25);
  CHECK(infer::Elbo({.particles = 16, .vectorise = true}).estimate(model, posterior, x) ==
        Approx(evidence).epsilon(1e-10));
  CHECK(infer::Elbo({.particles = 16, .iwae = true, .vectorise = true}).loss(model, posterior, x).item<double>() ==
        Approx(-evidence).epsilon(1e-10));
}

namespace {
void normal_model(const torch::Tensor& x) {
  auto z = ppl::sample("z", d::Normal(torch::tensor(0.0, kF64), 1.0));
  auto data = ppl::plate("data", x.size(0));
  ppl::observe("x", d::Normal(z, 0.5), x);
}
void normal_guide(const torch::Tensor&) {
  auto loc = ppl::param("loc", torch::tensor(0.3, kF64));
  auto scale = ppl::param("scale", torch::tensor(0.4, kF64), ppl::ParamConstraint::positive);
  ppl::sample("z", d::Normal(loc, scale));
}
}  // namespace

TEST_CASE("the pathwise loss is -(log p - log q) with beta weights and analytic KL", "[elbo]") {
  ppl::param_store().clear();
  const auto x = torch::tensor({0.2, 0.9, 0.4}, kF64);
  auto seeded_guide = ppl::handlers::seed(normal_guide, 5);
  auto q = ppl::trace(seeded_guide, x);
  auto p = ppl::trace(ppl::handlers::replay(normal_model, q), x);
  const double lx = p.site("x").log_prob_sum().item<double>();
  const double lz = p.site("z").log_prob_sum().item<double>() - q.site("z").log_prob_sum().item<double>();

  infer::Elbo plain;
  CHECK(plain.loss(normal_model, seeded_guide, x).item<double>() == Approx(-(lx + lz)).epsilon(1e-12));
  infer::Elbo weighted({.beta = {{"z", 0.25}, {"", 3.0}}});
  CHECK(weighted.weight("z") == 0.25);
  CHECK(weighted.weight("other") == 3.0);
  CHECK(weighted.loss(normal_model, seeded_guide, x).item<double>() == Approx(-(lx + 0.25 * lz)).epsilon(1e-12));
  // KL(N(0.3, 0.4) || N(0, 1)) = log(1/0.4) + (0.4^2 + 0.3^2) / 2 - 1/2.
  const double kl = std::log(1 / 0.4) + (0.16 + 0.09) / 2 - 0.5;
  infer::Elbo analytic({.analytic_kl = true});
  CHECK(analytic.loss(normal_model, seeded_guide, x).item<double>() == Approx(-(lx - kl)).epsilon(1e-9));
  const auto back = infer::elbo_options_from_json(infer::to_json(infer::ElboOptions{.particles = 3, .beta = {{"z", 2.0}}}));
  CHECK(back.particles == 3);
  CHECK(back.beta.at("z") == 2.0);
  CHECK_THROWS_WITH(infer::elbo_options_from_json({{"particle", 2}}), Catch::Contains("unknown key \"particle\""));
}

TEST_CASE("unpaired sites are errors naming the site", "[elbo][errors]") {
  ppl::param_store().clear();
  const auto x = torch::tensor({0.2, 0.9}, kF64);
  infer::Elbo elbo;
  auto model_extra = [](const torch::Tensor& xx) {
    normal_model(xx);
    ppl::sample("w", d::Normal(0.0, 1.0));
  };
  CHECK_THROWS_AS(elbo.loss(model_extra, normal_guide, x), ppl::SiteError);
  CHECK_THROWS_WITH(elbo.loss(model_extra, normal_guide, x),
                    Catch::StartsWith("Elbo: model site \"w\" (elbo_test.cpp:") && Catch::Contains("has no guide site"));
  auto guide_extra = [](const torch::Tensor& xx) {
    normal_guide(xx);
    ppl::sample("extra", d::Normal(0.0, 1.0));
  };
  CHECK_THROWS_AS(elbo.loss(normal_model, guide_extra, x), ppl::SiteError);
  CHECK_THROWS_WITH(elbo.loss(normal_model, guide_extra, x),
                    Catch::StartsWith("Elbo: guide site \"extra\"") && Catch::Contains("never visited by the model"));
  auto guide_observes_x = [](const torch::Tensor& xx) {
    normal_guide(xx);
    auto data = ppl::plate("data", xx.size(0));
    ppl::sample("x", d::Normal(torch::zeros({xx.size(0)}, kF64), 1.0));
  };
  CHECK_THROWS_WITH(elbo.loss(normal_model, guide_observes_x, x),
                    Catch::Contains("guide site \"x\"") && Catch::Contains("is observed by the model"));
}

TEST_CASE("shape errors name the site", "[elbo][errors]") {
  ppl::param_store().clear();
  const auto x = torch::tensor({0.2, 0.9}, kF64);
  infer::Elbo elbo;
  auto wide_guide = [](const torch::Tensor&) { ppl::sample("z", d::Normal(torch::zeros({3}, kF64), 1.0)); };
  CHECK_THROWS_AS(elbo.loss(normal_model, wide_guide, x), ppl::ShapeError);
  CHECK_THROWS_WITH(elbo.loss(normal_model, wide_guide, x), Catch::StartsWith("replay: site \"z\""));
  auto bad_baseline = [](const torch::Tensor&) {
    ppl::sample("z", d::Bernoulli(torch::tensor(0.5, kF64)), {.baseline = torch::zeros({2}, kF64)});
  };
  auto bern_model = [](const torch::Tensor&) { ppl::sample("z", d::Bernoulli(torch::tensor(0.5, kF64))); };
  CHECK_THROWS_AS(elbo.loss(bern_model, bad_baseline, x), ppl::ShapeError);
  CHECK_THROWS_WITH(elbo.loss(bern_model, bad_baseline, x),
                    Catch::StartsWith("Elbo: site \"z\"") &&
                        Catch::Contains("has a baseline of shape [2], which does not broadcast to its log_prob shape []"));
}

TEST_CASE("a NaN log_prob is reported with its site", "[elbo][errors]") {
  ppl::param_store().clear();
  ppl::set_validation(false);
  const auto x = torch::tensor({0.2, 0.9}, kF64);
  auto broken_model = [](const torch::Tensor& xx) {
    auto z = ppl::sample("z", d::Normal(torch::tensor(0.0, kF64), 1.0));
    auto data = ppl::plate("data", xx.size(0));
    ppl::observe("x", d::Normal(z, -0.5), xx);  // log of a negative scale
  };
  infer::Elbo elbo;
  CHECK_THROWS_AS(elbo.loss(broken_model, normal_guide, x), infer::NonFiniteError);
  CHECK_THROWS_WITH(elbo.loss(broken_model, normal_guide, x),
                    Catch::StartsWith("Elbo: log_prob of model site \"x\" (elbo_test.cpp:") &&
                        Catch::Contains("is nan (distribution Normal)"));
  ppl::set_validation(true);
}

namespace {
// The running statistics an Elbo keeps, read through its checkpoint state.
std::map<std::string, double> running_stats(const infer::Elbo& elbo) {
  ppl::TensorArchive archive;
  elbo.save_state(archive, "");
  std::map<std::string, double> out;
  for (const auto& [name, t] : archive.tensors) out[name] = t.item<double>();
  return out;
}
double std_normal_log_pdf(double x) { return -0.5 * x * x - 0.5 * std::log(2 * M_PI); }
}  // namespace

TEST_CASE("the running statistics and the baseline regression leave out masked elements", "[elbo][score][mask]") {
  // z_n ~ Bernoulli(0.5) under model and guide, x_n ~ Normal(0, 1): the
  // learning signal of element n is log N(x_n; 0, 1) whatever z_n is. The
  // guide masks elements 2 and 3, whose signals (x = 10, 20) are far off.
  ppl::param_store().clear();
  const auto x = torch::tensor({0.0, 1.0, 10.0, 20.0}, kF64);
  const auto on = torch::tensor({true, true, false, false});
  auto model = [](const torch::Tensor& obs) {
    auto data = ppl::plate("data", 4);
    ppl::sample("z", d::Bernoulli(torch::full({4}, 0.5, kF64)));
    ppl::observe("x", d::Normal(torch::zeros({4}, kF64), 1.0), obs);
  };
  auto b = torch::tensor({0.5, -0.25, 3.0, 4.0}, kF64).requires_grad_(true);
  auto guide = [&](const torch::Tensor&) {
    auto data = ppl::plate("data", 4);
    ppl::sample("z", d::Bernoulli(torch::full({4}, 0.5, kF64)), {.baseline = b, .mask = on});
  };
  infer::Elbo elbo;
  torch::manual_seed(5);
  elbo.loss(model, guide, x).backward();
  const double f0 = std_normal_log_pdf(0.0), f1 = std_normal_log_pdf(1.0);
  const auto stats = running_stats(elbo);
  CHECK(stats.at("z/mean") == Approx((f0 - 0.5 + f1 + 0.25) / 2));  // of the signal less the baseline
  const double d = (f0 - 0.5) - (f1 + 0.25);
  CHECK(stats.at("z/var") == Approx(d * d / 4));
  // d loss / d b_n = -2 (f_n - c - b_n) with c = 0 at the first step, and 0 where masked.
  CHECK(b.grad()[0].item<double>() == Approx(-2 * (f0 - 0.5)));
  CHECK(b.grad()[1].item<double>() == Approx(-2 * (f1 + 0.25)));
  CHECK(b.grad()[2].item<double>() == 0.0);
  CHECK(b.grad()[3].item<double>() == 0.0);
  // A step in which every element is masked leaves the statistics alone.
  const auto off = torch::zeros({4}, torch::kBool);
  auto masked_guide = [&](const torch::Tensor&) {
    auto data = ppl::plate("data", 4);
    ppl::sample("z", d::Bernoulli(torch::full({4}, 0.5, kF64)), {.mask = off});
  };
  elbo.loss(model, masked_guide, x);
  CHECK(running_stats(elbo).at("z/mean") == stats.at("z/mean"));
}

TEST_CASE("pooled_baselines share one running mean and variance among sites with a prefix", "[elbo][score]") {
  // Model order o/0, x1, o/1, x2: the signal of o/0 is log p(x1) + log p(x2),
  // that of o/1 only log p(x2) (the Bernoulli terms cancel: both are 0.5).
  ppl::param_store().clear();
  const auto x1 = torch::tensor({0.0, 1.0}, kF64), x2 = torch::tensor({2.0, -1.0}, kF64);
  auto model = [&](const torch::Tensor&) {
    auto data = ppl::plate("data", 2);
    ppl::sample("o/0", d::Bernoulli(torch::full({2}, 0.5, kF64)));
    ppl::observe("x1", d::Normal(torch::zeros({2}, kF64), 1.0), x1);
    ppl::sample("o/1", d::Bernoulli(torch::full({2}, 0.5, kF64)));
    ppl::observe("x2", d::Normal(torch::zeros({2}, kF64), 1.0), x2);
  };
  auto guide = [](const torch::Tensor&) {
    auto data = ppl::plate("data", 2);
    ppl::sample("o/0", d::Bernoulli(torch::full({2}, 0.5, kF64)));
    ppl::sample("o/1", d::Bernoulli(torch::full({2}, 0.5, kF64)));
  };
  std::vector<double> s0, s1;
  for (int n = 0; n < 2; ++n) {
    const double l1 = std_normal_log_pdf(x1[n].item<double>()), l2 = std_normal_log_pdf(x2[n].item<double>());
    s0.push_back(l1 + l2);
    s1.push_back(l2);
  }
  auto moments = [](const std::vector<double>& v) {
    double m = 0, q = 0;
    for (double e : v) m += e / static_cast<double>(v.size());
    for (double e : v) q += (e - m) * (e - m) / static_cast<double>(v.size());
    return std::pair{m, q};
  };
  infer::Elbo separate, pooled({.pooled_baselines = {"o/"}});
  const auto none = torch::Tensor();
  separate.loss(model, guide, none);
  pooled.loss(model, guide, none);
  const auto a = running_stats(separate), b = running_stats(pooled);
  CHECK(a.at("o/0/mean") == Approx(moments(s0).first));
  CHECK(a.at("o/1/mean") == Approx(moments(s1).first));
  CHECK(a.at("o/1/var") == Approx(moments(s1).second));
  std::vector<double> all = s0;
  all.insert(all.end(), s1.begin(), s1.end());
  CHECK(b.count("o/0/mean") == 0);
  CHECK(b.at("o//mean") == Approx(moments(all).first));
  CHECK(b.at("o//var") == Approx(moments(all).second));
  // Round trip through JSON.
  const nlohmann::json j = infer::ElboOptions{.pooled_baselines = {"o/"}};
  CHECK(j.get<infer::ElboOptions>().pooled_baselines == std::vector<std::string>{"o/"});
}
