// SVI against an analytic posterior, Adam groups, RMSprop, clipping, NaN gradients and
// exact checkpoint resumption.
#include <cmath>
#include <filesystem>
#include <map>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <torch/optim/adam.h>
#include <torch/optim/rmsprop.h>

#include <ppl/core/archive.hpp>
#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

// mu ~ N(0, 1), x_n ~ N(mu, 0.5): posterior precision 1 + N / 0.25.
void model(const torch::Tensor& x) {
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
  auto data = ppl::plate("data", x.size(0));
  ppl::observe("x", d::Normal(mu, 0.5), x);
}
void guide(const torch::Tensor&) {
  auto loc = ppl::param("q.loc", torch::tensor(0.0, kF64));
  auto scale = ppl::param("q.scale", torch::tensor(1.0, kF64), ppl::ParamConstraint::positive);
  ppl::sample("mu", d::Normal(loc, scale));
}

}  // namespace

TEST_CASE("SVI recovers the analytic posterior mean and variance", "[svi]") {
  ppl::param_store().clear();
  torch::manual_seed(31);
  const auto x = 0.8 + 0.5 * torch::randn({20}, kF64);
  infer::Svi svi(model, guide, infer::Elbo({.particles = 4}), infer::Adam(0.03));
  double loss = 0;
  for (int step = 0; step < 1500; ++step) loss = svi.step(x);
  CHECK(std::isfinite(loss));
  CHECK(svi.steps() == 1500);
  const double precision = 1.0 + 20 / 0.25, mean = x.sum().item<double>() / 0.25 / precision;
  CHECK(ppl::param_store().at("q.loc").item<double>() == Approx(mean).margin(0.03));
  CHECK(ppl::param_store().at("q.scale").item<double>() == Approx(1 / std::sqrt(precision)).margin(0.02));
  CHECK(svi.optimiser().size() == 2);
}

TEST_CASE("Adam groups give learning rates by prefix and to baseline networks", "[svi][optim]") {
  infer::Optimiser opt(infer::Adam(1e-4).group("q.", 1e-2).group("q.scale", 0.0).baselines(1e-3));
  CHECK(opt.learning_rate("q.loc", false) == 1e-2);
  CHECK(opt.learning_rate("q.scale", false) == 0.0);
  CHECK(opt.learning_rate("encoder.weight", false) == 1e-4);
  CHECK(opt.learning_rate("baseline#0", true) == 1e-3);
  CHECK_THROWS_AS(infer::Optimiser(infer::Adam(-1.0)), ppl::ArgumentError);
  // The spec round-trips through JSON.
  const nlohmann::json j = infer::Adam(1e-4).group("q.", 1e-2).baselines(1e-3).clip(5.0);
  const auto back = j.get<infer::Adam>();
  CHECK(back.lr == 1e-4);
  CHECK(back.groups.size() == 1);
  CHECK(back.groups[0].prefix == "q.");
  CHECK(back.baseline_lr == 1e-3);
  CHECK(back.clip_norm == 5.0);
  CHECK_THROWS_WITH(nlohmann::json({{"learning_rate", 1.0}}).get<infer::Adam>(),
                    "Adam: unknown key \"learning_rate\"");

  // One Adam step moves a parameter by lr * sign(g) (bias-corrected first step).
  auto a = torch::tensor({1.0, 2.0}, kF64).requires_grad_(true);
  auto b = torch::tensor({1.0}, kF64).requires_grad_(true);
  opt.add("q.loc", a);
  opt.add("q.scale", b);
  a.mutable_grad() = torch::tensor({0.5, -3.0}, kF64);
  b.mutable_grad() = torch::tensor({1.0}, kF64);
  opt.update();
  CHECK(a[0].item<double>() == Approx(1.0 - 1e-2).epsilon(1e-6));
  CHECK(a[1].item<double>() == Approx(2.0 + 1e-2).epsilon(1e-6));
  CHECK(b[0].item<double>() == 1.0);
}

