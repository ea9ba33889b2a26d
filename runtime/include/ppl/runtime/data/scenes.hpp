#pragma once
/// Seeded, deterministic multi-object scene generators built from single
/// digit images, and the checker of the MNIST-4 / MNIST-10 structure rules.
///
/// multi_mnist (AIR, Eslami et al. 2016, as Pyro's multi_mnist.py draws it):
/// a 50 x 50 canvas (or `size`) with 0, 1 or 2 digits (uniformly). Each digit
/// is shrunk by a factor s ~ N(1.3, 0.1) to floor(28 / s) pixels (scaled by
/// size / 50), placed uniformly inside the canvas, and added; a draw whose
/// digits' ink overlaps (a pixel of at least kInkLevel in two digits) is
/// rejected and the scene's digits drawn again.
///
/// multi_mnist_overlap / multi_mnist_3 (this project's first AIR scenes):
/// 0-2 (0-3) digits drawn at their 28 x 28 size (scaled by size / 50) at
/// uniform positions inside the canvas, overlaps combined by max.
///
/// MNIST-4 (seed 003, section 4): four quadrants (top-left, top-right,
/// bottom-right, bottom-left = clockwise from top-left), one digit each. A
/// class c uniform in 0..6 goes top-left, and the classes increase by one
/// clockwise: c, c+1, c+2, c+3. The top-left digit sits at a uniform position
/// within its quadrant, and the others are its mirror images about the
/// canvas's vertical and horizontal centre lines.
///
/// MNIST-10 (seed 003, section 4): ten digits, one of each class. The class
/// sets Q1 = {0, 1}, Q2 = {2, 3, 4}, Q3 = {8, 9}, Q4 = {5, 6, 7} go to the
/// quadrants clockwise from top-left. Q1's and Q3's digits are placed at
/// random and at the same within-quadrant positions (0 with 8, 1 with 9); Q2's
/// and Q4's digits at independent random positions. Then the contents of the
/// two diagonal quadrant pairs are swapped at random: one fair coin for the
/// Q1/Q3 pair, one for the Q2/Q4 pair.
///
/// MNIST-4-10 (seed 003, Appendix B.1): each scene is MNIST-4 or MNIST-10
/// with probability 1/2.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <ppl/runtime/data/dataset.hpp>

namespace ppl::runtime::data {

/// The scene datasets.
enum class SceneKind { multi_mnist, multi_mnist_overlap, multi_mnist_3, mnist4, mnist10, mnist4_10 };

/// "multi-mnist", "multi-mnist-overlap", "multi-mnist-3", "mnist-4", "mnist-10",
/// "mnist-4-10".
std::string to_string(SceneKind kind);

/// Parses the names of to_string (also with '_' for '-'; "multi-mnist-2", the
/// earlier name of multi-mnist-overlap, is read as that). Throws
/// std::invalid_argument listing the known names otherwise.
SceneKind parse_scene_kind(const std::string& text);

/// The default canvas side of a kind: 50 for multi-MNIST, 128 for the GNM sets.
std::int64_t default_scene_size(SceneKind kind);

/// A box in pixels: top-left corner (x across, y down) and size.
struct PixelBox {
  double x = 0, y = 0, width = 0, height = 0;
};

/// One object of a scene: its class and its box in pixels (x across, y down).
struct SceneObject {
  std::int64_t label = 0;
  double x = 0, y = 0, width = 0, height = 0;  ///< the square the glyph was drawn into
  /// The tight box of the glyph's ink (pixels of at least kInkLevel) inside
  /// that square; a width of 0 means unknown, and ink() falls back to the square.
  PixelBox ink_box;
  /// The factor the 28 x 28 digit was shrunk by (multi-mnist: s ~ N(1.3, 0.1);
  /// 1 for the kinds that draw digits at a fixed size).
  double scale = 1;
  double cx() const { return x + width / 2; }   ///< box centre, x
  double cy() const { return y + height / 2; }  ///< box centre, y
  /// The square the glyph was drawn into, as a PixelBox.
  PixelBox frame() const { return {x, y, width, height}; }
  /// The object's extent for detection metrics: the ink box when known.
  PixelBox ink() const { return ink_box.width > 0 ? ink_box : frame(); }
};

/// The intensity from which a glyph's pixel counts as ink for SceneObject::ink_box.
inline constexpr double kInkLevel = 0.1;

/// A generated scene: the image [size, size] in [0, 1] and its ground truth.
struct Scene {
  torch::Tensor image;
  std::vector<SceneObject> objects;
  SceneKind kind = SceneKind::mnist4;  ///< for mnist4_10: the kind this scene was drawn as
};

/// Options of a SceneGenerator.
struct SceneOptions {
  SceneKind kind = SceneKind::mnist4;
  std::int64_t size = 0;       ///< canvas side; 0: default_scene_size(kind)
  std::uint64_t seed = 0;
  SceneOptions& with_kind(SceneKind v) { kind = v; return *this; }
  SceneOptions& with_size(std::int64_t v) { size = v; return *this; }
  SceneOptions& with_seed(std::uint64_t v) { seed = v; return *this; }
};

/// SceneOptions to JSON: {"kind": "mnist-4", "size", "seed"}.
void to_json(nlohmann::json& j, const SceneOptions& o);
/// SceneOptions from JSON; missing keys keep their defaults. Throws
/// std::invalid_argument for an unknown kind, nlohmann::json::exception for a
/// wrongly typed value.
void from_json(const nlohmann::json& j, SceneOptions& o);

/// Draws scenes from a pool of single digits. Scene i depends only on the
/// digits, the options and i.
class SceneGenerator {
 public:
  /// `digits`: images [N, h, w] in [0, 1] with labels 0..9; every class the
  /// kind needs must be present. Throws std::invalid_argument for a missing
  /// class, a canvas smaller than 16 pixels or a wrong shape.
  SceneGenerator(Dataset digits, SceneOptions options);

