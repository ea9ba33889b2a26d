#pragma once
/// Resizing and splitting of image datasets (seed 000, Appendix A: every
/// image at 50 x 50 grayscale in [0, 1]).
#include <cstdint>

#include <torch/types.h>

#include <ppl/runtime/data/dataset.hpp>

namespace ppl::runtime::data {

/// How resize_images resamples.
enum class ResizeMode {
  automatic,  ///< area when shrinking an axis, bilinear when enlarging it
  area,       ///< exact box filter: each output pixel averages the input area it covers
  bilinear,   ///< bilinear interpolation (pixel centres, align_corners = false)
};

/// Resizes images [..., H, W] to [..., height, width]. Area resampling keeps
/// the mean intensity exactly, so a stroke's mass scales by the area ratio
/// (height * width) / (H * W). The result is float32 clamped to [0, 1] when
/// the input lies there. Differentiable. Throws std::invalid_argument for a
/// rank below 2, a non-positive size, images of 0 rows or columns, or sizes
/// whose resampling matrices ([height, H], [width, W]) would hold more than
/// 2^24 entries.
torch::Tensor resize_images(const torch::Tensor& images, std::int64_t height, std::int64_t width,
                            ResizeMode mode = ResizeMode::automatic);

/// The dataset with its images resized to size x size (the default 50 x 50 of
/// seed 000). Throws as resize_images does.
Dataset resize_dataset(const Dataset& dataset, std::int64_t size = 50, ResizeMode mode = ResizeMode::automatic);

/// A fixed per-class split for data that ships without one: within each class
/// (in file order) the first `train_fraction` of the items go to train, the
/// rest to test. Split::all returns the dataset unchanged. Throws
/// std::invalid_argument for a fraction outside (0, 1).
Dataset split_per_class(const Dataset& dataset, Split split, double train_fraction);

}  // namespace ppl::runtime::data
