#pragma once
// Kernels behind ppl::runtime::composite. Tensors are contiguous and checked:
// strokes, canvas and grad_canvas [B, T, P] (P = H * W pixels), omega1 [B].
#include <torch/types.h>

#include <ppl/config.hpp>

namespace ppl::runtime::detail {

struct CompositeGrads {
  torch::Tensor strokes, omega1;
};

torch::Tensor composite_forward_cpu(const torch::Tensor& strokes, const torch::Tensor& omega1);
CompositeGrads composite_backward_cpu(const torch::Tensor& grad_canvas, const torch::Tensor& strokes,
                                      const torch::Tensor& omega1, const torch::Tensor& canvas);

#if PPL_WITH_CUDA
torch::Tensor composite_forward_cuda(const torch::Tensor& strokes, const torch::Tensor& omega1);
CompositeGrads composite_backward_cuda(const torch::Tensor& grad_canvas, const torch::Tensor& strokes,
                                       const torch::Tensor& omega1, const torch::Tensor& canvas);
#endif

}  // namespace ppl::runtime::detail
