#pragma once
/// Exceptions thrown by the eDSL, and the source location of a site.
#include <memory>
#include <source_location>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace ppl {

/// Base of every error the library raises for a user's mistake.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A parameter or value that is out of its domain (negative scale, value
/// outside the support, ...).
class ArgumentError : public Error {
 public:
  using Error::Error;
};

/// Shapes that do not agree: plate sizes, replayed values, event shapes.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// Site bookkeeping: duplicate names, unknown names, unpaired sites.
class SiteError : public Error {
 public:
  using Error::Error;
};

/// Where a site was declared in the user's program. The strings are views of
/// the compiler's static strings, or of storage the location shares when it
/// was read back from JSON, so that copying a location (every recorded site
/// does) allocates nothing.
class SourceLocation {
 public:
  SourceLocation() = default;
  /// From the `std::source_location` captured by `ppl::sample` and friends.
  static SourceLocation from(const std::source_location& loc);
  /// A location that owns copies of its strings (for traces read from JSON).
  static SourceLocation owning(std::string file, int line, std::string function);

  std::string_view file() const { return file_; }  ///< as the compiler spelled it
  int line() const { return line_; }
  std::string_view function() const { return function_; }
  /// "model.cpp:41" (file name without directories), or "" when unknown.
  std::string short_string() const;

 private:
  std::string_view file_, function_;
  int line_ = 0;
  std::shared_ptr<const std::pair<std::string, std::string>> storage_;  ///< set by `owning`
};

/// How error messages name a site: `site "z" (model.cpp:41)`, or `site "z"`
/// when its location is unknown.
std::string describe_site(std::string_view name, const SourceLocation& location);
/// The same for anything with a `name` and a `location` (a trace's `Site`, a
/// handler's `Message`).
template <class S>
  requires requires(const S& s) {
    s.name;
    s.location;
  }
std::string describe_site(const S& s) {
  return describe_site(s.name, s.location);
}

/// What a check reports on: the function or distribution doing the check and,
/// when it runs for a site, the site's name and location.
struct CheckContext {
  std::string_view function;
  std::string_view site{};
  const SourceLocation* location = nullptr;

  /// " (site \"z\", model.cpp:41)", " (model.cpp:41)" or "".
  std::string suffix() const;
};

}  // namespace ppl
