#pragma once
/// A terminal progress bar with rate and ETA, and Ctrl-C handling for long jobs.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace ppl::cli {

/// Draws `label [#####.....] 120/1000  12.3 it/s  ETA 01:13  <extra>` on
/// stderr, at most ten times a second, and a final line on `finish`. When
/// stderr is not a terminal it prints a plain line every ~5% instead, and
/// at least once a minute (`PPL_PROGRESS_SECONDS`) while the count moves.
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, int64_t start = 0);
  /// Sets the current count and the text after the bar (e.g. the loss).
  void update(int64_t done, const std::string& extra = {});
  /// Prints the final state and a newline.
  void finish(const std::string& extra = {});

 private:
  void draw(const std::string& extra, bool force);
  std::string label_;
  int64_t total_, start_, done_;
  std::chrono::steady_clock::time_point begin_, last_draw_;
  bool tty_;
  std::chrono::milliseconds log_interval_;
  int64_t last_percent_ = -1;
};

/// Installs a SIGINT / SIGTERM handler that sets a flag instead of killing
/// the process, so a training loop can save and exit cleanly; a second
/// Ctrl-C exits at once.
void install_interrupt_handler();
/// True once Ctrl-C (or SIGTERM) was received.
bool interrupted();
/// The first signal received (SIGINT or SIGTERM), 0 when none: the tool
/// exits with 128 + it after saving, as shells expect (130 for Ctrl-C).
int interrupt_signal();

}  // namespace ppl::cli
