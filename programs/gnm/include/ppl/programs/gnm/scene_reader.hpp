#pragma once
/// S-Acc's scene reader: the digits of a scene found as connected ink and
/// classified, the structure check on them, S-Acc over a set of scenes, and
/// scenes broken on purpose to validate it.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/programs/gnm/digit_classifier.hpp>
#include <ppl/programs/objects.hpp>
#include <ppl/runtime/data/dataset.hpp>
#include <ppl/runtime/data/scenes.hpp>

namespace ppl::programs::gnm {

/// The version of the reader's verdicts: a change to what it reads or how
/// it judges (not to the classifier, which has its own version) must change
/// it. v1 judged the structure rules alone; v2 adds the legibility rule
/// (SceneReaderOptions::min_confidence).
inline constexpr const char* kSceneReaderVersion = "scene-reader-v2";

/// The default confidence cut-off: a digit the classifier reads with a
/// maximum softmax probability below it is illegible. Chosen on real scenes
/// against blurred and blob ones (docs/programs/gnm.md, "Evaluations").
inline constexpr double kMinConfidence = 0.5;

/// Options of read_scenes, given for 64 x 64 scenes: for a side of `size`,
/// `min_area` is scaled by (size / 64)^2 and `dilation` by size / 64. JSON
/// keys are the field names.
struct SceneReaderOptions {
  double threshold = 0.3;  ///< a pixel is ink when above this
  int64_t dilation = 1;    ///< grow the ink mask by this many pixels before labelling components
  int64_t min_area = 6;    ///< drop components with fewer ink pixels (at 64 x 64)
  /// A digit read with a lower confidence (the classifier's probability of
  /// its class) makes the scene fail the "legibility" rule; 0: no cut-off.
  double min_confidence = kMinConfidence;
  SceneReaderOptions& with_threshold(double v) { threshold = v; return *this; }
  SceneReaderOptions& with_dilation(int64_t v) { dilation = v; return *this; }
  SceneReaderOptions& with_min_area(int64_t v) { min_area = v; return *this; }
  SceneReaderOptions& with_min_confidence(double v) { min_confidence = v; return *this; }
};

/// Checks the reader's options: threshold in (0, 1), dilation at least 0,
/// min_area at least 1, min_confidence in [0, 1]. Throws
/// std::invalid_argument naming the option and its value, e.g.
/// `scene reader: min_confidence is 1.5, but must be in [0, 1]`.
void check_reader_options(const SceneReaderOptions& options);

/// The options as a JSON object of their fields, and back: from_json reads
/// the keys present over the defaults, then checks the result as
/// check_reader_options does. Throws ppl::Error for an unknown key or a
/// value of the wrong type, std::invalid_argument for a value out of range.
void to_json(nlohmann::json& j, const SceneReaderOptions& options);
void from_json(const nlohmann::json& j, SceneReaderOptions& options);

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
/// wrong shape or options that check_reader_options refuses.
std::vector<std::vector<DetectedDigit>> read_scenes(const torch::Tensor& images, DigitClassifier& classifier,
                                                    const SceneReaderOptions& options = {});

/// A second scene reader beside read_scenes, for samples that come with
/// their objects' boxes (GNM's latent_boxes): per box of score above
/// `min_score`, the pixels inside it (clipped to the canvas) above
/// options.threshold are the digit. A box with fewer such pixels than
/// options.min_area (scaled as in read_scenes; no dilation) is dropped as an
/// object that drew nothing. The position is the centre of mass of that ink,
/// the class the classifier's on the normalised crop; a neighbour's strokes
/// inside the box are read with it. images: [N, 1, H, W] or [N, H, W]; boxes:
/// one list per image. Throws std::invalid_argument otherwise, or for
/// options that check_reader_options refuses.
std::vector<std::vector<DetectedDigit>> read_boxes(const torch::Tensor& images,
                                                   const std::vector<std::vector<ScoredBox>>& boxes,
                                                   DigitClassifier& classifier, const SceneReaderOptions& options = {},
                                                   double min_score = 0.5);

/// The structure check of `kind` (mnist4, mnist10 or mnist4_10) on digits
/// read from a size x size scene; `tolerance` < 0: the checker's default.
/// Before the structure rules comes the legibility rule: a digit read with
/// a confidence below `min_confidence` is one a person would not read, and
/// the scene fails under "legibility" (first in `broken`, and `rule`), the
/// structure rules still checked and listed after it. Throws
/// std::invalid_argument for another kind or a min_confidence outside [0, 1].
runtime::data::SceneCheck check_scene(runtime::data::SceneKind kind, const std::vector<DetectedDigit>& digits,
                                      double size, double tolerance = -1, double min_confidence = kMinConfidence);

/// The classes of a scene's four digits clockwise from the top-left quadrant
/// (top-left, top-right, bottom-right, bottom-left) when the scene has
/// exactly one digit in each quadrant of a size x size canvas (by centre),
/// else nullopt.
std::optional<std::array<int64_t, 4>> clockwise_classes(const std::vector<DetectedDigit>& digits, double size);

/// S-Acc over a set of scenes.
struct StructureAccuracy {
  int64_t n = 0, passed = 0;
  double accuracy = 0;                      ///< passed / n
  /// Scenes by first rule broken ("legibility", "count", "quadrant", "class", "position").
  std::map<std::string, int64_t> failures;
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

/// Reads and checks every scene of `images` [N, 1, H, W] (square), with the
/// cut-off options.min_confidence. Throws as read_scenes and check_scene do.
StructureAccuracy structure_accuracy(const torch::Tensor& images, runtime::data::SceneKind kind,
                                     DigitClassifier& classifier, const SceneReaderOptions& options = {},
                                     double tolerance = -1);

/// Checks digits already read from size x size scenes, one list per scene
/// (by read_scenes or read_boxes), with the confidence cut-off
/// `min_confidence`. Throws as check_scene does.
StructureAccuracy structure_accuracy(std::vector<std::vector<DetectedDigit>> digits, runtime::data::SceneKind kind,
                                     double size, double tolerance = -1, double min_confidence = kMinConfidence);

// ---------------------------------------------------------------------------
// Broken scenes, to validate the judge

/// Ways of making a bad scene from a real one: three break its structure,
/// two make its digits illegible while keeping where they are.
enum class SceneBreak {
  swap_quadrants,  ///< the contents of the top-left and top-right quadrants exchanged
  wrong_class,     ///< one digit replaced by a digit of another class, in its box
  remove_digit,    ///< one digit erased
  blurred,         ///< every digit blurred by a Gaussian (kBlurSigma of its frame side), its ink mass kept
  blob,            ///< every digit replaced by a smooth ellipse of ink filling its ink box
};

/// Every SceneBreak, in declaration order.
inline constexpr std::array<SceneBreak, 5> kSceneBreaks = {SceneBreak::swap_quadrants, SceneBreak::wrong_class,
                                                          SceneBreak::remove_digit, SceneBreak::blurred,
                                                          SceneBreak::blob};

/// The Gaussian of SceneBreak::blurred: its standard deviation as a
/// fraction of the digit's frame side (2 pixels for a 16-pixel frame).
inline constexpr double kBlurSigma = 0.125;

/// "swap-quadrants", "wrong-class", "remove-digit", "blurred", "blob".
std::string to_string(SceneBreak how);

/// The SceneBreak spelt `name` as to_string spells it. Throws
/// std::invalid_argument naming the value and the choices.
SceneBreak parse_scene_break(const std::string& name);

/// A copy of `scene` made bad `how`; `digits` (images [N, h, w], labels)
/// supply replacement digits, `seed` picks which digit and its replacement.
/// The objects list follows the change (blurred and blob keep every object,
/// its class now unreadable). Throws std::invalid_argument for a scene
/// without objects.
runtime::data::Scene break_scene(const runtime::data::Scene& scene, SceneBreak how,
                                 const runtime::data::Dataset& digits, uint64_t seed);

}  // namespace ppl::programs::gnm
