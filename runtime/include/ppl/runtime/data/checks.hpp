#pragma once
/// The limits every reader of outside bytes holds a file to, and the checks
/// that apply them. A size a file declares (an IDX header's dimensions, a zip
/// entry's length, a .npy shape, a PNG's width and height) is checked against
/// what the file can hold and against a stated limit before anything is
/// allocated for it. Every failed check throws with one message form:
///
///     <file>: expected <what was expected>, found <what was found>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <ppl/runtime/data/dataset.hpp>

namespace ppl::runtime::data {

/// The most bytes of data one file (or zip entry) may declare: 1 GiB, above
/// every real data set's file (EMNIST byclass, the largest IDX set, holds
/// 548 MB of images). Decoded as float32 such a file takes four times this.
inline constexpr std::uint64_t kMaxDataBytes = std::uint64_t{1} << 30;

/// The most pixels one PNG image may declare: 2^26 (8192 x 8192), far above
/// Omniglot's 105 x 105.
inline constexpr std::uint64_t kMaxImagePixels = std::uint64_t{1} << 26;

/// deflate's largest compression ratio: a stream of n bytes inflates to at
/// most 1032 n bytes (zlib's technical details). A gzip file, zip entry or
/// PNG that declares more than its compressed length allows is damaged (or a
/// decompression bomb) and is refused before it is inflated.
inline constexpr std::uint64_t kMaxInflateRatio = 1032;

/// The message of every data error: "<where>: expected <expected>, found
/// <found>".
inline std::string expected_found(std::string_view where, std::string_view expected, std::string_view found) {
  return fmt::format("{}: expected {}, found {}", where, expected, found);
}

/// Throws `Error` (DataError unless given) with the message of expected_found.
template <class Error = DataError>
[[noreturn]] void fail(std::string_view where, std::string_view expected, std::string_view found) {
  throw Error(expected_found(where, expected, found));
}

/// The product of declared dimensions, checked on the way: throws `Error`
/// naming `where`, `what` and the dimensions when it exceeds `limit` (never
/// overflows). With a dimension of 0 the product is 0, but the other
/// dimensions must still multiply to at most `limit` (libtorch lays out even
/// an empty tensor by them).
template <class Error = DataError, class Range>
std::uint64_t declared_product(std::string_view where, std::string_view what, const Range& dims, std::uint64_t limit) {
  std::uint64_t product = 1;
  bool zero = false;
  for (auto d : dims) {
    const auto u = static_cast<std::uint64_t>(d);
    if (u == 0) {
      zero = true;
      continue;
    }
    if (product > limit / u)
      fail<Error>(where, fmt::format("{} of at most {} in all", what, limit),
                  fmt::format("dimensions [{}] (more than the limit)", fmt::join(dims, ", ")));
    product *= u;
  }
  return zero ? 0 : product;
}

/// Checks `declared` bytes of `what` against the file: at most `available`,
/// which `because` explains (e.g. "the 1200 bytes after the header"), and at
/// most kMaxDataBytes. Throws `Error` naming `where` otherwise.
template <class Error = DataError>
void check_declared_bytes(std::string_view where, std::string_view what, std::uint64_t declared,
                          std::uint64_t available, std::string_view because) {
  if (declared > kMaxDataBytes)
    fail<Error>(where, fmt::format("{} of at most {} bytes (the readers' limit)", what, kMaxDataBytes),
                fmt::format("{} bytes declared", declared));
  if (declared > available)
    fail<Error>(where, fmt::format("{} of at most {} bytes ({})", what, available, because),
                fmt::format("{} bytes declared (truncated or damaged file)", declared));
}

/// The most bytes `compressed` bytes of deflate data can inflate to.
inline std::uint64_t max_inflated(std::uint64_t compressed) {
  return compressed > kMaxDataBytes ? kMaxDataBytes * kMaxInflateRatio : compressed * kMaxInflateRatio;
}

}  // namespace ppl::runtime::data
