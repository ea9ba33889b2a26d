#include <ppl/runtime/composite.hpp>

#include <torch/autograd.h>

#include <ppl/config.hpp>
#include <ppl/runtime/device.hpp>

#include "../render/arg_checks.hpp"
#include "composite_kernels.hpp"

namespace ppl::runtime {
namespace {

constexpr std::string_view kCompositeOp = "composite";

// Fused cumulative sum + tanh. Saves the inputs and the output only.
class CompositeFunction : public torch::autograd::Function<CompositeFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& strokes,
                               const torch::Tensor& omega1) {
    torch::Tensor canvas;
#if PPL_WITH_CUDA
    if (strokes.is_cuda())
      canvas = detail::composite_forward_cuda(strokes, omega1);
    else
#endif
      canvas = detail::composite_forward_cpu(strokes, omega1);
    ctx->save_for_backward({strokes, omega1, canvas});
    return canvas;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    auto grad = grad_outputs[0];
    if (!grad.defined()) return {torch::Tensor(), torch::Tensor()};
    grad = grad.contiguous();
    detail::CompositeGrads g;
#if PPL_WITH_CUDA
    if (grad.is_cuda())
      g = detail::composite_backward_cuda(grad, saved[0], saved[1], saved[2]);
    else
#endif
      g = detail::composite_backward_cpu(grad, saved[0], saved[1], saved[2]);
    return {g.strokes, g.omega1};
  }
};

}  // namespace

torch::Tensor composite(const torch::Tensor& strokes, const torch::Tensor& omega1) {
  using namespace detail;
  check_rank(kCompositeOp, "strokes", strokes, 4, "[B, T, H, W]");
  check_floating(kCompositeOp, "strokes", strokes);
  const auto B = strokes.size(0), T = strokes.size(1), H = strokes.size(2), W = strokes.size(3);
  check_shape(kCompositeOp, "omega1", omega1, {B}, "[B]");
  check_like(kCompositeOp, "omega1", omega1, "strokes", strokes);
  check_positive(kCompositeOp, "omega1", omega1.detach());
  use_cuda_kernel(kCompositeOp, "strokes", strokes);
  auto canvas = CompositeFunction::apply(strokes.reshape({B, T, H * W}).contiguous(),
                                         omega1.contiguous());
  return canvas.view({B, T, H, W});
}

}  // namespace ppl::runtime
