// The structure map's placement, compositing and boxes (GNM and SPACE).
#include <ppl/programs/structure_map.hpp>

#include <ppl/runtime/stn.hpp>

namespace ppl::programs {

torch::Tensor where_to_runtime(const torch::Tensor& z_where, int64_t cells, BoxForm form) {
  const int64_t b = z_where.size(0), n = z_where.size(1);
  auto idx = torch::arange(n, z_where.options());
  auto col = torch::remainder(idx, static_cast<double>(cells)), row = torch::floor(idx / static_cast<double>(cells));
  auto cx = -1.0 + (2.0 * col + 1.0) / static_cast<double>(cells);
  auto cy = -1.0 + (2.0 * row + 1.0) / static_cast<double>(cells);
  const double cell = 2.0 / static_cast<double>(cells);
  torch::Tensor sx, sy;
  if (form == BoxForm::scale_aspect) {
    auto side = torch::sigmoid(z_where.select(2, 0));
    auto root = torch::exp(0.5 * z_where.select(2, 1));  // sqrt of the aspect ratio
    sx = (side / root).clamp_min(1e-3);
    sy = (side * root).clamp_min(1e-3);
  } else {
    sx = torch::sigmoid(z_where.select(2, 0)).clamp_min(1e-3);
    sy = torch::sigmoid(z_where.select(2, 1)).clamp_min(1e-3);
  }
  auto tx = cx + cell * torch::tanh(z_where.select(2, 2));
  auto ty = cy + cell * torch::tanh(z_where.select(2, 3));
  return torch::stack({sx, sy, tx, ty}, 2).reshape({b * n, 4});
}

torch::Tensor sum_objects(const torch::Tensor& patches, const torch::Tensor& z_pres, const torch::Tensor& z_where,
                          int64_t cells, int64_t size, BoxForm form) {
  const int64_t b = z_where.size(0), n = z_where.size(1);
  auto placed =
      runtime::stn_place(patches, where_to_runtime(z_where, cells, form), size, size).view({b, n, 1, size, size});
  return (placed * z_pres.view({b, n, 1, 1, 1})).sum(1);
}

Foreground composite_objects(const torch::Tensor& patches, const torch::Tensor& z_pres, const torch::Tensor& z_where,
                             const torch::Tensor& z_depth, int64_t cells, int64_t size, BoxForm form) {
  const int64_t b = z_where.size(0), n = z_where.size(1);
  auto placed =
      runtime::stn_place(patches, where_to_runtime(z_where, cells, form), size, size).view({b, n, 2, size, size});
  auto o_i = placed.narrow(2, 0, 1);
  auto m_i = placed.narrow(2, 1, 1) * z_pres.view({b, n, 1, 1, 1});
  // Responsibilities: mask * presence * sigmoid(-depth), normalised over objects.
  auto gamma = m_i * torch::sigmoid(-z_depth).view({b, n, 1, 1, 1});
  gamma = gamma / (gamma.sum(1, true) + 1e-8);
  return {(gamma * o_i).sum(1), m_i.sum(1).clamp_max(1.0)};
}

std::vector<std::vector<ScoredBox>> structure_boxes(const torch::Tensor& z_where, const torch::Tensor& presence,
                                                    int64_t cells, int64_t size, BoxForm form) {
  const int64_t b = z_where.size(0), n = z_where.size(1);
  const auto affine = where_to_runtime(z_where.detach(), cells, form).view({b, n, 4}).to(torch::kDouble).cpu();
  const auto score = presence.detach().to(torch::kDouble).cpu();
  const auto a = affine.accessor<double, 3>();
  const auto sc = score.accessor<double, 2>();
  const double side = static_cast<double>(size);
  std::vector<std::vector<ScoredBox>> out(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i)
    for (int64_t k = 0; k < n; ++k) {
      // The window covers centre +- scale in [-1, 1] coordinates: a side of scale * image side.
      const double w = a[i][k][0] * side, h = a[i][k][1] * side;
      const double cx = (a[i][k][2] + 1) / 2 * side, cy = (a[i][k][3] + 1) / 2 * side;
      out[static_cast<size_t>(i)].push_back({cx - w / 2, cy - h / 2, w, h, sc[i][k]});
    }
  return out;
}

}  // namespace ppl::programs
