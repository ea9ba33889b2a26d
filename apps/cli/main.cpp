// The `ppl` command-line tool: one binary, subcommands registered by the
// *_command.cpp files beside this one.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <thread>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <fmt/format.h>
#include <torch/torch.h>

#include <ppl/config.hpp>
#include <ppl/runtime/device.hpp>

#include "commands.hpp"
#include "progress.hpp"

namespace ppl::cli {
std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace ppl::cli

namespace {
/// libtorch allocates CPU tensors with malloc. glibc serves blocks above its
/// mmap threshold with fresh mappings and unmaps them on free, so a training
/// loop pays page faults for the same large buffers at every step; keeping
/// them in the heap for reuse makes AIR's CPU training about 9 % faster.
/// The MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ environment variables
/// still win.
void keep_large_blocks() {
#if defined(__GLIBC__)
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 64 << 20);
  if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}
/// A whole number that fits 64 bits (CLI11 itself saturates or wraps:
/// "99999999999999999999" became INT64_MAX, "-1" 2^64 - 1 for an unsigned
/// option), written in decimal.
CLI::Validator whole_number(bool is_unsigned) {
  return CLI::Validator(
      [is_unsigned](std::string& text) -> std::string {
        const char* first = text.data();
        const char* last = first + text.size();
        std::from_chars_result r{};
        if (is_unsigned) {
          std::uint64_t v = 0;
          r = text.starts_with('-') ? std::from_chars_result{first, std::errc::invalid_argument}
                                    : std::from_chars(first + (text.starts_with('+') ? 1 : 0), last, v);
        } else {
          std::int64_t v = 0;
          r = std::from_chars(first, last, v);
        }
        if (r.ec == std::errc::result_out_of_range)
          return fmt::format("is {}, which does not fit in 64 bits", text);
        if (r.ec != std::errc() || r.ptr != last)
          return fmt::format("is \"{}\", but must be a whole number{}", text, is_unsigned ? " of at least 0" : "");
        return {};
      },
      "", "whole_number");
}

/// A finite decimal number (not inf or nan).
CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size()) return fmt::format("is \"{}\", but must be a number", text);
        if (!std::isfinite(v)) return fmt::format("is {}, but must be a finite number", text);
        return {};
      },
      "", "finite_number");
}

/// Every numeric option of `app` and its subcommands checked as written,
/// before CLI11 converts it.
void check_numbers(CLI::App& app) {
  for (auto* opt : app.get_options()) {
    const auto type = opt->get_type_name();
    const auto base = type.substr(0, type.find(':'));
    if (base == "INT" || base == "UINT") opt->check(whole_number(base == "UINT"));
    else if (base == "FLOAT") opt->check(finite_number());
  }
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; })) check_numbers(*sub);
}

/// " (rank R)" in a worker of a data-parallel group (WORLD_SIZE > 1), else "".
std::string rank_tag() {
  const char* world = std::getenv("WORLD_SIZE");
  const char* rank = std::getenv("RANK");
  if (!world || !rank || std::string(world) == "1") return {};
  return fmt::format(" (rank {})", rank);
}

/// `what` on one line.
std::string one_line(std::string what) {
  std::replace(what.begin(), what.end(), '\n', ' ');
  while (!what.empty() && what.back() == ' ') what.pop_back();
  return what;
}
}  // namespace

int main(int argc, char** argv) {
  ppl::runtime::rerun_with_runtime_defaults(argv);
  keep_large_blocks();
  CLI::App app{"ppl: probabilistic programming on libtorch"};
  app.require_subcommand(1);
  const auto blas = ppl::runtime::blas_core();
  const char* omp_wait = std::getenv("OMP_WAIT_POLICY");
  app.set_version_flag("--version", fmt::format("ppl {} (libtorch {}, {}, OMP_WAIT_POLICY={})", PPL_VERSION,
                                                TORCH_VERSION, blas.empty() ? "BLAS not OpenBLAS" : "OpenBLAS kernels " + blas,
                                                omp_wait ? omp_wait : "unset"));
  app.add_option_function<int>(
         "--threads",
         [](int n) {
           const int cores = std::max(1u, std::thread::hardware_concurrency());
           if (n < 1 || n > cores)
             throw CLI::ValidationError("--threads",
                                        fmt::format("is {}, but must be from 1 to the {} cores of this machine", n, cores));
           ppl::runtime::set_cpu_threads(n);
         },
         "threads for libtorch's CPU kernels and its BLAS (before the subcommand; default: libtorch's choice)")
      ->trigger_on_parse();
  auto& all = ppl::cli::commands();
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& command : all) command.add(app);
  check_numbers(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "ppl: error: " << one_line(e.what()) << " (see ppl --help)\n";
    return 2;
  } catch (const c10::Error& e) {
    // A libtorch check that the commands' own checks did not anticipate:
    // its message without the C++ stack trace.
    const std::string what = e.what_without_backtrace();
    std::cerr << "ppl: error" << rank_tag() << ": " << one_line(what.substr(0, what.find('\n'))) << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "ppl: error" << rank_tag() << ": " << one_line(e.what()) << "\n";
    return 2;
  }
  // Stopped by Ctrl-C (or SIGTERM) after saving: the shells' convention,
  // 128 + the signal (130 for Ctrl-C).
  return ppl::cli::interrupted() ? 128 + ppl::cli::interrupt_signal() : 0;
}
