#pragma once
/// The scene-structure evaluations of GNM and its baselines (Jiang & Ahn
/// 2020, section 4, Table 1), made automatic.
///
/// S-Acc, scene structure accuracy: the paper classified 250 generated
/// images per model by hand into success or failure of the dataset's
/// structure rules, an unrecognisable digit counting as a failure. Here a
/// scene reader does it: threshold, 8-connected components, and a digit
/// classifier on each component's normalised crop give the digits (class
/// and centre), and the runtime's structure checker (check_mnist4,
/// check_mnist10, check_mnist4_10) decides.
///
/// D-Steps, discriminability: the number of optimisation steps a fixed
/// binary CNN needs to separate a model's generated images from real ones
/// with 90 % held-out accuracy. Higher is better.
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <ppl/programs/gnm/gnm.hpp>
#include <ppl/runtime/data/dataset.hpp>
#include <ppl/runtime/data/scenes.hpp>

namespace ppl::programs::gnm {

// ---------------------------------------------------------------------------
// The digit classifier

/// Side of the classifier's input and of the box a digit is scaled into (the
/// MNIST convention: a 20 x 20 box centred in 28 x 28).
inline constexpr int64_t kDigitInput = 28, kDigitBox = 20;

/// The version of the classifier's architecture, training and normalisation;
/// cached weights are keyed by it, so changing any of them must change it.
inline constexpr const char* kDigitClassifierVersion = "digit-cnn-v4";

/// Normalises digit crops for the classifier: the bounding box of the pixels
/// above `threshold`, padded to a square (centred), resized to 20 x 20 and
/// centred in 28 x 28, intensities divided by the crop's maximum. `crops`
/// [B, h, w] (or [h, w]) in [0, 1]; returns [B, 1, 28, 28] (or [1, 1, 28, 28]).
/// A crop with no pixel above the threshold gives a blank image. The same
/// function normalises training digits and crops read from scenes. Throws
/// std::invalid_argument for a rank other than 2 or 3.
torch::Tensor normalise_digits(const torch::Tensor& crops, double threshold = 0.25);

/// The classifier of S-Acc: conv(1 -> 32, 3 x 3) - ReLU - max-pool 2 -
/// conv(32 -> 64, 3 x 3) - ReLU - max-pool 2 - linear(64 * 7 * 7 -> 128) -
/// ReLU - dropout(0.3, training only) - linear(128 -> 10), on normalised
/// digits [B, 1, 28, 28].
struct DigitClassifierImpl : torch::nn::Module {
  DigitClassifierImpl();
  /// Class logits [B, 10].
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(DigitClassifier);

/// A trained classifier and how it was obtained.
struct TrainedClassifier {
  DigitClassifier net{nullptr};
  double held_out_accuracy = 0;  ///< on the held-out digits, normalised as for training
  int64_t train_digits = 0, held_out_digits = 0;
  bool from_cache = false;
  std::filesystem::path cache_file;  ///< empty when not cached
  double train_seconds = 0;          ///< 0 when loaded from the cache
};

/// Trains the classifier, with its optimiser fixed here: Adam (lr 1e-3, then
/// 3e-4 for the last 5 epochs), batches of 64, 20 epochs over `train`
/// (digits [N, h, w] in [0, 1], labels 0-9), dropout 0.3 before the last
/// layer. Each epoch sees every digit once, shrunk to a random side between
/// 10 and 28 pixels (kept whole with probability 0.3: scenes show digits at
/// such sizes) and normalised; each batch is moved by a small random affine
/// map (rotation up to 12 degrees, scale 0.9-1.1, shift up to 1.4 pixels).
/// Seeded, so one machine trains the same weights every time (another CPU's
/// arithmetic may give slightly different ones); the global torch generator
/// is left as it was.
/// Reports the accuracy on `held_out` (normalised at full size). Throws
/// std::invalid_argument for empty or malformed datasets.
TrainedClassifier train_digit_classifier(const runtime::data::Dataset& train, const runtime::data::Dataset& held_out);

/// Where load_digit_classifier caches the classifier trained on `train`
/// and `held_out` digits under the cache folder `cache`.
std::filesystem::path digit_classifier_file(const std::filesystem::path& cache, int64_t train, int64_t held_out);

/// The classifier trained on the train split of the `mnist` digits and
/// tested on their test split, loaded from
/// digit_classifier_file (`<cache>/gnm_eval/<version>-<train>-<test>.pt`)
/// when that file exists and loads, else trained and written there
/// atomically. `cache` empty: never cached. Throws runtime::data::DataError when the digits are absent
/// and ppl::Error when the cache file cannot be written or read.
TrainedClassifier load_digit_classifier(const runtime::data::Dataset& train, const runtime::data::Dataset& held_out,
                                        const std::filesystem::path& cache);

// ---------------------------------------------------------------------------
// The scene reader

/// Options of read_scenes, given for 64 x 64 scenes: for a side of `size`,
/// `min_area` is scaled by (size / 64)^2 and `dilation` by size / 64.
struct SceneReaderOptions {
  double threshold = 0.3;  ///< a pixel is ink when above this
  int64_t dilation = 1;    ///< grow the ink mask by this many pixels before labelling components
  int64_t min_area = 6;    ///< drop components with fewer ink pixels (at 64 x 64)
  SceneReaderOptions& with_threshold(double v) { threshold = v; return *this; }
  SceneReaderOptions& with_dilation(int64_t v) { dilation = v; return *this; }
  SceneReaderOptions& with_min_area(int64_t v) { min_area = v; return *this; }
};

/// One digit read from a scene.
struct DetectedDigit {
  int64_t label = 0;
  double confidence = 0;        ///< the classifier's probability of `label`
  double x = 0, y = 0;          ///< centre of mass of its ink, in pixels (x across, y down)
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;  ///< bounding box, [x0, x1) x [y0, y1)
  int64_t area = 0;             ///< ink pixels
};

/// The 8-connected components of a mask [H, W] (bool or 0/1): a label per
/// pixel [H, W] (int64, 0 for background, components numbered 1.. in raster
/// order of their first pixel) and the count.
std::pair<torch::Tensor, int64_t> connected_components(const torch::Tensor& mask);

/// Reads the digits of scenes [N, 1, H, W] or [N, H, W] in [0, 1]: threshold,
/// optional dilation, 8-connected components of at least min_area ink
/// pixels, each cropped (its own pixels only), normalised and classified.
/// The centre of mass is used as the digit's position because MNIST digits
/// are centred in their frames by it. Throws std::invalid_argument for a
/// wrong shape.
std::vector<std::vector<DetectedDigit>> read_scenes(const torch::Tensor& images, DigitClassifier& classifier,
                                                    const SceneReaderOptions& options = {});

/// The structure check of `kind` (mnist4, mnist10 or mnist4_10) on digits
/// read from a size x size scene; `tolerance` < 0: the checker's default.
/// Throws std::invalid_argument for another kind.
runtime::data::SceneCheck check_scene(runtime::data::SceneKind kind, const std::vector<DetectedDigit>& digits,
                                      double size, double tolerance = -1);

/// The classes of a scene's four digits clockwise from the top-left quadrant
/// (top-left, top-right, bottom-right, bottom-left) when the scene has
/// exactly one digit in each quadrant of a size x size canvas (by centre),
/// else nullopt.
std::optional<std::array<int64_t, 4>> clockwise_classes(const std::vector<DetectedDigit>& digits, double size);

/// S-Acc over a set of scenes.
struct StructureAccuracy {
  int64_t n = 0, passed = 0;
  double accuracy = 0;                      ///< passed / n
  std::map<std::string, int64_t> failures;  ///< scenes by first rule broken ("count", "quadrant", "class", "position")
  std::map<std::string, int64_t> broken;    ///< scenes breaking each rule, a scene counted under every rule it breaks
  std::vector<runtime::data::SceneCheck> checks;          ///< per scene
  std::vector<std::vector<DetectedDigit>> digits;         ///< per scene
  double mean_digits = 0;                   ///< digits read per scene
  /// MNIST-4 partial credit, which moves before S-Acc does: over the scenes
  /// with one digit per quadrant (clockwise_classes), the three clockwise
  /// neighbour pairs of each, and how many of them step up by one class as
  /// the "class" rule asks. Chance is about 1 in 10. Not counted for MNIST-10.
  int64_t neighbour_pairs = 0, consecutive_pairs = 0;
};

/// Reads and checks every scene of `images` [N, 1, H, W] (square). Throws as
/// read_scenes and check_scene do.
StructureAccuracy structure_accuracy(const torch::Tensor& images, runtime::data::SceneKind kind,
                                     DigitClassifier& classifier, const SceneReaderOptions& options = {},
                                     double tolerance = -1);

/// Checks digits already read from size x size scenes, one list per scene
/// (by read_scenes or read_boxes). Throws as check_scene does.
StructureAccuracy structure_accuracy(std::vector<std::vector<DetectedDigit>> digits, runtime::data::SceneKind kind,
                                     double size, double tolerance = -1);

// ---------------------------------------------------------------------------
// Broken scenes, to validate the judge

/// Ways of breaking a scene's structure.
enum class SceneBreak {
  swap_quadrants,  ///< the contents of the top-left and top-right quadrants exchanged
  wrong_class,     ///< one digit replaced by a digit of another class, in its box
  remove_digit,    ///< one digit erased
};

/// "swap-quadrants", "wrong-class", "remove-digit".
std::string to_string(SceneBreak how);

/// A copy of `scene` with its structure broken `how`; `digits` (images
/// [N, h, w], labels) supply replacement digits, `seed` picks which digit
/// and its replacement. The objects list follows the change. Throws
/// std::invalid_argument for a scene without objects.
runtime::data::Scene break_scene(const runtime::data::Scene& scene, SceneBreak how,
                                 const runtime::data::Dataset& digits, uint64_t seed);

// ---------------------------------------------------------------------------
// D-Steps

/// Options of discriminability_steps. The discriminator and its optimiser
/// are fixed: conv(1 -> 16, 4 x 4, stride 2) - LeakyReLU(0.2) - conv(16 -> 32,
/// 4 x 4, stride 2) - LeakyReLU - conv(32 -> 64, 4 x 4, stride 2) - LeakyReLU
/// - global average pool - linear(64 -> 1); Adam with lr 1e-4, batches of
/// 16 real + 16 generated images drawn with replacement.
struct DiscriminabilityOptions {
  int64_t max_steps = 2000;       ///< cap; when not reached, `steps` is this cap (a lower bound)
  int64_t eval_every = 10;        ///< held-out accuracy after every this many steps
  double target = 0.9;            ///< accuracy to reach
  double held_out_fraction = 0.2; ///< of each set, kept for the accuracy
  uint64_t seed = 0;
  DiscriminabilityOptions& with_max_steps(int64_t v) { max_steps = v; return *this; }
  DiscriminabilityOptions& with_eval_every(int64_t v) { eval_every = v; return *this; }
  DiscriminabilityOptions& with_seed(uint64_t v) { seed = v; return *this; }
};

/// What discriminability_steps measured.
struct Discriminability {
  int64_t steps = 0;        ///< first evaluated step with accuracy >= target, else max_steps
  bool reached = false;     ///< false: `steps` is a lower bound
  double accuracy = 0;      ///< held-out accuracy at `steps`
  std::vector<std::pair<int64_t, double>> curve;  ///< (step, held-out accuracy)
};

/// D-Steps of `generated` against `real` (both [N, 1, H, W] in [0, 1], same
/// H, W, at least 10 images each). `progress(step, accuracy)` is called after
/// each evaluation when given. Deterministic given the seed; the global torch
/// generator is left as it was. Throws std::invalid_argument for mismatched
/// shapes or too few images.
Discriminability discriminability_steps(const torch::Tensor& real, const torch::Tensor& generated,
                                        const DiscriminabilityOptions& options = {},
                                        const std::function<void(int64_t, double)>& progress = {});

// ---------------------------------------------------------------------------
// Boxes and average precision (Table 4)

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

/// A second scene reader beside read_scenes, for samples that come with
/// their objects' boxes (GNM's latent_boxes): per box of score above
/// `min_score`, the pixels inside it (clipped to the canvas) above
/// options.threshold are the digit. A box with fewer such pixels than
/// options.min_area (scaled as in read_scenes; no dilation) is dropped as an
/// object that drew nothing. The position is the centre of mass of that ink,
/// the class the classifier's on the normalised crop; a neighbour's strokes
/// inside the box are read with it. images: [N, 1, H, W] or [N, H, W]; boxes:
/// one list per image. Throws std::invalid_argument otherwise.
std::vector<std::vector<DetectedDigit>> read_boxes(const torch::Tensor& images,
                                                   const std::vector<std::vector<ScoredBox>>& boxes,
                                                   DigitClassifier& classifier, const SceneReaderOptions& options = {},
                                                   double min_score = 0.5);

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
