#pragma once
/// Plates: conditionally independent batch dimensions.
#include <concepts>
#include <optional>
#include <string>

#include <torch/types.h>

#include <ppl/core/handler.hpp>

namespace ppl {

/// Options of `ppl::plate`.
struct PlateOptions {
  /// Batch dimension (negative); by default the next free one from the right.
  std::optional<int64_t> dim{};
  /// Use a random subset of this size; sites are scaled by size / subsample_size.
  std::optional<int64_t> subsample_size{};
};

/// A plate is an RAII scope: sites declared while it lives are independent
/// along `dim`, their distributions are broadcast to the plate's size there,
/// and a batch shape that disagrees is a ShapeError naming the site and dim.
class [[nodiscard]] Plate : public Handler {
 public:
  Plate(std::string name, int64_t size, PlateOptions options = {});
  ~Plate() override;
  Plate(const Plate&) = delete;
  Plate& operator=(const Plate&) = delete;

  const std::string& name() const { return frame_.name; }
  int64_t size() const { return frame_.size; }
  int64_t subsample_size() const { return frame_.subsample_size; }
  int64_t dim() const { return frame_.dim; }
  /// The indices used: arange(size) or a random subset.
  const torch::Tensor& indices() const { return indices_; }

  void process(Message& msg) override;

 private:
  PlateFrame frame_;
  torch::Tensor indices_;
  HandlerScope scope_;
};

/// `auto data = ppl::plate("data", x.size(0));` The plate lives as long as
/// the variable: `ppl::plate("data", n);` on its own would end at the
/// semicolon, and is a compiler warning.
[[nodiscard]] inline Plate plate(std::string name, int64_t size, PlateOptions options = {}) {
  return Plate(std::move(name), size, options);
}

/// `ppl::plate("data", n, [&](const ppl::Plate& p) { ... })`: runs the body
/// inside the plate and returns what it returns.
template <class F>
  requires std::invocable<F&, const Plate&>
decltype(auto) plate(std::string name, int64_t size, PlateOptions options, F&& body) {
  Plate p(std::move(name), size, options);
  return body(static_cast<const Plate&>(p));
}
template <class F>
  requires std::invocable<F&, const Plate&>
decltype(auto) plate(std::string name, int64_t size, F&& body) {
  return plate(std::move(name), size, PlateOptions{}, std::forward<F>(body));
}

}  // namespace ppl
