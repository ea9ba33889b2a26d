// PNG I/O through libpng's simplified API (png_image), which converts every
// bit depth, palette and alpha layout to the 8-bit gray or RGB we ask for.
#include <ppl/runtime/image.hpp>

#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <png.h>
#include <torch/torch.h>

namespace ppl::runtime {
namespace {

/// Frees a png_image on every path out of a reader or writer.
struct PngImageGuard {
  png_image image;
  PngImageGuard() {
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
  }
  ~PngImageGuard() { png_image_free(&image); }
};

torch::Tensor finish_read(PngImageGuard& g, const std::string& source, PngColor color) {
  g.image.format = color == PngColor::gray ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const auto h = static_cast<std::int64_t>(g.image.height), w = static_cast<std::int64_t>(g.image.width);
  const std::int64_t channels = color == PngColor::gray ? 1 : 3;
  auto bytes = torch::empty({h, w, channels}, torch::kUInt8);
  // Composes alpha onto black (background nullptr with a non-alpha format).
  if (!png_image_finish_read(&g.image, nullptr, bytes.data_ptr<std::uint8_t>(), 0, nullptr))
    throw ImageError(fmt::format("{}: expected PNG image data, found an error decoding it: {}", source,
                                 g.image.message));
  auto out = bytes.to(torch::kFloat32).div_(255.0);
  return color == PngColor::gray ? out.squeeze(-1).contiguous() : out.permute({2, 0, 1}).contiguous();
}

}  // namespace

torch::Tensor read_png(const std::filesystem::path& path, PngColor color) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw ImageError(fmt::format("{}: expected a PNG file, found {}", path.string(),
                                 std::filesystem::exists(path, ec) ? "something that is not a file" : "nothing"));
  PngImageGuard g;
  if (!png_image_begin_read_from_file(&g.image, path.c_str()))
    throw ImageError(fmt::format("{}: expected a PNG file, found one libpng cannot read: {}", path.string(),
                                 g.image.message));
  return finish_read(g, path.string(), color);
}

torch::Tensor read_png_memory(const std::vector<std::uint8_t>& bytes, const std::string& source, PngColor color) {
  PngImageGuard g;
  if (bytes.empty() || !png_image_begin_read_from_memory(&g.image, bytes.data(), bytes.size()))
    throw ImageError(fmt::format("{}: expected PNG data, found {}", source,
                                 bytes.empty() ? std::string("an empty entry") : std::string(g.image.message)));
  return finish_read(g, source, color);
}

void write_png(const std::filesystem::path& path, const torch::Tensor& image) {
  auto t = image.detach().to(torch::kCPU, torch::kFloat32);
  if (t.dim() == 3 && t.size(0) == 1) t = t.squeeze(0);
  if (!(t.dim() == 2 || (t.dim() == 3 && t.size(0) == 3)))
    throw std::invalid_argument(fmt::format("write_png: image has shape {}, but must be [H, W], [1, H, W] or [3, H, W]",
                                            fmt::join(t.sizes(), ", ")));
  if (t.dim() == 3) t = t.permute({1, 2, 0});
  auto bytes = t.nan_to_num(0.0).clamp(0.0, 1.0).mul(255.0).round().to(torch::kUInt8).contiguous();
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
  }
  PngImageGuard g;
  g.image.width = static_cast<png_uint_32>(bytes.size(1));
  g.image.height = static_cast<png_uint_32>(bytes.size(0));
  g.image.format = bytes.dim() == 2 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&g.image, path.c_str(), 0, bytes.data_ptr<std::uint8_t>(), 0, nullptr))
    throw ImageError(fmt::format("{}: expected to write a PNG file, found an error: {}", path.string(),
                                 g.image.message));
}

torch::Tensor make_grid(const torch::Tensor& images, std::int64_t columns, std::int64_t padding, double pad_value) {
  auto t = images.detach().to(torch::kCPU, torch::kFloat32);
  if (t.dim() == 3) t = t.unsqueeze(1);
  if (t.dim() != 4 || !(t.size(1) == 1 || t.size(1) == 3) || t.size(0) == 0)
    throw std::invalid_argument(fmt::format(
        "make_grid: images have shape [{}], but must be [N, H, W] or [N, C, H, W] with N > 0 and C = 1 or 3",
        fmt::join(images.sizes(), ", ")));
  if (padding < 0) throw std::invalid_argument(fmt::format("make_grid: padding is {}, but must be >= 0", padding));
  const auto n = t.size(0), c = t.size(1), h = t.size(2), w = t.size(3);
  if (columns <= 0) columns = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  columns = std::min(columns, n);
  const auto rows = (n + columns - 1) / columns;
  auto grid = torch::full({c, rows * (h + padding) + padding, columns * (w + padding) + padding}, pad_value);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto r = i / columns, q = i % columns;
    grid.narrow(1, padding + r * (h + padding), h).narrow(2, padding + q * (w + padding), w).copy_(t[i]);
  }
  return c == 1 ? grid.squeeze(0) : grid;
}

void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images, std::int64_t columns,
                    std::int64_t padding, double pad_value) {
  write_png(path, make_grid(images, columns, padding, pad_value));
}

}  // namespace ppl::runtime
