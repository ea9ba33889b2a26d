#include <ppl/runtime/render.hpp>

#include <torch/autograd.h>

#include <ppl/config.hpp>
#include <ppl/runtime/device.hpp>

#include "arg_checks.hpp"
#include "render_kernels.hpp"

namespace ppl::runtime {
namespace {

constexpr std::string_view kRenderOp = "render_strokes";

// Fused renderer with a hand-written backward that recomputes the splats, so
// nothing of size S x H x W per stroke is kept between forward and backward.
class RenderStrokesFunction : public torch::autograd::Function<RenderStrokesFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& points,
                               const torch::Tensor& sigma, const torch::Tensor& omega0,
                               std::int64_t height, std::int64_t width, std::int64_t samples, bool detach_max) {
    ctx->save_for_backward({points, sigma, omega0});
    ctx->saved_data["detach_max"] = detach_max;
    ctx->saved_data["height"] = height;
    ctx->saved_data["width"] = width;
    ctx->saved_data["samples"] = samples;
#if PPL_WITH_CUDA
    if (points.is_cuda())
      return detail::render_forward_cuda(points, sigma, omega0, height, width, samples);
#endif
    return detail::render_forward_cpu(points, sigma, omega0, height, width, samples);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto height = ctx->saved_data["height"].toInt();
    const auto width = ctx->saved_data["width"].toInt();
    const auto samples = ctx->saved_data["samples"].toInt();
    const bool detach_max = ctx->saved_data["detach_max"].toBool();
    auto grad = grad_outputs[0];
    if (!grad.defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
                                 torch::Tensor(), torch::Tensor(), torch::Tensor()};
    grad = grad.contiguous();
    detail::RenderGrads g;
#if PPL_WITH_CUDA
    if (grad.is_cuda())
      g = detail::render_backward_cuda(grad, saved[0], saved[1], saved[2], height, width, samples, detach_max);
    else
#endif
      g = detail::render_backward_cpu(grad, saved[0], saved[1], saved[2], height, width, samples, detach_max);
    return {g.points, g.sigma, g.omega0, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor render_strokes(const torch::Tensor& points, const torch::Tensor& sigma,
                             const torch::Tensor& omega0, const RenderOptions& options) {
  using namespace detail;
  check_rank(kRenderOp, "points", points, 4, "[B, T, D+1, 2]");
  const auto B = points.size(0), T = points.size(1), K = points.size(2);
  if (K < 1 || points.size(3) != 2)
    fail(fmt::format("{}: points has shape {}, but must be [B, T, D+1, 2] with D+1 >= 1", kRenderOp,
                     shape_string(points.sizes())));
  check_floating(kRenderOp, "points", points);
  check_shape(kRenderOp, "sigma", sigma, {B, T}, "[B, T]");
  check_shape(kRenderOp, "omega0", omega0, {B, T}, "[B, T]");
  check_like(kRenderOp, "sigma", sigma, "points", points);
  check_like(kRenderOp, "omega0", omega0, "points", points);
  check_positive_option(kRenderOp, "options.height", options.height);
  check_positive_option(kRenderOp, "options.width", options.width);
  check_positive_option(kRenderOp, "options.samples", options.samples);
  check_positive(kRenderOp, "sigma", sigma.detach());
  check_positive(kRenderOp, "omega0", omega0.detach());
  use_cuda_kernel(kRenderOp, "points", points);  // throws for CUDA tensors without the CUDA build

  auto out = RenderStrokesFunction::apply(points.reshape({B * T, K, 2}).contiguous(),
                                          sigma.reshape({B * T}).contiguous(),
                                          omega0.reshape({B * T}).contiguous(), options.height,
                                          options.width, options.samples, options.detach_max);
  return out.view({B, T, options.height, options.width});
}

}  // namespace ppl::runtime
