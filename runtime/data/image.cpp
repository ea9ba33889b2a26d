// PNG I/O through libpng's simplified API (png_image), which converts every
// bit depth, palette and alpha layout to the 8-bit gray or RGB we ask for.
#include <ppl/runtime/image.hpp>

#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <png.h>
#include <torch/torch.h>

#include <ppl/runtime/data/checks.hpp>

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

/// Decodes the image whose header `g` holds, from a PNG of `file_bytes`
/// bytes. The size the header declares is checked first: at most
/// kMaxImagePixels, and no more than a deflate stream of the file's length
/// can hold (each row at least a filter byte and one bit a pixel).
torch::Tensor finish_read(PngImageGuard& g, const std::string& source, PngColor color, std::uint64_t file_bytes) {
  const std::uint64_t width = g.image.width, height = g.image.height;
  const auto dims = {height, width};
  const auto pixels = data::declared_product<ImageError>(source, "PNG pixels", dims, data::kMaxImagePixels);
  const std::uint64_t least_inflated = height * (1 + (width + 7) / 8);
  if (pixels == 0 || least_inflated > data::max_inflated(file_bytes))
    data::fail<ImageError>(source, fmt::format("a PNG of {} x {} pixels", width, height),
                           fmt::format("{} bytes of file, too few to hold them (damaged header)", file_bytes));
  g.image.format = color == PngColor::gray ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const auto h = static_cast<std::int64_t>(height), w = static_cast<std::int64_t>(width);
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
  return finish_read(g, path.string(), color, std::filesystem::file_size(path, ec));
}

torch::Tensor read_png_memory(const std::vector<std::uint8_t>& bytes, const std::string& source, PngColor color) {
  PngImageGuard g;
  if (bytes.empty() || !png_image_begin_read_from_memory(&g.image, bytes.data(), bytes.size()))
    throw ImageError(fmt::format("{}: expected PNG data, found {}", source,
                                 bytes.empty() ? std::string("an empty entry") : std::string(g.image.message)));
  return finish_read(g, source, color, bytes.size());
}

namespace {
/// An image [H, W], [1, H, W] or [3, H, W] as 8-bit rows [H, W] or [H, W, 3].
torch::Tensor png_pixels(const torch::Tensor& image, const char* who) {
  auto t = image.detach().to(torch::kCPU, torch::kFloat32);
  if (t.dim() == 3 && t.size(0) == 1) t = t.squeeze(0);
  if (!(t.dim() == 2 || (t.dim() == 3 && t.size(0) == 3)))
    throw std::invalid_argument(fmt::format("{}: image has shape [{}], but must be [H, W], [1, H, W] or [3, H, W]",
                                            who, fmt::join(t.sizes(), ", ")));
  if (t.dim() == 3) t = t.permute({1, 2, 0});
  return t.nan_to_num(0.0).clamp(0.0, 1.0).mul(255.0).round().to(torch::kUInt8).contiguous();
}

void describe(PngImageGuard& g, const torch::Tensor& bytes) {
  g.image.width = static_cast<png_uint_32>(bytes.size(1));
  g.image.height = static_cast<png_uint_32>(bytes.size(0));
  g.image.format = bytes.dim() == 2 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
}
}  // namespace

void write_png(const std::filesystem::path& path, const torch::Tensor& image) {
  const auto bytes = png_pixels(image, "write_png");
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
  }
  PngImageGuard g;
  describe(g, bytes);
  if (!png_image_write_to_file(&g.image, path.c_str(), 0, bytes.data_ptr<std::uint8_t>(), 0, nullptr))
    throw ImageError(fmt::format("{}: expected to write a PNG file, found an error: {}", path.string(),
                                 g.image.message));
}

std::vector<std::uint8_t> encode_png(const torch::Tensor& image) {
  const auto bytes = png_pixels(image, "encode_png");
  PngImageGuard g;
  describe(g, bytes);
  // The first call sizes the buffer, the second fills it.
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&g.image, nullptr, &size, 0, bytes.data_ptr<std::uint8_t>(), 0, nullptr))
    throw ImageError(fmt::format("encode_png: libpng could not encode the image: {}", g.image.message));
  std::vector<std::uint8_t> out(size);
  if (!png_image_write_to_memory(&g.image, out.data(), &size, 0, bytes.data_ptr<std::uint8_t>(), 0, nullptr))
    throw ImageError(fmt::format("encode_png: libpng could not encode the image: {}", g.image.message));
  out.resize(size);
  return out;
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

