#pragma once
/// `ppl train --profile`: libtorch's operator profiler around a window of
/// training steps, written as a Chrome trace and summarised per operator.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ppl::cli {

/// One operator's share of the profiled steps.
struct OperatorCost {
  std::string name;
  int64_t calls = 0;
  double self_us = 0;   ///< time in the operator itself, without the operators it called
  double total_us = 0;  ///< time between its start and end (nested calls of the same name counted once)
};

/// Self and total time per operator name, from a Chrome trace's complete
/// ("ph": "X") events: on each thread an event's self time is its duration
/// less that of the events it encloses. Sorted by self time, largest first.
std::vector<OperatorCost> operator_costs(const std::string& chrome_trace_json);

/// Records every libtorch operator (forward and backward) between start()
/// and stop(); stop() writes the Chrome trace to `path` atomically (open it
/// in chrome://tracing or Perfetto) and returns the per-operator costs.
class StepProfiler {
 public:
  explicit StepProfiler(std::filesystem::path path);
  ~StepProfiler();
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;
  void start();
  std::vector<OperatorCost> stop();
  bool running() const { return running_; }

 private:
  struct State;
  std::filesystem::path path_;
  std::unique_ptr<State> state_;
  bool running_ = false;
};

/// The table `ppl train --profile` prints: the `rows` costliest operators by
/// self time, per step, with their share of the profiled wall time.
std::string format_operator_costs(const std::vector<OperatorCost>& costs, int64_t steps, double wall_us, size_t rows = 20);

}  // namespace ppl::cli
