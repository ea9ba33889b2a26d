#pragma once
/// The named learnable parameters of `ppl::param` and `ppl::module`.
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/types.h>

#include <ppl/core/message.hpp>

namespace ppl {

struct TensorArchive;

/// Named parameters, kept unconstrained (leaves that require grad) together
/// with their constraint. Thread-safe.
class ParamStore {
 public:
  /// The constrained value of `name`, creating it from `init` (already
  /// constrained; it is mapped to the unconstrained space) on first use.
  torch::Tensor get_or_create(const std::string& name, const torch::Tensor& init, ParamConstraint c);
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
  /// Reads parameters from an archive made by `to_archive`: existing tensors
  /// are updated in place (optimisers holding them stay valid), new names are
  /// added. Every name is checked first, so a bad archive changes nothing:
  /// throws ppl::Error naming `source` on a foreign kind or an unknown
  /// constraint, ShapeError on a shape that differs from the store's.
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
    ParamConstraint constraint = ParamConstraint::real;
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::string> order_;
};

/// The process-wide parameter store.
ParamStore& param_store();

/// Maps an unconstrained tensor to its constrained value and back.
torch::Tensor constrain(const torch::Tensor& unconstrained, ParamConstraint c);
torch::Tensor unconstrain(const torch::Tensor& constrained, ParamConstraint c);

}  // namespace ppl