torch::Tensor gaussian_blur(const torch::Tensor& images, double sigma) {
  if (!std::isfinite(sigma) || sigma < 0)
    throw std::invalid_argument(fmt::format("gaussian_blur: sigma is {}, but must be a finite number >= 0", sigma));
  if (images.dim() < 2 || !images.is_floating_point())
    throw std::invalid_argument(fmt::format(
        "gaussian_blur: images must be floating point [..., H, W], got {} dimensions of {}", images.dim(),
        std::string(images.dtype().name())));
  if (sigma == 0) return images;
  const auto radius = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(3 * sigma)));
  const auto t = torch::arange(-radius, radius + 1, torch::kFloat64);
  const auto k = torch::exp(-0.5 * (t / sigma).pow(2));
  const auto kernel = (k / k.sum()).to(images.options());
  const auto h = images.size(-2), w = images.size(-1);
  auto x = images.reshape({-1, 1, h, w});
  const std::vector<std::int64_t> across = {0, radius}, down = {radius, 0};
  x = torch::conv2d(x, kernel.view({1, 1, 1, -1}), torch::Tensor(), 1, across);
  x = torch::conv2d(x, kernel.view({1, 1, -1, 1}), torch::Tensor(), 1, down);
  return x.reshape(images.sizes());
}

void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images, std::int64_t columns,
                    std::int64_t padding, double pad_value) {
  write_png(path, make_grid(images, columns, padding, pad_value));
}

// ------------------------------------------------------------------ text

namespace {
/// A 5 x 7 glyph: seven rows, top first, each in the low five bits (bit 4 leftmost).
struct Glyph {
  char c;
  std::array<std::uint8_t, 7> rows;
};

constexpr Glyph kFont[] = {
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}},
    {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}},
    {'3', {0x1e, 0x01, 0x01, 0x0e, 0x01, 0x01, 0x1e}},
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}},
    {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}},
    {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}},
    {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},
    {'A', {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'B', {0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e}},
    {'C', {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e}},
    {'D', {0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c}},
    {'E', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}},
    {'F', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}},
    {'G', {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f}},
    {'H', {0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}},
    {'I', {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}},
    {'M', {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'P', {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}},
    {'Q', {0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d}},
    {'R', {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}},
    {'S', {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e}},
    {'T', {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a}},
    {'X', {0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f}},
    {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}},
    {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'=', {0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'?', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
    {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},
    {'[', {0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e}},
    {']', {0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'*', {0x00, 0x04, 0x15, 0x0e, 0x15, 0x04, 0x00}},
    {'#', {0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a}},
};

const std::array<std::uint8_t, 7>& glyph(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  for (const auto& g : kFont)
    if (g.c == c) return g.rows;
  return glyph('?');
}

constexpr std::int64_t kAdvance = 6, kGlyphHeight = 7;
}  // namespace

std::int64_t text_width(std::string_view text, std::int64_t scale) {
  return text.empty() ? 0 : (static_cast<std::int64_t>(text.size()) * kAdvance - 1) * scale;
}

void draw_text(const torch::Tensor& image, std::int64_t x, std::int64_t y, std::string_view text,
               const std::array<float, 3>& colour, std::int64_t scale) {
  if (image.dim() != 3 || image.size(0) != 3 || image.scalar_type() != torch::kFloat32 || !image.device().is_cpu())
    throw std::invalid_argument(fmt::format("draw_text: expected a float32 CPU image [3, H, W], got [{}] {} on {}",
                                            fmt::join(image.sizes(), ", "), c10::toString(image.scalar_type()),
                                            image.device().str()));
  if (scale < 1) throw std::invalid_argument(fmt::format("draw_text: scale {} is below 1", scale));
  auto px = image.accessor<float, 3>();
  const auto h = image.size(1), w = image.size(2);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ' ') continue;
    const auto& rows = glyph(text[i]);
    const auto left = x + static_cast<std::int64_t>(i) * kAdvance * scale;
    for (std::int64_t r = 0; r < kGlyphHeight; ++r)
      for (std::int64_t col = 0; col < 5; ++col) {
        if (!((rows[static_cast<size_t>(r)] >> (4 - col)) & 1)) continue;
        for (std::int64_t dy = 0; dy < scale; ++dy)
          for (std::int64_t dx = 0; dx < scale; ++dx) {
            const auto py = y + r * scale + dy, qx = left + col * scale + dx;
            if (py < 0 || qx < 0 || py >= h || qx >= w) continue;
            for (int k = 0; k < 3; ++k) px[k][py][qx] = colour[static_cast<size_t>(k)];
          }
      }
  }
}

}  // namespace ppl::runtime
