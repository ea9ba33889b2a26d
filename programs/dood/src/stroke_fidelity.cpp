// Stroke fidelity: inferred Bezier strokes as pixel curves, Chamfer distance.
#include <ppl/programs/dood/stroke_fidelity.hpp>

#include <cmath>

#include <fmt/format.h>

namespace ppl::programs::dood {

namespace {
void check_points(const char* name, const torch::Tensor& p) {
  if (!p.defined() || p.dim() != 2 || p.size(1) != 2 || p.size(0) < 1)
    throw ArgumentError(fmt::format("DooD strokes: {} has shape {}, but must be [N, 2] with N >= 1", name,
                                    p.defined() ? shape_string(p.sizes()) : std::string("undefined")));
}
}  // namespace

torch::Tensor bezier_curve(const torch::Tensor& control_points, int64_t samples) {
  check_points("control_points", control_points);
  if (samples < 2) throw ArgumentError(fmt::format("DooD strokes: samples is {}, but must be at least 2", samples));
  const int64_t degree = control_points.size(0) - 1;
  auto opts = control_points.options().dtype(torch::kDouble);
  auto u = torch::linspace(0, 1, samples, opts).unsqueeze(1);  // [S, 1]
  auto d = torch::arange(degree + 1, opts).unsqueeze(0);       // [1, D + 1]
  // C(D, d) through lgamma, exact enough for the few control points of a stroke.
  auto log_binom = std::lgamma(degree + 1.0) - torch::lgamma(d + 1) - torch::lgamma(degree - d + 1);
  auto weights = torch::exp(log_binom) * torch::pow(1 - u, degree - d) * torch::pow(u, d);  // [S, D + 1]
  return torch::matmul(weights, control_points.to(torch::kDouble)).to(control_points.scalar_type());
}

torch::Tensor densify_polyline(const torch::Tensor& points, double spacing) {
  check_points("points", points);
  if (!(spacing > 0)) throw ArgumentError(fmt::format("DooD strokes: spacing is {}, but must be positive", spacing));
  auto p = points.to(torch::kDouble).cpu();
  std::vector<torch::Tensor> parts{p.narrow(0, 0, 1)};
  for (int64_t i = 1; i < p.size(0); ++i) {
    const auto a = p[i - 1], b = p[i];
    const auto pieces = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((b - a).norm().item<double>() / spacing)));
    auto u = torch::linspace(1.0 / pieces, 1.0, pieces, p.options()).unsqueeze(1);  // the segment's end included
    parts.push_back(a + u * (b - a));
  }
  return torch::cat(parts).to(points.options());
}

std::vector<std::vector<torch::Tensor>> infer_control_points(Dood& program, const torch::Tensor& x) {
  check::min_dim({"DooD strokes"}, "x", x, 4);
  torch::NoGradGuard no_grad;
  auto guide_trace = ppl::trace([&](const torch::Tensor& img) { return program.guide(img); }, x);
  const int64_t b = x.size(0), size = program.image_size();
  std::vector<std::vector<torch::Tensor>> out(b);
  for (int t = 0; t < program.dood_options().steps; ++t) {
    auto on = guide_trace.site(addr("o", t)).value.cpu();
    auto points = glimpse_to_image(guide_trace.site(addr("s", t)).value, guide_trace.site(addr("l", t)).value, size);
    points = (points * static_cast<double>(size)).cpu();
    for (int64_t i = 0; i < b; ++i)
      if (on[i].item<double>() > 0.5) out[i].push_back(points[i]);
  }
  return out;
}

double chamfer_distance(const torch::Tensor& a, const torch::Tensor& b) {
  check_points("a", a);
  check_points("b", b);
  auto dist = torch::cdist(a.to(torch::kDouble).unsqueeze(0), b.to(torch::kDouble).unsqueeze(0))[0];  // [N, M]
  return 0.5 * (std::get<0>(dist.min(1)).mean().item<double>() + std::get<0>(dist.min(0)).mean().item<double>());
}

}  // namespace ppl::programs::dood