TEST_CASE("gradients are clipped by global norm and NaN gradients name the parameter", "[svi][optim]") {
  infer::Optimiser opt(infer::Adam(1e-3).clip(1.0));
  auto a = torch::zeros({2}, kF64).requires_grad_(true);
  opt.add("w", a);
  a.mutable_grad() = torch::tensor({3.0, 4.0}, kF64);
  CHECK(opt.update() == Approx(5.0));
  CHECK(a.grad().norm().item<double>() == Approx(1.0).epsilon(1e-5));
  a.mutable_grad() = torch::tensor({std::nan(""), 1.0}, kF64);
  CHECK_THROWS_AS(opt.update(), infer::NonFiniteError);
  CHECK_THROWS_WITH(opt.update(), "Svi: the gradient of parameter \"w\" is nan");
}

namespace {
// A discrete and a continuous latent: score-function terms with a decaying
// baseline, so that the checkpoint must carry the baseline state too.
void mixed_model(const torch::Tensor& x) {
  auto s = ppl::sample("s", d::Bernoulli(torch::tensor(0.5, kF64)));
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
  auto data = ppl::plate("data", x.size(0));
  ppl::observe("x", d::Normal(mu + s, 0.5), x);
}
void mixed_guide(const torch::Tensor&) {
  auto p = ppl::param("p", torch::tensor(0.5, kF64), ppl::ParamConstraint::unit_interval);
  auto loc = ppl::param("loc", torch::tensor(0.0, kF64));
  auto scale = ppl::param("scale", torch::tensor(1.0, kF64), ppl::ParamConstraint::positive);
  ppl::sample("s", d::Bernoulli(p));
  ppl::sample("mu", d::Normal(loc, scale));
}
}  // namespace

TEST_CASE("a checkpoint resumes training bit for bit", "[svi][checkpoint]") {
  const auto x = torch::tensor({0.3, 1.2, 0.9, 1.7}, kF64);
  const auto path = std::filesystem::temp_directory_path() / "ppl_inference_checkpoint_test.ppl";
  const std::vector<std::string> names = {"p", "loc", "scale"};
  auto make = [] { return infer::Svi(mixed_model, mixed_guide, infer::Elbo({.particles = 2}), infer::Adam(0.05)); };

  // N steps in one go.
  ppl::param_store().clear();
  torch::manual_seed(41);
  auto straight = make();
  std::vector<double> losses;
  for (int i = 0; i < 20; ++i) losses.push_back(straight.step(x));
  std::vector<torch::Tensor> expected;
  for (const auto& n : names) expected.push_back(ppl::param_store().unconstrained(n).detach().clone());

  // k steps, save, a fresh store and optimiser, load, N - k steps.
  ppl::param_store().clear();
  torch::manual_seed(41);
  {
    auto first = make();
    for (int i = 0; i < 8; ++i) first.step(x);
    infer::save_checkpoint(path, first, {{"run", "mixed"}});
  }
  CHECK(ppl::read_archive_metadata(path)["user"]["run"] == "mixed");
  // A checkpoint whose generator state was cut short cannot promise the same
  // draws on resume: refused, naming the file, before anything is loaded.
  {
    auto archive = ppl::load_archive(path);
    for (auto& [name, t] : archive.tensors)
      if (name == "rng/cpu") t = t.narrow(0, 0, t.numel() / 2).clone();
    const auto cut = std::filesystem::temp_directory_path() / "ppl_inference_checkpoint_cut.ppl";
    ppl::save_archive(archive, cut);
    ppl::param_store().clear();
    auto other = make();
    CHECK_THROWS_WITH(infer::load_checkpoint(cut, other),
                      Catch::Contains("ppl_inference_checkpoint_cut.ppl") && Catch::Contains("generator state"));
    CHECK(ppl::param_store().size() == 0);
    std::filesystem::remove(cut);
  }
  ppl::param_store().clear();
  torch::manual_seed(999);  // the checkpoint restores the generator
  auto resumed = make();
  infer::load_checkpoint(path, resumed);
  CHECK(resumed.steps() == 8);
  CHECK(ppl::param_store().size() == 3);
  std::vector<double> rest;
  for (int i = 8; i < 20; ++i) rest.push_back(resumed.step(x));
  for (size_t i = 0; i < rest.size(); ++i) CHECK(rest[i] == losses[8 + i]);
  for (size_t i = 0; i < names.size(); ++i) {
    INFO(names[i]);
    CHECK(torch::equal(ppl::param_store().unconstrained(names[i]), expected[i]));
  }
  CHECK(ppl::param_store().at("scale").item<double>() > 0);
  std::filesystem::remove(path);

  CHECK_THROWS_AS(infer::load_checkpoint(path, resumed), ppl::Error);
}

