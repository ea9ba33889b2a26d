#pragma once
/// The objects a program infers in an image, as boxes with scores: what `ppl
/// eval boxes` compares with a scene's ground truth (GNM's Table 4).
#include <vector>

#include <torch/torch.h>

namespace ppl::programs {

/// An axis-aligned box in pixels (x across, y down) with a detection score.
struct ScoredBox {
  double x = 0, y = 0, width = 0, height = 0;  ///< top-left corner and size
  double score = 1;
};

/// What a program infers per object slot for images x [B, 1, H, W]: one box
/// per slot (a cell of a structure map, a GENESIS component), scored by how
/// surely the slot holds an object, and a feature row per slot (z_what, a
/// component latent) for the classification of Table 4.
struct InferredObjects {
  std::vector<std::vector<ScoredBox>> boxes;  ///< [B][slots]; the score ranks them for average precision
  torch::Tensor what;                         ///< [B, slots, features] float on the CPU (may be undefined)
};

/// The boxes of soft masks [B, K, H, W] (values in [0, 1]): per image and
/// component, the extent of the pixels whose mask exceeds `threshold` (the
/// smallest box holding them, pixel edges included), scored by the mask's
/// largest value inside that box; a component with no such pixel gives an
/// empty box of score 0. Throws ppl::ShapeError for another rank.
std::vector<std::vector<ScoredBox>> mask_boxes(const torch::Tensor& masks, double threshold = 0.5);

}  // namespace ppl::programs