  /// The i-th scene.
  Scene scene(std::int64_t index) const;

  /// Scenes first..first+n-1 stacked: images [n, size, size].
  std::vector<Scene> scenes(std::int64_t first, std::int64_t n) const;

  /// The options (with the resolved size).
  const SceneOptions& options() const { return options_; }

 private:
  Dataset digits_;
  SceneOptions options_;
  std::vector<std::vector<std::int64_t>> by_class_;
};

/// Writes scenes as <dir>/images/NNNNNN.png plus <dir>/scenes.json:
/// {"kind", "size", "seed", "count", "scenes": [{"file", "kind",
/// "objects": [{"class", "box": [x, y, width, height]}]}]}. Throws
/// ppl::runtime::ImageError or DataError when a file cannot be written.
void write_scenes(const std::filesystem::path& dir, const std::vector<Scene>& scenes, const SceneOptions& options);

/// One digit as the checker sees it: class and centre in pixels.
struct DigitPlacement {
  std::int64_t label = 0;
  double x = 0, y = 0;
};

/// The quadrant of a size x size canvas that holds the point (x, y): 0
/// top-left, 1 top-right, 2 bottom-right, 3 bottom-left (clockwise from
/// top-left, the order the checks below use). A point on a centre line
/// belongs to the right / bottom quadrant.
int quadrant_of(double x, double y, double size);

/// The verdict of a structure check: ok, or the rules broken. `rule` and
/// `detail` name the first one; `broken` lists every rule that could be
/// checked and failed, in the order count, quadrant, class, position. A
/// wrong count or quadrant split stops the check (the later rules have no
/// digits to compare); a class failure does not hide a position failure.
struct SceneCheck {
  bool ok = true;
  std::string rule;                 ///< "count", "quadrant", "class" or "position" when broken
  std::string detail;               ///< readable explanation of `rule`
  std::vector<std::string> broken;  ///< every rule found broken, `rule` first
};

/// Checks the MNIST-4 rules on a size x size canvas: 4 digits, one per
/// quadrant ("count", "quadrant"), classes c, c+1, c+2, c+3 clockwise from
/// top-left with c in 0..6 ("class"), positions mirror-symmetric about the
/// centre lines within `tolerance` pixels ("position"; default size / 32).
SceneCheck check_mnist4(const std::vector<DigitPlacement>& digits, double size, double tolerance = -1);

/// Checks the MNIST-10 rules: 10 digits ("count"); 2, 3, 2, 3 digits in the
/// quadrants clockwise from top-left up to the diagonal swaps ("quadrant");
/// the class sets {0,1} / {8,9} on one diagonal and {2,3,4} / {5,6,7} on the
/// other ("class"); 0 and 8, 1 and 9 at the same within-quadrant position
/// within `tolerance` pixels ("position"; default size / 32).
SceneCheck check_mnist10(const std::vector<DigitPlacement>& digits, double size, double tolerance = -1);

/// MNIST-4-10: check_mnist4 for 4 digits, check_mnist10 for 10, else "count".
SceneCheck check_mnist4_10(const std::vector<DigitPlacement>& digits, double size, double tolerance = -1);

/// The placements (class, box centre) of a scene's objects.
std::vector<DigitPlacement> placements(const Scene& scene);

}  // namespace ppl::runtime::data