namespace {
void float_model(const torch::Tensor& x) {
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0f), 1.0));
  auto data = ppl::plate("data", x.size(0));
  ppl::observe("x", d::Normal(mu, 0.5), x);
}
void float_guide(const torch::Tensor&) {
  auto loc = ppl::param("loc", torch::tensor(0.0f));
  auto scale = ppl::param("scale", torch::tensor(1.0f), ppl::ParamConstraint::positive);
  ppl::sample("mu", d::Normal(loc, scale));
}
}  // namespace

TEST_CASE("A released checkpoint with float16 weights loads as float32 parameters that train on", "[svi][checkpoint]") {
  const auto x = torch::tensor({0.3f, 1.2f, 0.9f, 1.7f});
  const auto path = std::filesystem::temp_directory_path() / "ppl_inference_checkpoint_half.ppl";
  auto make = [] { return infer::Svi(float_model, float_guide, infer::Elbo(), infer::Adam(0.05)); };
  ppl::param_store().clear();
  torch::manual_seed(3);
  {
    auto first = make();
    for (int i = 0; i < 5; ++i) first.step(x);
    infer::save_checkpoint(path, first);
  }
  // What `ppl export --dtype float16` writes: parameters as float16, no
  // optimiser state, "released" in the metadata.
  auto archive = ppl::load_archive(path);
  std::map<std::string, torch::Tensor> halves;
  ppl::TensorArchive released;
  released.metadata = archive.metadata;
  released.metadata["released"] = {{"step", 5}, {"weights", "float16"}};
  for (const auto& [name, t] : archive.tensors) {
    if (name.rfind("adam/", 0) == 0 || name.rfind("schedule/", 0) == 0) continue;
    auto v = name.rfind("param/", 0) == 0 ? t.to(torch::kHalf) : t;
    if (name.rfind("param/", 0) == 0) halves[name.substr(6)] = v;
    released.tensors.emplace_back(name, v);
  }
  REQUIRE(halves.size() == 2);
  ppl::save_archive(released, path);

  ppl::param_store().clear();
  auto resumed = make();
  infer::load_checkpoint(path, resumed);
  CHECK(resumed.steps() == 5);
  for (const auto& [name, h] : halves) {
    INFO(name);
    const auto& u = ppl::param_store().unconstrained(name);
    CHECK(u.scalar_type() == torch::kFloat32);
    CHECK(torch::equal(u, h.to(torch::kFloat32)));  // widening float16 is exact
  }
  const double loss = resumed.step(x);
  CHECK(std::isfinite(loss));
  CHECK(ppl::param_store().unconstrained("loc").scalar_type() == torch::kFloat32);
  std::filesystem::remove(path);
}

TEST_CASE("drop_parameters starts the chosen parameters afresh and restores the rest", "[svi][checkpoint]") {
  const auto x = torch::tensor({0.3f, 1.2f, 0.9f, 1.7f});
  const auto path = std::filesystem::temp_directory_path() / "ppl_inference_checkpoint_drop.ppl";
  const double lr = 0.05;
  auto make = [&] { return infer::Svi(float_model, float_guide, infer::Elbo(), infer::Adam(lr)); };
  ppl::param_store().clear();
  torch::manual_seed(5);
  {
    auto first = make();
    for (int i = 0; i < 5; ++i) first.step(x);
    infer::save_checkpoint(path, first);
  }
  const auto saved_loc = ppl::param_store().unconstrained("loc").detach().clone();

  auto archive = ppl::load_archive(path);
  CHECK_THROWS_WITH(infer::drop_parameters(archive, {"q."}, "ckpt.bin"),
                    Catch::Contains("ckpt.bin") && Catch::Contains("\"q.\"") && Catch::Contains("loc, scale"));
  CHECK_THROWS_WITH(infer::drop_parameters(archive, {""}, "ckpt.bin"), Catch::Contains("empty prefix"));
  const auto dropped = infer::drop_parameters(archive, {"sc"}, "ckpt.bin");
  CHECK(dropped == std::vector<std::string>{"scale"});
  bool loc_moments = false;
  for (const auto& [name, t] : archive.tensors) {
    INFO(name);
    if (name.rfind("schedule/", 0) == 0) continue;  // the learning-rate schedule's own "scale"
    CHECK(name.find("scale") == std::string::npos);
    loc_moments = loc_moments || name == "adam/loc/m";
  }
  CHECK(loc_moments);

  ppl::param_store().clear();
  auto resumed = make();
  CHECK(infer::load_checkpoint(archive, "ckpt.bin", resumed.elbo(), resumed.optimiser()) == 5);
  CHECK(torch::equal(ppl::param_store().unconstrained("loc"), saved_loc));
  CHECK_FALSE(ppl::param_store().contains("scale"));
  resumed.step(x);
  // The first trace registers scale at its initial value (log 1 = 0), and a
  // first Adam step from zero moments moves it by lr exactly (up to eps).
  const double u = ppl::param_store().unconstrained("scale").item<float>();
  CHECK(std::abs(u) == Approx(lr).margin(1e-6));
  std::filesystem::remove(path);
}

