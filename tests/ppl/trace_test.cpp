// Trace JSON round trip, the shapes table, and range queries.
#include <catch2/catch.hpp>
#include <range/v3/view/filter.hpp>
#include <range/v3/view/transform.hpp>
#include <range/v3/range/conversion.hpp>

#include <ppl/ppl.hpp>

namespace d = ppl::dist;

namespace {
void rich_model() {
  auto w = ppl::param("w", torch::tensor({0.5, 1.5}, torch::kDouble), ppl::ParamConstraint::positive);
  auto data = ppl::plate("data", 3);
  auto z = ppl::sample("z", d::Normal(torch::zeros({2}, torch::kDouble), w).to_event(1));
  auto k = ppl::sample("k", d::Categorical(torch::tensor({0.2, 0.3, 0.5}, torch::kDouble)));
  auto b = ppl::sample("b", d::Bernoulli(d::logits(torch::tensor(0.3, torch::kDouble))));
  ppl::sample("g", d::Gamma(2.0, 1.0));
  ppl::sample("y", d::RelaxedBernoulli(0.5, d::probs(0.3), true));
  ppl::observe("x", d::Normal(z.sum(-1), 1.0), torch::tensor({0.1, std::nan(""), 0.2}, torch::kDouble),
               {.mask = torch::tensor({true, false, true})});
  ppl::observe("never", d::Uniform(0.0, 1.0), torch::tensor(0.5));
  (void)k;
  (void)b;
}
}  // namespace

TEST_CASE("a trace saved as JSON and loaded gives the same values and log-probs bit for bit", "[trace][json]") {
  ppl::param_store().clear();
  auto tr = ppl::trace(ppl::handlers::seed(rich_model, 9));
  const auto text = tr.to_json().dump();
  auto back = ppl::Trace::from_json(nlohmann::json::parse(text));
  REQUIRE(back.size() == tr.size());
  for (size_t i = 0; i < tr.size(); ++i) {
    const auto& a = tr.sites()[i];
    const auto& b = back.sites()[i];
    INFO(a.name);
    CHECK(a.name == b.name);
    CHECK(a.kind == b.kind);
    CHECK(a.observed == b.observed);
    CHECK(a.reparameterised == b.reparameterised);
    CHECK(a.value.scalar_type() == b.value.scalar_type());
    CHECK(a.value.sizes() == b.value.sizes());
    // NaN compares unequal to itself: compare bits where the value is a number.
    auto av = a.value.detach(), bv = b.value.detach();
    if (torch::isFloatingType(av.scalar_type())) CHECK(torch::equal(av.nan_to_num(7.0), bv.nan_to_num(7.0)));
    else CHECK(torch::equal(av, bv));
    CHECK(torch::equal(a.log_prob().detach(), b.log_prob()));
    CHECK(a.location.line() == b.location.line());
    CHECK(a.location.file() == b.location.file());
    CHECK(a.location.function() == b.location.function());
    CHECK(a.plates.size() == b.plates.size());
    if (a.dist) {
      CHECK(a.dist->type_name() == b.dist->type_name());
      CHECK(a.dist->batch_shape() == b.dist->batch_shape());
      CHECK(a.dist->event_shape() == b.dist->event_shape());
    }
  }
  // The rebuilt distributions score values as the originals do.
  const auto& z = back.site("z");
  CHECK(torch::allclose(z.dist->log_prob(z.value), tr.site("z").dist->log_prob(tr.site("z").value).detach()));
  CHECK(back.site("x").mask.defined());
  CHECK(std::isnan(back.site("x").value[1].item<double>()));
}

TEST_CASE("trace JSON errors name the field", "[trace][json]") {
  CHECK_THROWS_WITH(ppl::Trace::from_json(nlohmann::json::object()), Catch::Contains("\"format\": \"ppl.trace\""));
  auto j = ppl::trace([] { ppl::sample("z", d::Normal(0.0, 1.0)); }).to_json();
  j["sites"][0]["value"]["shape"] = {2};
  CHECK_THROWS_WITH(ppl::Trace::from_json(j), Catch::Contains("site \"z\"") && Catch::Contains("needs 2 values"));
  j["sites"][0]["distribution"]["type"] = "Wobbly";
  CHECK_THROWS_WITH(ppl::Trace::from_json(j), Catch::Contains("unknown distribution type \"Wobbly\""));
}

