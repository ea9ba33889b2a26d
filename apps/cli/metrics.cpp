#include "metrics.hpp"

#include <fstream>
#include <string>

#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>

namespace ppl::cli {

std::vector<nlohmann::json> kept_metrics(const std::filesystem::path& path, int64_t step, bool rewrite) {
  std::vector<nlohmann::json> kept;
  std::ifstream in(path);
  if (!in) return kept;
  std::string line, text;
  int64_t number = 0;
  bool dropped = false;
  while (std::getline(in, line)) {
    ++number;
    auto j = nlohmann::json::parse(line, nullptr, false);
    const bool valid = j.is_object() && j.contains("step") && j["step"].is_number_integer();
    if (!valid) {
      if (rewrite)
        fmt::print(stderr, "train: warning: {} line {} is not a metrics record; dropped\n", path.string(), number);
      dropped = true;
      continue;
    }
    if (j["step"].get<int64_t>() > step) {
      dropped = true;
      continue;
    }
    text += line + "\n";
    kept.push_back(std::move(j));
  }
  if (dropped && rewrite) write_atomic(path, text);
  return kept;
}

std::optional<double> trained_seconds(const std::vector<nlohmann::json>& records) {
  double base = 0, previous = 0, total = 0;
  bool any = false;
  for (const auto& r : records) {
    if (!r.contains("elapsed") || !r["elapsed"].is_number()) continue;
    any = true;
    const double elapsed = r["elapsed"].get<double>();
    if (r.contains("train_seconds") && r["train_seconds"].is_number()) {
      total = r["train_seconds"].get<double>();
      base = total - elapsed;
    } else {
      if (elapsed < previous) base = total;  // a new segment
      total = base + elapsed;
    }
    previous = elapsed;
  }
  if (!any) return std::nullopt;
  return total;
}

std::optional<double> released_train_seconds(const nlohmann::json& metadata) {
  if (!metadata.contains("released")) return std::nullopt;
  const auto& r = metadata["released"];
  if (!r.is_object() || !r.contains("train_seconds") || !r["train_seconds"].is_number()) return std::nullopt;
  return r["train_seconds"].get<double>();
}

}  // namespace ppl::cli