namespace {
torch::nn::Linear baseline_net{nullptr};

void local_model(const torch::Tensor& x) {
  auto data = ppl::plate("data", x.size(0));
  auto z = ppl::sample("z", d::Bernoulli(torch::full({x.size(0)}, 0.3, kF64)));
  ppl::observe("x", d::Normal(2 * z, 1.0), x);
}
void local_guide(const torch::Tensor& x) {
  auto logits = ppl::param("logits", torch::zeros({x.size(0)}, kF64));
  auto data = ppl::plate("data", x.size(0));
  auto b = baseline_net->forward(x.unsqueeze(-1)).squeeze(-1);  // [N], from the data only
  ppl::sample("z", d::Bernoulli(d::logits(logits)), {.baseline = b});
}
}  // namespace

TEST_CASE("SVI trains a neural baseline with its own learning rate", "[svi][baseline]") {
  ppl::param_store().clear();
  torch::manual_seed(51);
  baseline_net = torch::nn::Linear(1, 1);
  baseline_net->to(torch::kDouble);
  const auto x = torch::tensor({-1.0, 0.2, 1.9, 2.4, 0.8}, kF64);
  infer::Svi svi(local_model, local_guide, infer::Elbo({.decaying_baseline = false}),
                 infer::Adam(0.02).baselines(0.05));
  auto squared_error = [&] {
    // The baseline's error against the mean downstream signal, over many draws.
    torch::NoGradGuard no_grad;
    double total = 0;
    for (int i = 0; i < 200; ++i) {
      auto q = ppl::trace(local_guide, x);
      auto p = ppl::trace(ppl::handlers::replay(local_model, q), x);
      auto signal = p.site("z").log_prob() + p.site("x").log_prob() - q.site("z").log_prob();
      total += (signal - q.site("z").options.baseline).pow(2).mean().item<double>() / 200;
    }
    return total;
  };
  const double before = squared_error();
  const auto bias = baseline_net->bias.detach().clone();
  for (int i = 0; i < 300; ++i) svi.step(x);
  const auto names = svi.optimiser().names();
  CHECK(std::count(names.begin(), names.end(), "baseline#0") == 1);
  CHECK(std::count(names.begin(), names.end(), "baseline#1") == 1);
  CHECK(svi.optimiser().learning_rate("baseline#0", true) == 0.05);
  CHECK_FALSE(torch::equal(bias, baseline_net->bias.detach()));
  const double after = squared_error();
  INFO("baseline squared error before " << before << ", after " << after);
  CHECK(after < 0.7 * before);

  // A checkpoint carries the weights of a baseline network outside the store.
  const auto path = std::filesystem::temp_directory_path() / "ppl_inference_baseline_checkpoint.ppl";
  infer::save_checkpoint(path, svi);
  const double saved_bias = baseline_net->bias.item<double>();
  baseline_net = torch::nn::Linear(1, 1);
  baseline_net->to(torch::kDouble);
  baseline_net->bias.detach().fill_(saved_bias + 5.0);
  infer::Svi resumed(local_model, local_guide, infer::Elbo({.decaying_baseline = false}),
                     infer::Adam(0.02).baselines(0.05));
  infer::load_checkpoint(path, resumed);
  resumed.step(x);
  CHECK(std::abs(baseline_net->bias.item<double>() - saved_bias) < 0.2);
  std::filesystem::remove(path);
  baseline_net = nullptr;
}

