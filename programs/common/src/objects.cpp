// Boxes of the objects programs infer.
#include <ppl/programs/objects.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <ppl/core/check.hpp>
#include <ppl/core/errors.hpp>

namespace ppl::programs {

std::vector<std::vector<ScoredBox>> mask_boxes(const torch::Tensor& masks, double threshold) {
  if (masks.dim() != 4)
    throw ShapeError(fmt::format("mask_boxes: masks must be [B, K, H, W], got {}", shape_string(masks.sizes())));
  const auto m = masks.detach().to(torch::kDouble).cpu().contiguous();
  const int64_t b = m.size(0), k = m.size(1), h = m.size(2), w = m.size(3);
  const auto a = m.accessor<double, 4>();
  std::vector<std::vector<ScoredBox>> out(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i)
    for (int64_t c = 0; c < k; ++c) {
      int64_t x0 = w, y0 = h, x1 = -1, y1 = -1;
      double peak = 0;
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const double v = a[i][c][y][x];
          if (v <= threshold) continue;
          x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
          peak = std::max(peak, v);
        }
      if (x1 < 0) {
        out[static_cast<size_t>(i)].push_back({0, 0, 0, 0, 0});
        continue;
      }
      out[static_cast<size_t>(i)].push_back({static_cast<double>(x0), static_cast<double>(y0),
                                             static_cast<double>(x1 - x0 + 1), static_cast<double>(y1 - y0 + 1), peak});
    }
  return out;
}

}  // namespace ppl::programs
