#pragma once
/// The named learnable parameters of `ppl::param` and `ppl::module`.
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/types.h>

#include <ppl/constraints.hpp>
#include <ppl/core/errors.hpp>

namespace ppl::transforms {
class Transform;
}

namespace ppl {

struct TensorArchive;

/// Named parameters, kept unconstrained (leaves that require grad) together
/// with their constraint: the value is `biject_to(constraint)` of the leaf.
/// Thread-safe.
class ParamStore {
 public:
  /// The constrained value of `name`, creating it from `init` (already
  /// constrained; it is mapped to the unconstrained space) on first use.
  /// Throws ArgumentError when `init` is outside `c` or on its boundary
  /// (where the unconstrained value is infinite), and, when `name` exists,
  /// ArgumentError for another constraint and ShapeError for an `init` of
  /// another shape, naming both and where each came from.
  torch::Tensor get_or_create(const std::string& name, const torch::Tensor& init, const constraints::Constraint& c,
                              const SourceLocation& location = {});
  /// Binds `tensor` (a module's parameter) as `name`. When the store already
  /// holds a value for `name` (e.g. after `load`), it is copied into `tensor`.
  /// Throws ShapeError when the shapes differ.
  void bind(const std::string& name, torch::Tensor tensor);

  /// The constrained value of `name`; throws SiteError when absent.
  torch::Tensor at(const std::string& name) const;
  /// The unconstrained leaf tensor of `name` (what optimisers update).
  torch::Tensor unconstrained(const std::string& name) const;
  bool contains(const std::string& name) const;
  /// Names in creation order.
  std::vector<std::string> names() const;
  /// The unconstrained leaves of the given names (all when empty).
  std::vector<torch::Tensor> parameters(const std::vector<std::string>& names = {}) const;
  size_t size() const;
  void clear();

  /// A copy of every parameter, unconstrained and in creation order, as an
  /// in-memory archive (kind "ppl.param_store", the constraints in its
  /// metadata).
  TensorArchive to_archive() const;
  /// The constraint of `name`; throws SiteError when absent.
  constraints::Constraint constraint(const std::string& name) const;

  /// Reads parameters from an archive made by `to_archive` (constraints by
  /// name, or with their bounds as {"name", "lower", "upper"}): existing
  /// tensors are updated in place (optimisers holding them stay valid), new
  /// names are added. Every name is checked first, so a bad archive changes
  /// nothing: throws ppl::Error naming `source` on a foreign kind or an
  /// unknown constraint, ShapeError on a shape that differs from the store's.
  void load(const TensorArchive& archive, const std::string& source);

  /// Writes every parameter to `path` atomically (a temporary file, then a
  /// rename), in the tensor archive format of ppl/core/archive.hpp.
  void save(const std::filesystem::path& path) const;
  /// Reads parameters from `path` as `load(archive, source)` does. Throws
  /// ppl::Error naming the file on a missing, truncated or foreign file.
  void load(const std::filesystem::path& path);

 private:
  struct Entry {
    torch::Tensor unconstrained;
    constraints::Constraint constraint;
    std::shared_ptr<const transforms::Transform> transform;  ///< biject_to(constraint); null for real
    std::string origin;  ///< where it was created: "model.cpp:12", "loaded from run/params.bin"
  };
  static Entry make_entry(torch::Tensor unconstrained, const constraints::Constraint& c, std::string origin);
  static torch::Tensor value_of(const Entry& e);
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::string> order_;
};

/// The process-wide parameter store.
ParamStore& param_store();

/// Maps an unconstrained tensor to its constrained value and back
/// (`ppl::transforms::biject_to(c)` and its inverse).
torch::Tensor constrain(const torch::Tensor& unconstrained, const constraints::Constraint& c);
torch::Tensor unconstrain(const torch::Tensor& constrained, const constraints::Constraint& c);

}  // namespace ppl
