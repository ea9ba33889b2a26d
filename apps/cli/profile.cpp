// `ppl train --profile`: the operator profiler and its per-operator table.
#include "profile.hpp"

#include <algorithm>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/core/errors.hpp>

namespace ppl::cli {

std::vector<OperatorCost> operator_costs(const std::string& chrome_trace_json) {
  const auto trace = nlohmann::json::parse(chrome_trace_json);
  const auto& events = trace.is_object() && trace.contains("traceEvents") ? trace["traceEvents"] : trace;
  struct Span {
    std::string name;
    double begin, end, self;
    bool outermost;  ///< no enclosing span of the same name
  };
  std::map<std::string, std::vector<Span>> by_thread;
  for (const auto& e : events) {
    if (!e.is_object() || e.value("ph", "") != "X" || !e.contains("dur")) continue;
    const double ts = e.at("ts").get<double>(), dur = e.at("dur").get<double>();
    const auto tid = e.contains("tid") ? e["tid"].dump() : std::string();
    by_thread[tid].push_back({e.at("name").get<std::string>(), ts, ts + dur, dur, true});
  }
  std::map<std::string, OperatorCost> costs;
  for (auto& [tid, spans] : by_thread) {
    // Enclosing spans first: by start, then by length.
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
    });
    std::vector<Span*> open;
    std::map<std::string, int> open_names;
    for (auto& s : spans) {
      while (!open.empty() && s.begin >= open.back()->end) {
        --open_names[open.back()->name];
        open.pop_back();
      }
      if (!open.empty()) open.back()->self -= s.end - s.begin;
      s.outermost = open_names[s.name] == 0;
      ++open_names[s.name];
      open.push_back(&s);
    }
    for (const auto& s : spans) {
      auto& c = costs[s.name];
      c.name = s.name;
      ++c.calls;
      c.self_us += std::max(s.self, 0.0);
      if (s.outermost) c.total_us += s.end - s.begin;
    }
  }
  std::vector<OperatorCost> out;
  out.reserve(costs.size());
  for (auto& [name, c] : costs) out.push_back(std::move(c));
  std::sort(out.begin(), out.end(), [](const OperatorCost& a, const OperatorCost& b) {
    return a.self_us != b.self_us ? a.self_us > b.self_us : a.name < b.name;
  });
  return out;
}

struct StepProfiler::State {
  std::ostringstream trace;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> recording;
};

StepProfiler::StepProfiler(std::filesystem::path path) : path_(std::move(path)), state_(std::make_unique<State>()) {}

StepProfiler::~StepProfiler() = default;

void StepProfiler::start() {
  if (running_) throw Error("profiler: start() while already recording");
  state_->trace.str({});
  state_->recording = std::make_unique<torch::autograd::profiler::RecordProfile>(state_->trace);
  running_ = true;
}

std::vector<OperatorCost> StepProfiler::stop() {
  if (!running_) throw Error("profiler: stop() without start()");
  state_->recording.reset();  // writes the trace
  running_ = false;
  const auto json = state_->trace.str();
  write_atomic(path_, json);
  return operator_costs(json);
}

std::string format_operator_costs(const std::vector<OperatorCost>& costs, int64_t steps, double wall_us, size_t rows) {
  const double per_step = 1e-3 / static_cast<double>(std::max<int64_t>(steps, 1));
  double self_sum = 0;
  for (const auto& c : costs) self_sum += c.self_us;
  std::string out = fmt::format("{:<44} {:>9} {:>12} {:>12} {:>7}\n", "operator", "calls/step", "self ms/step",
                                "total ms/step", "self %");
  for (size_t i = 0; i < std::min(rows, costs.size()); ++i) {
    const auto& c = costs[i];
    out += fmt::format("{:<44} {:>9.1f} {:>12.2f} {:>12.2f} {:>6.1f}%\n", c.name.substr(0, 44),
                       static_cast<double>(c.calls) / static_cast<double>(std::max<int64_t>(steps, 1)),
                       c.self_us * per_step, c.total_us * per_step, wall_us > 0 ? 100.0 * c.self_us / wall_us : 0.0);
  }
  out += fmt::format("{} operators; inside them {:.1f} ms of a step's {:.1f} ms (the rest: the program's own C++, "
                     "the trace and the optimiser outside libtorch's operators)\n",
                     costs.size(), self_sum * per_step, wall_us * per_step);
  return out;
}

}  // namespace ppl::cli
