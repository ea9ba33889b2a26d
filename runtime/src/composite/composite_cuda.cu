// CUDA kernels of composite, the twins of composite_cpu.cpp: one thread per
// (batch element, pixel) walks the T strokes; omega1's gradient is reduced
// per block and added atomically per batch element.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "composite_kernels.hpp"

namespace ppl::runtime::detail {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void composite_forward_kernel(const scalar_t* __restrict__ strokes, const scalar_t* __restrict__ omega1,
                                         scalar_t* __restrict__ canvas, int T, long P) {
  const long p = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int b = blockIdx.y;
  if (p >= P) return;
  const scalar_t inv = scalar_t(1) / omega1[b];
  scalar_t acc = 0;
  for (int t = 0; t < T; ++t) {
    const long off = (static_cast<long>(b) * T + t) * P + p;
    acc += strokes[off];
    canvas[off] = tanh(acc * inv);
  }
}

template <typename scalar_t>
__global__ void composite_backward_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ strokes,
                                          const scalar_t* __restrict__ omega1, const scalar_t* __restrict__ canvas,
                                          scalar_t* __restrict__ g_strokes, scalar_t* __restrict__ g_omega1, int T,
                                          long P) {
  __shared__ scalar_t buf[kThreads];
  const long p = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int b = blockIdx.y;
  const scalar_t inv = scalar_t(1) / omega1[b];
  scalar_t part = 0;
  if (p < P) {
    scalar_t carry = 0;
    for (int t = T - 1; t >= 0; --t) {
      const long off = (static_cast<long>(b) * T + t) * P + p;
      const scalar_t c = canvas[off];
      carry += grad[off] * (scalar_t(1) - c * c) * inv;
      g_strokes[off] = carry;
      part += carry * strokes[off];
    }
  }
  buf[threadIdx.x] = part;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(g_omega1 + b, -buf[0] * inv);
}

dim3 grid_for(std::int64_t B, std::int64_t P) {
  return dim3(static_cast<unsigned>((P + kThreads - 1) / kThreads), static_cast<unsigned>(B));
}

}  // namespace

torch::Tensor composite_forward_cuda(const torch::Tensor& strokes, const torch::Tensor& omega1) {
  const c10::cuda::CUDAGuard guard(strokes.device());
  const auto B = strokes.size(0), T = strokes.size(1), P = strokes.size(2);
  auto canvas = torch::empty_like(strokes);
  if (canvas.numel() == 0) return canvas;
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(strokes.scalar_type(), "composite_forward_cuda", [&] {
    composite_forward_kernel<scalar_t><<<grid_for(B, P), kThreads, 0, stream>>>(
        strokes.data_ptr<scalar_t>(), omega1.data_ptr<scalar_t>(), canvas.data_ptr<scalar_t>(),
        static_cast<int>(T), static_cast<long>(P));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return canvas;
}

CompositeGrads composite_backward_cuda(const torch::Tensor& grad_canvas, const torch::Tensor& strokes,
                                       const torch::Tensor& omega1, const torch::Tensor& canvas) {
  const c10::cuda::CUDAGuard guard(strokes.device());
  const auto B = strokes.size(0), T = strokes.size(1), P = strokes.size(2);
  auto g_strokes = torch::empty_like(strokes);
  auto g_omega1 = torch::zeros_like(omega1);
  if (strokes.numel() == 0) return {g_strokes, g_omega1};
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(strokes.scalar_type(), "composite_backward_cuda", [&] {
    composite_backward_kernel<scalar_t><<<grid_for(B, P), kThreads, 0, stream>>>(
        grad_canvas.data_ptr<scalar_t>(), strokes.data_ptr<scalar_t>(), omega1.data_ptr<scalar_t>(),
        canvas.data_ptr<scalar_t>(), g_strokes.data_ptr<scalar_t>(), g_omega1.data_ptr<scalar_t>(),
        static_cast<int>(T), static_cast<long>(P));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {g_strokes, g_omega1};
}

}  // namespace ppl::runtime::detail
