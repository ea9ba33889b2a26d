#pragma once
/// Stroke fidelity of DooD against human drawings: the strokes the guide
/// infers as dense curves in pixels, and the symmetric Chamfer distance
/// between two point sets.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include <ppl/programs/dood/dood.hpp>

namespace ppl::programs::dood {

/// Points of a Bezier curve with control points [P, 2] at `samples` evenly
/// spaced u in [0, 1]: b(u) = sum_d C(D, d) (1 - u)^(D - d) u^d p_d (Eq. 10),
/// [samples, 2]. Throws ArgumentError for samples < 2 or a wrong shape.
torch::Tensor bezier_curve(const torch::Tensor& control_points, int64_t samples);

/// Points along a polyline [M, 2] (e.g. a human pen trajectory) at most
/// `spacing` apart: each segment split evenly, its end points kept, so the
/// result does not depend on how densely the pen was sampled. [M', 2];
/// a single point stays as it is. Throws ArgumentError for spacing <= 0 or a
/// wrong shape.
torch::Tensor densify_polyline(const torch::Tensor& points, double spacing);

/// The strokes the guide draws on each image of x [B, 1, H, W]: for every
/// step with o_t = 1, its control points s_t mapped to the image by
/// `glimpse_to_image` and scaled to pixels of the H x W frame (pixel (h, w) at
/// (w, h), the renderer's grid): result[b] holds one [P, 2] tensor per stroke.
/// One draw of the guide (not the mean).
std::vector<std::vector<torch::Tensor>> infer_control_points(Dood& program, const torch::Tensor& x);

/// The symmetric Chamfer distance between point sets a [N, 2] and b [M, 2]:
///   (mean_{p in a} min_{q in b} |p - q| + mean_{q in b} min_{p in a} |p - q|) / 2,
/// with Euclidean |.|, in the points' units. Throws ArgumentError when either
/// set is empty or not [*, 2].
double chamfer_distance(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace ppl::programs::dood
