#pragma once
/// PNG image I/O (libpng): read an 8- or 16-bit grayscale, palette or RGB(A)
/// PNG into a float tensor in [0, 1], write a tensor as a PNG, write a grid of
/// images as one PNG; labels drawn into images in a small pixel font; and a
/// differentiable Gaussian blur.
#include <array>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

namespace ppl::runtime {

/// A PNG that cannot be read or written: the message names the path (or the
/// in-memory source), what was expected and what was found.
class ImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Colour layout requested from read_png.
enum class PngColor {
  gray,  ///< [H, W]: colour images are converted to luminance
  rgb,   ///< [3, H, W]: gray images are replicated
};

/// Reads a PNG file into a float32 tensor in [0, 1]: [H, W] for
/// PngColor::gray, [3, H, W] for PngColor::rgb. Alpha is composed onto black.
/// Throws ImageError naming the path for a missing file or one that is not a
/// valid PNG (wrong signature, truncated data), and, before anything is
/// allocated, for a header that declares more than data::kMaxImagePixels
/// pixels or more than the file's length can hold.
torch::Tensor read_png(const std::filesystem::path& path, PngColor color = PngColor::gray);

/// Reads a PNG held in memory (e.g. an entry of a zip archive); `source` names
/// it in error messages. Same result and errors as read_png.
torch::Tensor read_png_memory(const std::vector<std::uint8_t>& bytes, const std::string& source,
                              PngColor color = PngColor::gray);

/// Writes a [H, W] (gray), [1, H, W] (gray) or [3, H, W] (RGB) tensor of values
/// in [0, 1] (clamped; any dtype, any device) as an 8-bit PNG, creating the
/// parent folder. Throws std::invalid_argument for another shape and
/// ImageError when the file cannot be written.
void write_png(const std::filesystem::path& path, const torch::Tensor& image);

/// The bytes of the PNG file that write_png would write for `image` (for an
/// HTML page or an archive; no file is written). Throws as write_png does.
std::vector<std::uint8_t> encode_png(const torch::Tensor& image);

/// Tiles images [N, H, W] or [N, C, H, W] (C = 1 or 3) into one grid of
/// `columns` columns (0: ceil(sqrt(N))), `padding` pixels of value
/// `pad_value` between and around them. Returns the grid [H', W'] or
/// [C, H', W']. Throws std::invalid_argument for a wrong shape or N = 0.
torch::Tensor make_grid(const torch::Tensor& images, std::int64_t columns = 0, std::int64_t padding = 2,
                        double pad_value = 0.5);

/// make_grid then write_png. Throws as both do.
void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images, std::int64_t columns = 0,
                    std::int64_t padding = 2, double pad_value = 0.5);

/// Draws `text` into `image` ([3, H, W] float32 on the CPU, changed in place)
/// with its top-left corner at pixel (x, y), in a 5 x 7 pixel font with one
/// pixel between characters, each font pixel `scale` x `scale` image pixels.
/// Letters are drawn as capitals; digits, space and . , - + _ / : ( ) = % ?
/// ' [ ] < > * # as themselves; any other character as '?'. Pixels outside
/// the image are left out. Throws std::invalid_argument for another shape,
/// dtype or device, or a scale below 1.
void draw_text(const torch::Tensor& image, std::int64_t x, std::int64_t y, std::string_view text,
               const std::array<float, 3>& colour, std::int64_t scale = 1);

/// The width in pixels of `text` as draw_text draws it (6 * scale a
/// character, less the gap after the last); its height is 7 * scale.
std::int64_t text_width(std::string_view text, std::int64_t scale = 1);

/// `images` [..., H, W] (floating point, any device) blurred by a Gaussian of
/// standard deviation `sigma` pixels: one pass along each axis, a kernel
/// reaching ceil(3 sigma) pixels each way (at least 1), zeros outside the
/// image (ink near the edges loses a little mass). Differentiable; the
/// result has the shape, dtype and device of `images`. sigma = 0 returns
/// `images` itself. Throws std::invalid_argument for a negative or
/// non-finite sigma, fewer than two dimensions, or an integer tensor.
torch::Tensor gaussian_blur(const torch::Tensor& images, double sigma);

}  // namespace ppl::runtime
