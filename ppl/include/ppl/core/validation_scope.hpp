#pragma once
/// Argument validation on the calling thread only (see `ppl::set_validation`
/// in ppl/core/check.hpp for the whole process).

namespace ppl {

/// Turns argument validation on or off on the calling thread while it
/// lives, whatever `set_validation` says: `validation_enabled()` on this
/// thread returns `enabled`. Scopes nest. (MCMC turns validation off inside
/// its transitions, where every value lies in its support by construction
/// and a non-finite density is rejected anyway.)
class [[nodiscard]] ValidationScope {
 public:
  explicit ValidationScope(bool enabled) noexcept;
  ~ValidationScope();
  ValidationScope(const ValidationScope&) = delete;
  ValidationScope& operator=(const ValidationScope&) = delete;

 private:
  int previous_;
};

}  // namespace ppl
