#pragma once
/// The structure map of GNM and SPACE: an S x S grid of object cells, each
/// with z_pres, z_where (scale x, scale y, shift x, shift y), z_depth and a
/// decoded patch, placed on the canvas by the runtime's spatial transformer
/// and composited by depth (GNM's Algorithm 2, SPACE's foreground, Lin et al.
/// 2020 Eq. 4-6). Both programs render through these functions.
#include <vector>

#include <torch/torch.h>

#include <ppl/programs/objects.hpp>

namespace ppl::programs {

/// What the first two numbers of a cell's z_where are.
enum class BoxForm {
  scales,        ///< (scale x, scale y): width sigmoid(z0), height sigmoid(z1) (SPACE)
  scale_aspect,  ///< (scale, log aspect ratio): width sigmoid(z0) exp(-z1 / 2),
                 ///< height sigmoid(z0) exp(z1 / 2) (GNM's authors' code)
};

/// The runtime's axis-aligned z_where [B * S*S, 4] (sx, sy, tx, ty) of the
/// z_where [B, S*S, 4] of an S x S grid: sx = the box's width and sy its
/// height as fractions of the image's (`form`), (tx, ty) = centre
/// of cell (i, j) + (2 / S) tanh(z2, z3), the centre of cell (i, j) being
/// (-1 + (2 j + 1) / S, -1 + (2 i + 1) / S) for the cell n = i S + j. A
/// box's centre is thus at most one cell from its cell's. With
/// BoxForm::scale_aspect the box's area is sigmoid(z0)^2 of the image's
/// whatever its aspect ratio height / width = exp(z1).
torch::Tensor where_to_runtime(const torch::Tensor& z_where, int64_t cells, BoxForm form = BoxForm::scales);

/// Present objects summed on a black canvas: patches [B * N, 1, g, g] in
/// [0, 1], placed by z_where [B, N, 4], weighted by z_pres [B, N];
/// returns [B, 1, size, size]. (GNM's "additive" composition.)
torch::Tensor sum_objects(const torch::Tensor& patches, const torch::Tensor& z_pres, const torch::Tensor& z_where,
                          int64_t cells, int64_t size, BoxForm form = BoxForm::scales);

/// The foreground of a structure map composited by depth.
struct Foreground {
  torch::Tensor colour;  ///< sum_i gamma_i o_i, [B, 1, H, W]
  torch::Tensor alpha;   ///< M = min(sum_i z_pres_i m_i, 1), [B, 1, H, W]
};

/// Objects composited by depth: appearances o_i and masks m_i (patches
/// [B * N, 2, g, g] in [0, 1], appearance first) placed by z_where [B, N, 4];
/// gamma_i = m_i z_pres_i sigmoid(-z_depth_i) normalised over the objects
/// (z_depth [B, N, 1]); colour = sum_i gamma_i o_i, alpha = min(sum_i
/// m_i z_pres_i, 1). The image over a background x_b is alpha colour +
/// (1 - alpha) x_b (GNM, Algorithm 2); SPACE mixes the two likelihoods with
/// alpha instead.
Foreground composite_objects(const torch::Tensor& patches, const torch::Tensor& z_pres, const torch::Tensor& z_where,
                             const torch::Tensor& z_depth, int64_t cells, int64_t size,
                             BoxForm form = BoxForm::scales);

/// The boxes of z_where [B, N, 4] on a size x size canvas of an S x S grid,
/// as where_to_runtime places the objects, scored by `presence` [B, N]
/// (z_pres, or q(z_pres = 1 | x)).
std::vector<std::vector<ScoredBox>> structure_boxes(const torch::Tensor& z_where, const torch::Tensor& presence,
                                                    int64_t cells, int64_t size, BoxForm form = BoxForm::scales);

}  // namespace ppl::programs
