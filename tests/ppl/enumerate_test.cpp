// Enumeration in the core: each finite family's enumerate_support, the
// enumeration handler's dims, Markov chains recycling them, and traces of
// enumerated sites through replay and JSON.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <ppl/ppl.hpp>

#include "test_util.hpp"

namespace d = ppl::dist;
namespace h = ppl::handlers;
using ppl::test::tv;

TEST_CASE("enumerate_support lists the support of each finite family along a leading dim", "[enumerate][dist]") {
  const auto p = tv({0.2, 0.5, 0.9});
  const auto b = d::Bernoulli(p).enumerate_support();
  CHECK(b.sizes() == c10::IntArrayRef({2, 1}));
  CHECK(torch::equal(b.flatten(), tv({0, 1})));
  CHECK(d::Bernoulli(p).enumerate_support(/*expand=*/true).sizes() == c10::IntArrayRef({2, 3}));

  const auto c = d::Categorical(torch::full({4, 3}, 1.0 / 3, torch::kDouble)).enumerate_support();
  CHECK(c.sizes() == c10::IntArrayRef({3, 1}));
  CHECK(c.scalar_type() == torch::kLong);
  CHECK(torch::equal(c.flatten(), torch::arange(3)));

  const auto o = d::OneHotCategorical(torch::full({2, 3}, 1.0 / 3, torch::kDouble)).enumerate_support(true);
  CHECK(o.sizes() == c10::IntArrayRef({3, 2, 3}));
  CHECK(torch::equal(o.select(1, 1), torch::eye(3, torch::kDouble)));

  CHECK(torch::equal(d::DiscreteUniform(2.0, 5.0).enumerate_support(), tv({2, 3, 4, 5}).to(torch::kFloat)));
  CHECK(torch::equal(d::Binomial(tv({3, 3}), tv({0.1, 0.7})).enumerate_support().flatten(), tv({0, 1, 2, 3})));

  // The support's values score to a total probability of one.
  const d::Binomial bin(3.0, 0.4);
  const auto lp = bin.log_prob(bin.enumerate_support());
  CHECK(lp.exp().sum().item<double>() == Approx(1.0).epsilon(1e-6));
  CHECK(d::Bernoulli(p).has_enumerate_support());
  CHECK_FALSE(d::Normal(0.0, 1.0).has_enumerate_support());
}

TEST_CASE("enumerate_support is an error for infinite supports, events and mixed batches", "[enumerate][dist]") {
  CHECK_THROWS_WITH(d::Normal(0.0, 1.0).enumerate_support(),
                    Catch::Contains("Normal: enumerate_support is not available") && Catch::Contains("not a finite set"));
  CHECK_THROWS_AS(d::Poisson(2.0).enumerate_support(), ppl::ArgumentError);
  CHECK_THROWS_WITH(d::Bernoulli(tv({0.2, 0.4})).to_event(1).enumerate_support(),
                    Catch::Contains("cartesian product"));
  CHECK_THROWS_WITH(d::Binomial(tv({2, 3}), 0.5).enumerate_support(),
                    Catch::Contains("one total_count for the whole batch") && Catch::Contains("from 2 to 3"));
  CHECK_THROWS_WITH(d::DiscreteUniform(tv({0, 1}), 4.0).enumerate_support(), Catch::Contains("one low"));
}

namespace {
const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

void mixture(const torch::Tensor& x) {
  auto data = ppl::plate("data", x.size(0));
  auto z = ppl::sample("z", d::Categorical(torch::tensor({0.3, 0.7}, kF64)), {.enumerate = true});
  auto y = ppl::sample("y", d::Bernoulli(0.5), {.enumerate = true});
  ppl::observe("x", d::Normal(torch::tensor({-1.0, 1.0}, kF64).index({z}) + y, 1.0), x);
}
}  // namespace