TEST_CASE("Svi stops with the site whose log_prob went NaN", "[svi][errors]") {
  ppl::param_store().clear();
  ppl::set_validation(false);
  const auto x = torch::tensor({0.3, 1.2}, kF64);
  auto bad_model = [](const torch::Tensor& xx) {
    auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 1.0));
    auto noise = ppl::param("noise", torch::tensor(-0.5, kF64));  // unconstrained: may go negative
    auto data = ppl::plate("data", xx.size(0));
    ppl::observe("x", d::Normal(mu, noise), xx);
  };
  infer::Svi svi(bad_model, guide, infer::Elbo(), infer::Adam(0.01));
  CHECK_THROWS_AS(svi.step(x), infer::NonFiniteError);
  CHECK_THROWS_WITH(svi.step(x), Catch::StartsWith("Elbo: log_prob of model site \"x\" (svi_test.cpp:"));
  CHECK(svi.steps() == 0);
  ppl::set_validation(true);
}

TEST_CASE("The plateau rule reduces the rates after more than `patience` calls without improvement", "[svi][optim]") {
  // Absolute threshold 1, patience 2, factor 0.5: traced by hand with torch's
  // ReduceLROnPlateau rule (mode "min", threshold_mode "abs").
  infer::Optimiser opt(infer::Adam(0.1).reduce_on_plateau({.factor = 0.5, .patience = 2, .threshold = 1.0, .relative = false}));
  const std::vector<double> losses{10, 9.5, 9.2, 9.1, 8.0, 7.5, 7.4, 7.3, 7.2, 5.0};
  // 10 sets best; 9.5, 9.2, 9.1 are within 1 of it (bad 1, 2, 3 > 2: reduce);
  // 8.0 improves; 7.5, 7.4, 7.3 do not (reduce at 7.3); 7.2 does not (bad 1); 5.0 improves.
  const std::vector<bool> reduced{false, false, false, true, false, false, false, true, false, false};
  const std::vector<double> scale{1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25};
  for (size_t i = 0; i < losses.size(); ++i) {
    INFO("call " << i);
    CHECK(opt.step_schedule(losses[i]) == reduced[i]);
    CHECK(opt.lr_scale() == scale[i]);
    CHECK(opt.learning_rate("w", false) == Approx(0.1 * scale[i]));
  }
  CHECK(opt.reductions() == 2);
  CHECK_THROWS_AS(opt.step_schedule(NAN), ppl::ArgumentError);
}

TEST_CASE("The plateau rule's cooldown and relative threshold", "[svi][optim]") {
  // Patience 0, cooldown 2, a constant loss: reductions at calls 2 and 5
  // (calls 3 and 4 are the cooldown), as torch's rule gives.
  infer::Optimiser opt(infer::Adam(1.0).reduce_on_plateau({.factor = 0.1, .patience = 0, .cooldown = 2}));
  std::vector<int> at;
  for (int call = 1; call <= 8; ++call)
    if (opt.step_schedule(5.0)) at.push_back(call);
  CHECK(at == std::vector<int>{2, 5, 8});
  CHECK(opt.lr_scale() == Approx(1e-3));
  // Relative threshold 1 % of |best|, also for a negative loss: -100.5 is not
  // below -101, -102 is.
  infer::Optimiser rel(infer::Adam(1.0).reduce_on_plateau({.factor = 0.5, .patience = 1, .threshold = 0.01}));
  CHECK_FALSE(rel.step_schedule(-100));
  CHECK_FALSE(rel.step_schedule(-100.5));  // bad 1
  CHECK_FALSE(rel.step_schedule(-102));    // improves: bad 0
  CHECK_FALSE(rel.step_schedule(-102.5));  // bad 1
  CHECK(rel.step_schedule(-102.9));        // bad 2 > 1
  CHECK(rel.lr_scale() == 0.5);
}

