// ppl train --profile: the per-operator costs of a Chrome trace, and a recording of real operators.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "../../apps/cli/profile.hpp"

namespace {

const ppl::cli::OperatorCost& cost_of(const std::vector<ppl::cli::OperatorCost>& costs, const std::string& name) {
  for (const auto& c : costs)
    if (c.name == name) return c;
  FAIL("no operator " << name);
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("operator_costs: self time excludes enclosed operators, total counts nested calls once", "[profile]") {
  auto event = [](const char* name, double ts, double dur, int tid) {
    return nlohmann::json{{"name", name}, {"ph", "X"}, {"ts", ts}, {"dur", dur}, {"tid", tid}, {"pid", "CPU"}};
  };
  // Thread 1: a [0, 100] encloses b [10, 40], c [50, 60], b [70, 80]; d [200, 300] encloses d [210, 250].
  // Thread 2: a [5, 55], overlapping thread 1's a in time but not enclosing anything.
  const auto trace = nlohmann::json::array({event("b", 70, 10, 1), event("a", 0, 100, 1), event("b", 10, 30, 1),
                                            event("c", 50, 10, 1), event("d", 200, 100, 1), event("d", 210, 40, 1),
                                            event("a", 5, 50, 2), {{"name", "marker"}, {"ph", "i"}, {"ts", 1}}});
  const auto costs = ppl::cli::operator_costs(trace.dump());
  REQUIRE(costs.size() == 4);
  const auto& a = cost_of(costs, "a");
  CHECK(a.calls == 2);
  CHECK(a.self_us == Approx(100 - 30 - 10 - 10 + 50));
  CHECK(a.total_us == Approx(150));
  const auto& b = cost_of(costs, "b");
  CHECK(b.calls == 2);
  CHECK(b.self_us == Approx(40));
  CHECK(b.total_us == Approx(40));
  const auto& d = cost_of(costs, "d");
  CHECK(d.self_us == Approx(100));   // 60 outside the inner call + 40 inside it
  CHECK(d.total_us == Approx(100));  // the inner call lies within the outer one
  CHECK(cost_of(costs, "c").self_us == Approx(10));
  // Sorted by self time, largest first.
  CHECK(costs.front().name == "a");
  // The {"traceEvents": [...]} form reads the same.
  CHECK(ppl::cli::operator_costs(nlohmann::json{{"traceEvents", trace}}.dump()).size() == 4);
  const auto table = ppl::cli::format_operator_costs(costs, 2, 400, 2);
  CHECK_THAT(table, Catch::Contains("operator") && Catch::Contains("4 operators"));
}

TEST_CASE("StepProfiler records libtorch's operators, forward and backward, into a Chrome trace", "[profile]") {
  const auto path = std::filesystem::temp_directory_path() / "ppl_profile_test_trace.json";
  std::filesystem::remove(path);
  ppl::cli::StepProfiler profiler(path);
  CHECK_THROWS_WITH(profiler.stop(), Catch::Contains("without start"));
  profiler.start();
  CHECK(profiler.running());
  auto w = torch::randn({16, 8}, torch::requires_grad());
  auto x = torch::randn({4, 16});
  torch::mm(x, w).tanh().sum().backward();
  const auto costs = profiler.stop();
  CHECK_FALSE(profiler.running());
  REQUIRE(std::filesystem::exists(path));
  std::ifstream in(path);
  const auto trace = nlohmann::json::parse(in);
  CHECK(trace.is_array());
  CHECK(cost_of(costs, "aten::mm").calls >= 1);
  CHECK(cost_of(costs, "aten::tanh").calls == 1);
  CHECK(cost_of(costs, "aten::tanh_backward").calls == 1);
  for (const auto& c : costs) {
    CHECK(c.self_us >= 0);
    CHECK(c.self_us <= c.total_us + 1e-6);
  }
  std::filesystem::remove(path);
}
