// Constraints: membership (inside, outside, boundary and non-finite values),
// names and the JSON form.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <ppl/constraints.hpp>
#include <ppl/core/check.hpp>
#include <ppl/core/errors.hpp>

namespace c = ppl::constraints;

namespace {
torch::Tensor tv(std::vector<double> v) { return torch::tensor(v, torch::kDouble); }
torch::Tensor mat(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> r;
  for (auto& row : rows) r.push_back(tv(row));
  return torch::stack(r);
}
}  // namespace

TEST_CASE("constraints: membership of values inside, outside and on the boundary", "[constraints]") {
  struct Row {
    const char* what;
    c::Constraint constraint;
    torch::Tensor value;
    std::vector<bool> expected;  // one per event
  };
  const double inf = INFINITY, nan = NAN;
  const std::vector<Row> rows = {
      {"real", c::real, tv({-3, 0, 1e300, inf, -inf, nan}), {true, true, true, false, false, false}},
      {"boolean", c::boolean, tv({0, 1, 0.5, 2}), {true, true, false, false}},
      {"unit_interval", c::unit_interval, tv({0, 1, 0.3, -1e-9, 1.0000001}), {true, true, true, false, false}},
      {"positive", c::positive, tv({1e-300, 0, -1, inf}), {true, false, false, false}},
      {"nonnegative", c::nonnegative, tv({0, 2, -1e-12, inf}), {true, true, false, false}},
      {"greater_than(-1)", c::greater_than(-1.0), tv({-0.5, -1, -2, inf}), {true, false, false, false}},
      {"interval(0, 2)", c::interval(0.0, 2.0), tv({0, 2, 1, 2.5, nan}), {true, true, true, false, false}},
      {"integer_interval(0, 3)", c::integer_interval(0, 3), tv({0, 3, 1.5, 4, -1}), {true, true, false, false, false}},
      {"nonnegative_integer", c::nonnegative_integer, tv({0, 7, 1.5, -1, inf}), {true, true, false, false, false}},
      {"simplex", c::simplex, mat({{0.2, 0.8}, {0, 1}, {0.5, 0.6}, {-0.1, 1.1}}), {true, true, false, false}},
      {"ordered_vector", c::ordered_vector, mat({{-1, 0, 2}, {0, 0, 1}, {1, 0, 2}}), {true, false, false}},
      {"one_hot", c::one_hot, mat({{0, 1, 0}, {1, 1, 0}, {0, 0, 0}}), {true, false, false}},
      {"multinomial(3)", c::multinomial(torch::scalar_tensor(3.0)), mat({{1, 2, 0}, {1, 1, 0}, {4, -1, 0}}),
       {true, false, false}},
      {"lower_cholesky", c::lower_cholesky,
       torch::stack({mat({{1, 0}, {0.5, 2}}), mat({{1, 0.1}, {0.5, 2}}), mat({{1, 0}, {0.5, 0}})}), {true, false, false}},
      {"corr_cholesky", c::corr_cholesky,
       torch::stack({mat({{1, 0}, {0.6, 0.8}}), mat({{1, 0}, {0.6, 0.7}}), mat({{1, 0}, {-1, 0}})}), {true, false, false}},
      {"positive_definite", c::positive_definite,
       torch::stack({mat({{2, 0.5}, {0.5, 1}}), mat({{1, 2}, {2, 1}}), mat({{1, 0.5}, {0.4, 1}})}), {true, false, false}},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    const auto ok = row.constraint.check(row.value);
    REQUIRE(ok.numel() == static_cast<int64_t>(row.expected.size()));
    for (size_t i = 0; i < row.expected.size(); ++i) {
      INFO("element " << i);
      CHECK(ok[static_cast<int64_t>(i)].item<bool>() == row.expected[i]);
    }
  }
}

TEST_CASE("constraints: names, event ranks and JSON round trips, including bounds", "[constraints]") {
  const std::vector<c::Constraint> all = {
      c::real,          c::boolean,          c::unit_interval,  c::positive,          c::nonnegative,
      c::greater_than(0.5), c::interval(-1.0, 2.5), c::integer_interval(0, 9), c::nonnegative_integer,
      c::simplex,       c::lower_cholesky,   c::corr_cholesky,  c::positive_definite, c::ordered_vector,
      c::one_hot,       c::multinomial(torch::scalar_tensor(4.0))};
  for (const auto& k : all) {
    INFO(k.to_string());
    const auto back = c::Constraint::from_json(nlohmann::json::parse(k.to_json().dump()));
    CHECK(back == k);
    CHECK(back.to_string() == k.to_string());
  }
  CHECK(c::interval(0.0, 2.0).to_string() == "interval(0, 2)");
  CHECK(c::greater_than(-1.0).to_json() == nlohmann::json({{"name", "greater_than"}, {"lower", -1.0}}));
  CHECK(c::positive.to_json() == "positive");  // the names archives have always held
  CHECK(c::simplex.event_rank() == 1);
  CHECK(c::corr_cholesky.event_rank() == 2);
  CHECK(c::interval(0.0, 1.0) != c::interval(0.0, 2.0));
  CHECK(c::Constraint(ppl::ParamConstraint::unit_interval) == c::unit_interval);
  CHECK_THROWS_WITH(c::Constraint::from_json("wobbly"),
                    Catch::Contains("unknown constraint \"wobbly\" (expected one of real, boolean"));
  CHECK_THROWS_WITH(c::Constraint::from_json(nlohmann::json({{"name", "interval"}, {"lower", 0}})),
                    Catch::Contains("constraint \"interval\" has no \"upper\""));
}

TEST_CASE("constraints: check::satisfies names the first failing event", "[constraints]") {
  const ppl::CheckContext ctx{"Dirichlet"};
  CHECK_THROWS_WITH(ppl::check::satisfies(ctx, "value", mat({{0.2, 0.8}, {0.5, 0.6}}), c::simplex),
                    Catch::Contains("Dirichlet: value[1] is [0.5, 0.6], but must be in the simplex (nonnegative, "
                                    "summing to 1)"));
  CHECK_THROWS_WITH(ppl::check::satisfies(ctx, "value", tv({1, -2}), c::positive, " (the support)"),
                    Catch::Contains("value[1] is -2, but must be positive and finite (the support)"));
  CHECK_NOTHROW(ppl::check::satisfies(ctx, "value", tv({1, 2}), c::positive));
}