TEST_CASE("Decay and min_lr schedule every group, and updates use the scheduled rate", "[svi][optim]") {
  infer::Optimiser opt(infer::Adam(1e-3).group("a.", 1e-5).decay_by(0.5).floor(1e-4));
  for (int i = 0; i < 3; ++i) opt.step_schedule(0.0);
  CHECK(opt.learning_rate("w", false) == Approx(1.25e-4));
  CHECK(opt.learning_rate("a.w", false) == 1e-5);  // starts below the floor: unchanged
  opt.step_schedule(0.0);
  CHECK(opt.learning_rate("w", false) == 1e-4);  // floored, not 6.25e-5
  // Adam's first update moves each coordinate by lr * g / |g| (bias-corrected
  // moments m = g, v = g^2): with the decay applied twice, by lr / 4.
  infer::Optimiser fresh(infer::Adam(0.2).decay_by(0.5));
  fresh.step_schedule(1.0);
  fresh.step_schedule(1.0);
  auto w = torch::tensor({1.0, -2.0}, kF64).requires_grad_(true);
  fresh.add("w", w);
  (w * torch::tensor({3.0, -0.5}, kF64)).sum().backward();
  fresh.update();
  CHECK(w[0].item<double>() == Approx(1.0 - 0.05).epsilon(1e-6));
  CHECK(w[1].item<double>() == Approx(-2.0 + 0.05).epsilon(1e-6));
  CHECK(fresh.learning_rate("w", false) == 0.05);
}

TEST_CASE("The schedule's state survives a checkpoint, and bad schedules are errors", "[svi][optim]") {
  const auto spec = infer::Adam(1.0).reduce_on_plateau({.factor = 0.5, .patience = 1, .threshold = 0.1, .relative = false, .cooldown = 1});
  const std::vector<double> losses{3, 2, 2, 2, 2, 1.95, 1.0, 1.0, 1.0, 1.0, 1.0};
  infer::Optimiser straight(spec);
  for (double l : losses) straight.step_schedule(l);
  for (size_t k : {1, 3, 5, 8}) {
    INFO("saved after " << k << " calls");
    infer::Optimiser first(spec), second(spec);
    for (size_t i = 0; i < k; ++i) first.step_schedule(losses[i]);
    ppl::TensorArchive archive;
    first.save_schedule(archive);
    second.load_schedule(archive);
    for (size_t i = k; i < losses.size(); ++i) second.step_schedule(losses[i]);
    CHECK(second.lr_scale() == straight.lr_scale());
    CHECK(second.reductions() == straight.reductions());
  }
  CHECK(straight.reductions() >= 2);
  // JSON round trip, and errors naming the setting.
  const nlohmann::json j = spec;
  const auto back = j.get<infer::Adam>();
  REQUIRE(back.plateau.has_value());
  CHECK(back.plateau->factor == 0.5);
  CHECK(back.plateau->cooldown == 1);
  CHECK_FALSE(back.plateau->relative);
  CHECK_FALSE(nlohmann::json(infer::Adam()).get<infer::Adam>().plateau.has_value());
  CHECK_THROWS_WITH(nlohmann::json({{"plateau", {{"patiense", 3}}}}).get<infer::Adam>(),
                    Catch::Contains("plateau.patiense"));
  CHECK_THROWS_WITH(infer::Optimiser(infer::Adam().decay_by(0.0)), Catch::Contains("decay is 0"));
  CHECK_THROWS_WITH(infer::Optimiser(infer::Adam().reduce_on_plateau({.factor = 1.0})), Catch::Contains("plateau factor is 1"));
  CHECK_THROWS_WITH(infer::Optimiser(infer::Adam().reduce_on_plateau({.patience = -1})), Catch::Contains("patience is -1"));
  CHECK_THROWS_WITH(infer::Optimiser(infer::Adam().floor(-1e-3)), Catch::Contains("min_lr"));
}