TEST_CASE("the enumeration handler lays each site's support along a dim of its own left of the plates",
          "[enumerate][handlers]") {
  const auto x = tv({0.1, -0.4, 2.0, 0.3});
  const auto t = ppl::trace(h::enumerate(mixture), x);
  const auto& z = t.site("z");
  CHECK(z.enumeration.dim == -2);
  CHECK(z.enumeration.first_dim == -2);
  CHECK(z.value.sizes() == c10::IntArrayRef({2, 1}));
  CHECK(torch::equal(z.value.flatten(), torch::arange(2)));
  CHECK(z.log_prob().sizes() == c10::IntArrayRef({2, 4}));
  const auto& y = t.site("y");
  CHECK(y.enumeration.dim == -3);
  CHECK(y.value.sizes() == c10::IntArrayRef({2, 1, 1}));
  const auto& obs = t.site("x");
  CHECK_FALSE(obs.enumeration.enumerated());
  CHECK(obs.enumeration.variable_at(-2) == z.enumeration.variable);
  CHECK(obs.enumeration.variable_at(-3) == y.enumeration.variable);
  CHECK(obs.log_prob().sizes() == c10::IntArrayRef({2, 2, 4}));
  CHECK_THAT(t.format_shapes(), Catch::Contains("sample enum@-2"));

  // Without enumeration the same sites are drawn.
  const auto plain = ppl::trace(mixture, x);
  CHECK(plain.site("z").value.sizes() == c10::IntArrayRef({4}));
  CHECK_FALSE(plain.site("z").enumeration.active());
}

TEST_CASE("a Markov chain recycles enumeration dims beyond its history", "[enumerate][markov]") {
  for (int history : {1, 2}) {
    auto chain = [history] {
      auto z = torch::zeros({}, torch::kLong);
      for (int64_t t : ppl::markov(7, {.history = history})) {
        const auto probs = torch::tensor({{0.9, 0.1}, {0.2, 0.8}}, kF64).index({z});
        z = ppl::sample(ppl::addr("z", t), d::Categorical(probs), {.enumerate = true});
        ppl::observe(ppl::addr("x", t), d::Normal(z.to(torch::kDouble), 1.0), torch::tensor(0.5, kF64));
      }
    };
    const auto t = ppl::trace(h::enumerate(chain, {.max_plate_nesting = 0}));
    for (int64_t s = 0; s < 7; ++s) {
      const auto& site = t.site(ppl::addr("z", s));
      INFO("history " << history << ", step " << s);
      CHECK(site.enumeration.dim == -1 - s % (history + 1));
      // Each step sees its own variable and those of `history` steps back.
      CHECK(static_cast<int64_t>(site.enumeration.visible.size()) == std::min<int64_t>(s, history) + 1);
    }
  }
}

TEST_CASE("enumeration rejects plates beyond max_plate_nesting, undeclared batch dims and infinite supports",
          "[enumerate][handlers]") {
  auto nested = [] {
    auto outer = ppl::plate("outer", 2);
    auto inner = ppl::plate("inner", 3);
    ppl::sample("z", d::Bernoulli(0.5), {.enumerate = true});
  };
  CHECK_THROWS_AS(ppl::trace(h::enumerate(nested)), ppl::ShapeError);
  CHECK_NOTHROW(ppl::trace(h::enumerate(nested, {.max_plate_nesting = 2})));

  auto undeclared = [] {
    ppl::sample("z", d::Bernoulli(0.5), {.enumerate = true});
    ppl::sample("w", d::Normal(torch::zeros({3, 2}, kF64), 1.0));
  };
  CHECK_THROWS_WITH(ppl::trace(h::enumerate(undeclared)),
                    Catch::Contains("site \"w\"") && Catch::Contains("declare a plate"));

  auto continuous = [] { ppl::sample("u", d::Normal(0.0, 1.0), {.enumerate = true}); };
  CHECK_THROWS_WITH(ppl::trace(h::enumerate(continuous)),
                    Catch::Contains("Normal: enumerate_support is not available") && Catch::Contains("site \"u\""));
}

TEST_CASE("a trace with enumerated sites round-trips through JSON and replays", "[enumerate][trace][json]") {
  const auto x = tv({0.1, -0.4, 2.0});
  const auto t = ppl::trace(h::enumerate(mixture), x);
  const auto back = ppl::Trace::from_json(nlohmann::json::parse(t.to_json().dump()));
  for (const auto& s : t) {
    const auto& r = back.site(s.name);
    CHECK(r.enumeration.first_dim == s.enumeration.first_dim);
    CHECK(r.enumeration.dim == s.enumeration.dim);
    CHECK(r.enumeration.variable == s.enumeration.variable);
    CHECK(r.enumeration.visible == s.enumeration.visible);
    CHECK(torch::equal(r.value, s.value));
    CHECK(torch::equal(r.log_prob(), s.log_prob()));
  }
  // Replaying the enumerated values checks them against the support (they
  // are the support) and passes them on.
  const auto again = ppl::trace(h::enumerate(h::replay(mixture, t)), x);
  CHECK(torch::equal(again.site("z").value, t.site("z").value));
  CHECK(torch::allclose(again.site("x").log_prob(), t.site("x").log_prob()));
}
