#pragma once
/// Boxes and average precision (Table 4): IoU, AP, the boxes GNM infers or
/// samples, and the z_what features of its objects matched to ground truth.
#include <vector>

#include <torch/torch.h>

#include <ppl/programs/gnm/gnm.hpp>
#include <ppl/programs/objects.hpp>
#include <ppl/runtime/data/scenes.hpp>

namespace ppl::programs::gnm {

/// Boxes are the programs' common ScoredBox (<ppl/programs/objects.hpp>).
using ppl::programs::ScoredBox;

/// Intersection over union of two boxes (0 when either is empty).
double box_iou(const ScoredBox& a, const ScoredBox& b);

/// Average precision of detections against ground truth at one IoU
/// threshold, over all images together (the PASCAL VOC / COCO definition):
/// detections sorted by score, each matched greedily to the unmatched truth
/// box of highest IoU in its image when that IoU is at least `iou`, then the
/// area under the precision-recall curve with precision made monotone
/// (all-point interpolation). 0 when there are no truth boxes. Throws
/// std::invalid_argument when the two lists differ in length or iou is
/// outside (0, 1].
double average_precision(const std::vector<std::vector<ScoredBox>>& detections,
                         const std::vector<std::vector<ScoredBox>>& truth, double iou);

/// The mean of average_precision over IoU thresholds 0.50, 0.55, ..., 0.95
/// (COCO's AP 0.5:0.95).
double average_precision_coco(const std::vector<std::vector<ScoredBox>>& detections,
                              const std::vector<std::vector<ScoredBox>>& truth);

/// What GNM's guide infers per cell for images x [B, 1, H, W], from one
/// pass of the encoder: for every cell of the structure map, the box of the
/// mean of q(z_where | x) (where_to_runtime in pixels) scored by
/// q(z_pres = 1 | x), and the mean of q(z_what | x).
/// (Gnm::infer_objects; the boxes [B][S * S], the rows [B, S * S, z_what_size].)
using GnmObjects = InferredObjects;
GnmObjects gnm_objects(Gnm& program, const torch::Tensor& x);

/// The boxes of structure latents z (e.g. of Gnm::sample_structured): for
/// each image, one box per cell with z_pres > 1/2, placed by its z_where as
/// `render` places the object, scored by z_pres (Fig. 3's boxes).
std::vector<std::vector<ScoredBox>> latent_boxes(const Gnm& program, const StructureLatents& z);

/// The boxes of gnm_objects alone.
std::vector<std::vector<ScoredBox>> gnm_boxes(Gnm& program, const torch::Tensor& x);

/// The z_what of GNM's objects matched to ground truth, for Table 4's
/// classification accuracy: for every object of `scenes`, the cell with
/// q(z_pres | x) > 1/2 whose box (in `objects`) overlaps the object most, if
/// that IoU is at least `iou`; the overlap is the larger IoU with the
/// object's ink box (SceneObject::ink) and with its frame (the square its
/// glyph was drawn into), so a box of either convention identifies the cell; its mean of q(z_what | x) is
/// a feature row and the object's class its label.
struct WhatFeatures {
  torch::Tensor features;  ///< [M, z_what_size] float
  torch::Tensor labels;    ///< [M] int64
  int64_t objects = 0;     ///< ground-truth objects seen (M of them matched)
};
/// `objects` are gnm_objects (or any program's infer_objects) of the images
/// of `scenes` (same order). Throws
/// std::invalid_argument when their numbers differ.
WhatFeatures gnm_what_features(const GnmObjects& objects, const std::vector<runtime::data::Scene>& scenes,
                               double iou = 0.5);

/// Table 4's z_what accuracy: a 2-layer MLP (linear to 64, ReLU, linear to
/// 10 classes; Adam lr 1e-2, 300 full-batch steps, fixed seed) trained on
/// the first half of the rows and tested on the second. Returns the test
/// accuracy. Throws std::invalid_argument for fewer than 4 rows or
/// mismatched features and labels.
double what_classification_accuracy(const torch::Tensor& features, const torch::Tensor& labels);

/// Which ground-truth box of a scene object: its ink box (SceneObject::ink)
/// or its frame, the square its whole 28 x 28 glyph was scaled into.
enum class SceneBox { ink, frame };
/// The ground-truth boxes of generated scenes, one convention for all.
std::vector<std::vector<ScoredBox>> scene_boxes(const std::vector<runtime::data::Scene>& scenes,
                                                SceneBox which = SceneBox::ink);

}  // namespace ppl::programs::gnm