TEST_CASE("Adam follows torch::optim::Adam step for step, fused on the CPU and as tensor operations otherwise",
          "[svi][optim]") {
  // The reference is libtorch's Adam (betas 0.9, 0.999, eps 1e-8), fed the
  // same gradients: a quadratic's with weights that differ per coordinate.
  // 37 elements leave a remainder after the fused loops' blocks of 8; a
  // transposed parameter is not contiguous and takes the tensor formulas.
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    for (bool transposed : {false, true}) {
      CAPTURE(dtype, transposed);
      const auto opts = torch::TensorOptions().dtype(dtype);
      const auto target = torch::linspace(-2, 2, 37, opts).reshape({37, 1}).expand({37, 2}).contiguous();
      const auto weights = torch::linspace(0.1, 3, 74, opts).reshape({37, 2});
      auto start = torch::linspace(1, -1, 74, opts).reshape({37, 2});
      auto ours = transposed ? start.t().contiguous().t() : start.clone();
      ours.requires_grad_(true);
      REQUIRE(ours.is_contiguous() == !transposed);
      auto theirs = start.clone().requires_grad_(true);
      auto loss_of = [&](const torch::Tensor& w) { return ((w - target).pow(2) * weights).sum(); };
      infer::Optimiser opt(infer::Adam(0.05));
      opt.add("w", ours);
      torch::optim::Adam reference({theirs}, torch::optim::AdamOptions(0.05));
      for (int step = 0; step < 25; ++step) {
        opt.zero_grad();
        loss_of(ours).backward();
        // The norm update() returns, summed in double in one pass.
        const double expected = ours.grad().to(torch::kDouble).norm().item<double>();
        CHECK(opt.update() == Approx(expected).epsilon(1e-12));
        reference.zero_grad();
        loss_of(theirs).backward();
        reference.step();
      }
      // Float: a few roundings of float per step, over 25 steps.
      const double tol = dtype == torch::kFloat ? 1e-5 : 1e-12;
      CHECK(torch::allclose(ours.detach(), theirs.detach(), tol, tol));
      CHECK(ours.detach().sub(start).abs().max().item<double>() > 0.5);  // and they moved
    }
  }
}

TEST_CASE("RMSprop follows torch::optim::RMSprop step for step, and its state survives a checkpoint", "[svi][optim]") {
  // The reference is libtorch's own RMSprop (alpha 0.99, eps 1e-8, no
  // momentum), fed the same gradients: a quadratic's, recomputed each step.
  const auto target = torch::tensor({0.5, -1.0, 2.0}, kF64);
  auto loss_of = [&](const torch::Tensor& w) { return ((w - target).pow(2) * torch::tensor({1.0, 3.0, 0.2}, kF64)).sum(); };
  auto ours = torch::tensor({1.0, 2.0, -1.0}, kF64).requires_grad_(true);
  auto theirs = ours.detach().clone().requires_grad_(true);
  infer::Optimiser opt(infer::RMSprop(0.05));
  opt.add("w", ours);
  torch::optim::RMSprop reference({theirs}, torch::optim::RMSpropOptions(0.05).alpha(0.99).eps(1e-8));
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    loss_of(ours).backward();
    opt.update();
    reference.zero_grad();
    loss_of(theirs).backward();
    reference.step();
  }
  CHECK(torch::allclose(ours.detach(), theirs.detach(), 1e-12, 1e-12));
  // The first step is lr g / (sqrt(1 - alpha) |g|): 10 lr per coordinate at alpha 0.99.
  auto w = torch::tensor({0.0, 0.0}, kF64).requires_grad_(true);
  infer::Optimiser first(infer::RMSprop(1e-3));
  first.add("w", w);
  w.mutable_grad() = torch::tensor({2.0, -0.01}, kF64);
  first.update();
  CHECK(w[0].item<double>() == Approx(-1e-2).epsilon(1e-6));
  CHECK(w[1].item<double>() == Approx(1e-2).epsilon(1e-4));
  // A checkpointed optimiser continues exactly where the original does.
  ppl::TensorArchive archive;
  opt.save_state(archive);
  auto copy = ours.detach().clone().requires_grad_(true);
  infer::Optimiser resumed(infer::RMSprop(0.05));
  resumed.load_state(archive);
  resumed.add("w", copy);
  for (auto [o, p] : {std::pair{&opt, ours}, std::pair{&resumed, copy}}) {
    o->zero_grad();
    loss_of(p).backward();
    o->update();
  }
  CHECK(torch::equal(ours.detach(), copy.detach()));
  // JSON: the rule and alpha round-trip; an old spec without them is Adam.
  const nlohmann::json j = infer::RMSprop(1e-4, 0.9).clip(1.0);
  const auto back = j.get<infer::Adam>();
  CHECK(back.rule == infer::Adam::Rule::rmsprop);
  CHECK(back.alpha == 0.9);
  CHECK(nlohmann::json({{"lr", 1e-3}}).get<infer::Adam>().rule == infer::Adam::Rule::adam);
  CHECK_THROWS_WITH(nlohmann::json({{"rule", "sgd"}}).get<infer::Adam>(), Catch::Contains("rule is \"sgd\""));
  CHECK_THROWS_WITH(infer::Optimiser(infer::RMSprop(1e-3, 1.0)), Catch::Contains("alpha is 1"));
}
