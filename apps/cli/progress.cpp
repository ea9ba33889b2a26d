#include "progress.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include <fmt/format.h>

namespace ppl::cli {

namespace {
std::atomic<int> g_interrupts{0};
std::atomic<int> g_signal{0};

void on_signal(int signal) {
  int none = 0;
  g_signal.compare_exchange_strong(none, signal);
  if (g_interrupts.fetch_add(1) >= 1) std::_Exit(128 + signal);
}

std::string clock(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const auto s = static_cast<int64_t>(seconds);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{:02}:{:02}", s / 60, s % 60);
}
/// PPL_PROGRESS_SECONDS: the longest gap between two progress lines when
/// stderr is not a terminal (default 60 s).
std::chrono::milliseconds log_interval() {
  const char* text = std::getenv("PPL_PROGRESS_SECONDS");
  if (!text || !*text) return std::chrono::seconds(60);
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  if (*end != '\0' || !(seconds >= 0) || seconds > 1e6) {
    std::fprintf(stderr, "ppl: PPL_PROGRESS_SECONDS is \"%s\", but must be a number of seconds in [0, 1e6]; using 60\n",
                 text);
    return std::chrono::seconds(60);
  }
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}
}  // namespace

void install_interrupt_handler() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

bool interrupted() { return g_interrupts.load() > 0; }

int interrupt_signal() { return g_signal.load(); }

ProgressBar::ProgressBar(std::string label, int64_t total, int64_t start)
    : label_(std::move(label)),
      total_(total),
      start_(start),
      done_(start),
      begin_(std::chrono::steady_clock::now()),
      last_draw_(begin_ - std::chrono::seconds(1)),
      tty_(::isatty(STDERR_FILENO) != 0),
      log_interval_([] {
        static const auto interval = log_interval();  // read (and complained about) once
        return interval;
      }()) {}

void ProgressBar::update(int64_t done, const std::string& extra) {
  done_ = done;
  draw(extra, false);
}

void ProgressBar::finish(const std::string& extra) {
  if (tty_ || last_percent_ != (total_ > 0 ? done_ * 100 / total_ : 100)) draw(extra, true);
  if (tty_) std::fputc('\n', stderr);
  std::fflush(stderr);
}

void ProgressBar::draw(const std::string& extra, bool force) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - begin_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_ - start_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1.0;
  const int64_t percent = total_ > 0 ? done_ * 100 / total_ : 100;
  if (tty_) {
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    const int width = 30;
    const int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : width;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld  %.2f it/s  ETA %s  %s\033[K", label_.c_str(), bar.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), rate, clock(eta).c_str(), extra.c_str());
  } else {
    // A line every 5 %, and at least every `log_interval_` so that a long
    // job's log (a training run of 200,000 steps) shows it is alive.
    if (!force && percent / 5 == last_percent_ / 5 && now - last_draw_ < log_interval_) return;
    last_percent_ = percent;
    std::fprintf(stderr, "%s %lld/%lld (%lld%%)  %.2f it/s  ETA %s  %s\n", label_.c_str(), static_cast<long long>(done_),
                 static_cast<long long>(total_), static_cast<long long>(percent), rate, clock(eta).c_str(), extra.c_str());
  }
  last_draw_ = now;
  std::fflush(stderr);
}

}  // namespace ppl::cli
