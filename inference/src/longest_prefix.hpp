#pragma once
// Longest-prefix lookup shared by the objective's beta weights and pooled
// statistics and the optimiser's parameter groups.
#include <iterator>
#include <string>

namespace ppl::infer::detail {

/// The element of `entries` whose prefix (`prefix_of(entry)`) is the
/// longest that `name` starts with; the last of equal ones; null for none.
template <class Range, class Prefix>
auto longest_prefix(const std::string& name, const Range& entries, Prefix prefix_of) -> decltype(&*std::begin(entries)) {
  decltype(&*std::begin(entries)) best = nullptr;
  for (const auto& e : entries) {
    const std::string& p = prefix_of(e);
    if (name.compare(0, p.size(), p) == 0 && (!best || p.size() >= prefix_of(*best).size())) best = &e;
  }
  return best;
}

}  // namespace ppl::infer::detail