TEST_CASE("trace JSON: malformed documents and shapes are ppl::Error, never a JSON or libtorch exception",
          "[trace][json]") {
  const auto good = ppl::trace([] { ppl::sample("z", d::Normal(0.0, 1.0)); }).to_json();
  auto bad = [&](auto edit, const std::string& fragment) {
    auto j = good;
    edit(j);
    CHECK_THROWS_AS(ppl::Trace::from_json(j), ppl::Error);
    CHECK_THROWS_WITH(ppl::Trace::from_json(j), Catch::Contains(fragment));
  };
  bad([](auto& j) { j["format"] = 5; }, "\"format\": \"ppl.trace\"");
  bad([](auto& j) { j["version"] = "one"; }, "version \"one\"");
  bad([](auto& j) { j["sites"] = 3; }, "\"sites\"");
  bad([](auto& j) { j["sites"][0] = 3; }, "site \"#0\"");
  bad([](auto& j) { j["sites"][0]["kind"] = 3; }, "site \"z\"");
  bad([](auto& j) { j["sites"][0]["value"] = {{"dtype", "float32"}, {"shape", {-1, -1}}, {"data", {1.0}}}; },
      "negative size");
  bad([](auto& j) {
        j["sites"][0]["value"] = {{"dtype", "float32"}, {"shape", {1LL << 40, 1LL << 40}}, {"data", {1.0}}};
      },
      "needs more values");
  // Parameters of shapes that do not broadcast: libtorch's error, as ppl::Error naming the site.
  bad([](auto& j) {
        j["sites"][0]["distribution"]["params"]["loc"] = {{"dtype", "float32"}, {"shape", {2}}, {"data", {0.0, 1.0}}};
        j["sites"][0]["distribution"]["params"]["scale"] = {{"dtype", "float32"}, {"shape", {3}}, {"data", {1, 1, 1}}};
      },
      "site \"z\"");
  // Found by fuzzing: numbers that are no whole numbers where sizes, counts
  // and line numbers belong (once converted out of range), and a random
  // site with neither a distribution nor a log_prob.
  bad([](auto& j) { j["sites"][0]["value"] = {{"dtype", "float32"}, {"shape", {1.5e58}}, {"data", {1.0}}}; },
      "a size in \"shape\" is 1.5e+58, but must be a whole number");
  bad([](auto& j) { j["sites"][0]["value"] = {{"dtype", "int64"}, {"shape", {1}}, {"data", {2.5}}}; },
      "a value of an integer tensor is 2.5");
  bad([](auto& j) { j["sites"][0]["distribution"]["event_dims"] = 1e300; }, "\"event_dims\" is 1e+300");
  bad([](auto& j) { j["sites"][0]["location"] = {{"file", "m.cpp"}, {"line", -3.5}}; }, "\"location.line\"");
  bad([](auto& j) { j["sites"][0]["plates"] = {{{"name", "p"}, {"size", 2.5}, {"dim", -1}}}; },
      "a plate's \"size\" is 2.5");
  bad(
      [](auto& j) {
        j["sites"][0]["distribution"] = nullptr;
        j["sites"][0].erase("log_prob");
      },
      "needs a distribution or a log_prob");
  // A float16 site without its log_prob, loaded on the CPU: libtorch 1.13 has no half kernels for
  // every density, and its refusal comes as ppl::Error naming the site.
  auto half = ppl::trace([] { ppl::sample("b", d::Bernoulli(torch::full({2}, 0.25))); }).to_json();
  half["sites"][0]["distribution"]["params"]["probs"]["dtype"] = "float16";
  half["sites"][0]["value"]["dtype"] = "float16";
  half["sites"][0].erase("log_prob");
  const auto loaded = ppl::Trace::from_json(half);
  try {
    (void)loaded.site("b").log_prob();
  } catch (const ppl::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("site \"b\""));
  }
}

TEST_CASE("format_shapes lists every site with its shapes", "[trace]") {
  ppl::param_store().clear();
  auto tr = ppl::trace(rich_model);
  const auto table = tr.format_shapes();
  CHECK(table.find("site") == 0);
  CHECK(table.find("z") != std::string::npos);
  CHECK(table.find("Normal") != std::string::npos);
  CHECK(table.find("[3, 2]") != std::string::npos);
  CHECK(table.find("data(3)@-1") != std::string::npos);
  CHECK(std::count(table.begin(), table.end(), '\n') == static_cast<long>(tr.size() + 1));
}

TEST_CASE("traces are ranges for range-v3 pipelines", "[trace]") {
  ppl::param_store().clear();
  auto tr = ppl::trace(rich_model);
  auto latent = tr.sites() | ranges::views::filter([](const ppl::Site& s) { return s.kind == ppl::SiteKind::sample; }) |
                ranges::views::transform([](const ppl::Site& s) { return s.name; }) | ranges::to<std::vector>();
  CHECK(latent == std::vector<std::string>{"z", "k", "b", "g", "y"});
  int observed = 0;
  for (const auto& s : tr) observed += s.observed;
  CHECK(observed == 2);
}
