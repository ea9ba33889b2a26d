// CUDA kernels of render_strokes, the twins of render_cpu.cpp: one thread
// block per stroke. The forward evaluates the S Gaussian splats per pixel,
// reduces the stroke's maximum in the block and normalises in place; the
// backward recomputes the splats (nothing of size S x H x W is stored) and
// reduces the gradients of the curve samples over pixels.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "render_kernels.hpp"

namespace ppl::runtime::detail {
namespace {

constexpr int kThreads = 256;  // a multiple of kWarp
constexpr int kWarp = 32;

// Block-wide sum; every thread gets the result. `buf` holds kThreads values.
template <typename scalar_t>
__device__ scalar_t block_sum(scalar_t v, scalar_t* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
    __syncthreads();
  }
  const scalar_t r = buf[0];
  __syncthreads();
  return r;
}

// Block-wide maximum with the lowest index among ties (as std::max_element).
template <typename scalar_t>
__device__ void block_argmax(scalar_t& v, int& idx, scalar_t* vbuf, int* ibuf) {
  vbuf[threadIdx.x] = v;
  ibuf[threadIdx.x] = idx;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      const scalar_t ov = vbuf[threadIdx.x + stride];
      const int oi = ibuf[threadIdx.x + stride];
      if (ov > vbuf[threadIdx.x] || (ov == vbuf[threadIdx.x] && oi < ibuf[threadIdx.x])) {
        vbuf[threadIdx.x] = ov;
        ibuf[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  v = vbuf[0];
  idx = ibuf[0];
  __syncthreads();
}

// Curve samples of stroke i into curve[0..S) (x) and curve[S..2S) (y), Eq. 10.
template <typename scalar_t>
__device__ void sample_curve(const scalar_t* pts, const scalar_t* bern, scalar_t* curve, int K, int S) {
  for (int n = threadIdx.x; n < S; n += blockDim.x) {
    scalar_t x = 0, y = 0;
    for (int k = 0; k < K; ++k) {
      x += bern[n * K + k] * pts[2 * k];
      y += bern[n * K + k] * pts[2 * k + 1];
    }
    curve[n] = x;
    curve[S + n] = y;
  }
  __syncthreads();
}

// Eq. 11 at pixel p.
template <typename scalar_t>
__device__ scalar_t splat(const scalar_t* curve, int S, int p, int H, int W, scalar_t inv2s2) {
  const scalar_t x = static_cast<scalar_t>(p % W) / static_cast<scalar_t>(W);
  const scalar_t y = static_cast<scalar_t>(p / W) / static_cast<scalar_t>(H);
  scalar_t acc = 0;
  for (int n = 0; n < S; ++n) {
    const scalar_t dx = x - curve[n], dy = y - curve[S + n];
    acc += exp(-(dx * dx + dy * dy) * inv2s2);
  }
  return acc;
}

template <typename scalar_t>
__global__ void render_forward_kernel(const scalar_t* __restrict__ points, const scalar_t* __restrict__ sigma,
                                      const scalar_t* __restrict__ omega0, const scalar_t* __restrict__ bern,
                                      scalar_t* __restrict__ curves, scalar_t* __restrict__ out, int K, int S,
                                      int H, int W) {
  __shared__ scalar_t vbuf[kThreads];
  __shared__ int ibuf[kThreads];
  const int i = blockIdx.x, P = H * W;
  scalar_t* curve = curves + static_cast<long>(i) * 2 * S;
  scalar_t* o = out + static_cast<long>(i) * P;
  sample_curve(points + static_cast<long>(i) * K * 2, bern, curve, K, S);
  const scalar_t s = sigma[i];
  const scalar_t inv2s2 = scalar_t(1) / (scalar_t(2) * s * s);
  scalar_t m = 0;
  int arg = 0;
  for (int p = threadIdx.x; p < P; p += blockDim.x) {
    const scalar_t r = splat(curve, S, p, H, W, inv2s2);
    o[p] = r;
    if (r > m) m = r, arg = p;
  }
  block_argmax(m, arg, vbuf, ibuf);
  const scalar_t scale = normalisable(m, omega0[i]) ? scalar_t(1) / (m * omega0[i]) : scalar_t(0);
  for (int p = threadIdx.x; p < P; p += blockDim.x) o[p] = tanh(o[p] * scale);
}

template <typename scalar_t>
__global__ void render_backward_kernel(const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ points,
                                       const scalar_t* __restrict__ sigma, const scalar_t* __restrict__ omega0,
                                       const scalar_t* __restrict__ bern, scalar_t* __restrict__ curves,
                                       scalar_t* __restrict__ graw_all, scalar_t* __restrict__ gsamples,
                                       scalar_t* __restrict__ g_points, scalar_t* __restrict__ g_sigma,
                                       scalar_t* __restrict__ g_omega0, int K, int S, int H, int W,
                                       bool detach_max) {
  __shared__ scalar_t vbuf[kThreads];
  __shared__ int ibuf[kThreads];
  __shared__ scalar_t rx[kThreads], ry[kThreads], r2[kThreads];
  const int i = blockIdx.x, P = H * W;
  scalar_t* curve = curves + static_cast<long>(i) * 2 * S;
  scalar_t* graw = graw_all + static_cast<long>(i) * P;
  scalar_t* gsmp = gsamples + static_cast<long>(i) * 3 * S;  // d/dbx, d/dby, sigma terms
  const scalar_t* g = grad_out + static_cast<long>(i) * P;
  sample_curve(points + static_cast<long>(i) * K * 2, bern, curve, K, S);
  const scalar_t s = sigma[i];
  const scalar_t inv2s2 = scalar_t(1) / (scalar_t(2) * s * s);
  scalar_t m = 0;
  int arg = 0;
  for (int p = threadIdx.x; p < P; p += blockDim.x) {
    const scalar_t r = splat(curve, S, p, H, W, inv2s2);
    graw[p] = r;
    if (r > m) m = r, arg = p;
  }
  block_argmax(m, arg, vbuf, ibuf);
  if (!normalisable(m, omega0[i])) {  // an empty stroke: constant output, zero gradients
    for (int t = threadIdx.x; t < 2 * K; t += blockDim.x) g_points[static_cast<long>(i) * 2 * K + t] = 0;
    if (threadIdx.x == 0) g_sigma[i] = 0, g_omega0[i] = 0;
    return;
  }
  // Eq. 13 and 12 backwards.
  const scalar_t w0 = omega0[i];
  const scalar_t scale = scalar_t(1) / (m * w0);
  scalar_t part = 0;
  for (int p = threadIdx.x; p < P; p += blockDim.x) {
    const scalar_t r = graw[p];
    const scalar_t o = tanh(r * scale);
    const scalar_t gz = g[p] * (scalar_t(1) - o * o) * scale;
    graw[p] = gz;
    part += gz * r;
  }
  const scalar_t total = block_sum(part, vbuf);
  if (threadIdx.x == 0) {
    if (!detach_max) graw[arg] += -total / m;
    g_omega0[i] = -total / w0;
  }
  __syncthreads();
  // Eq. 11 backwards: one warp per curve sample, its lanes striding over the
  // pixels (coalesced reads of graw), then a tree reduction within the warp.
  // The loop over samples is block-uniform so every thread meets each barrier.
  const scalar_t inv_s2 = scalar_t(1) / (s * s);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = kThreads / kWarp;
  for (int base = 0; base < S; base += warps) {
    const int n = base + warp;
    scalar_t ax = 0, ay = 0, a2 = 0;
    if (n < S) {
      const scalar_t bx = curve[n], by = curve[S + n];
      for (int p = lane; p < P; p += kWarp) {
        const scalar_t dx = static_cast<scalar_t>(p % W) / static_cast<scalar_t>(W) - bx;
        const scalar_t dy = static_cast<scalar_t>(p / W) / static_cast<scalar_t>(H) - by;
        const scalar_t d2 = dx * dx + dy * dy;
        const scalar_t t = graw[p] * exp(-d2 * inv2s2);
        ax += t * dx;
        ay += t * dy;
        a2 += t * d2;
      }
    }
    rx[threadIdx.x] = ax;
    ry[threadIdx.x] = ay;
    r2[threadIdx.x] = a2;
    __syncthreads();
    for (int off = kWarp / 2; off > 0; off /= 2) {
      if (lane < off) {
        rx[threadIdx.x] += rx[threadIdx.x + off];
        ry[threadIdx.x] += ry[threadIdx.x + off];
        r2[threadIdx.x] += r2[threadIdx.x + off];
      }
      __syncthreads();
    }
    if (lane == 0 && n < S) {
      gsmp[n] = rx[threadIdx.x] * inv_s2;
      gsmp[S + n] = ry[threadIdx.x] * inv_s2;
      gsmp[2 * S + n] = r2[threadIdx.x];
    }
    __syncthreads();
  }
  scalar_t a2 = 0;
  for (int n = threadIdx.x; n < S; n += blockDim.x) a2 += gsmp[2 * S + n];
  const scalar_t a2_total = block_sum(a2, vbuf);
  if (threadIdx.x == 0) g_sigma[i] = a2_total * inv_s2 / s;
  for (int t = threadIdx.x; t < 2 * K; t += blockDim.x) {
    const int k = t / 2, c = t % 2;
    scalar_t acc = 0;
    for (int n = 0; n < S; ++n) acc += bern[n * K + k] * gsmp[c * S + n];
    g_points[static_cast<long>(i) * 2 * K + t] = acc;
  }
}

torch::Tensor bernstein_on(const torch::Tensor& like, std::int64_t S, std::int64_t K) {
  const auto w = bernstein_weights(S, K);
  return torch::tensor(w, torch::kFloat64).view({S, K}).to(like.options());
}

}  // namespace

torch::Tensor render_forward_cuda(const torch::Tensor& points, const torch::Tensor& sigma,
                                  const torch::Tensor& omega0, std::int64_t H, std::int64_t W,
                                  std::int64_t S) {
  const c10::cuda::CUDAGuard guard(points.device());
  const auto N = points.size(0), K = points.size(1);
  auto out = torch::empty({N, H, W}, points.options());
  if (N == 0) return out;
  const auto bern = bernstein_on(points, S, K);
  auto curves = torch::empty({N, 2, S}, points.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "render_forward_cuda", [&] {
    render_forward_kernel<scalar_t><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(
        points.data_ptr<scalar_t>(), sigma.data_ptr<scalar_t>(), omega0.data_ptr<scalar_t>(),
        bern.data_ptr<scalar_t>(), curves.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), static_cast<int>(K),
        static_cast<int>(S), static_cast<int>(H), static_cast<int>(W));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

RenderGrads render_backward_cuda(const torch::Tensor& grad_out, const torch::Tensor& points,
                                 const torch::Tensor& sigma, const torch::Tensor& omega0, std::int64_t H,
                                 std::int64_t W, std::int64_t S, bool detach_max) {
  const c10::cuda::CUDAGuard guard(points.device());
  const auto N = points.size(0), K = points.size(1);
  auto g_points = torch::zeros_like(points);
  auto g_sigma = torch::zeros_like(sigma);
  auto g_omega0 = torch::zeros_like(omega0);
  if (N == 0) return {g_points, g_sigma, g_omega0};
  const auto bern = bernstein_on(points, S, K);
  auto curves = torch::empty({N, 2, S}, points.options());
  auto graw = torch::empty({N, H * W}, points.options());
  auto gsamples = torch::empty({N, 3, S}, points.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "render_backward_cuda", [&] {
    render_backward_kernel<scalar_t><<<static_cast<unsigned>(N), kThreads, 0, stream>>>(
        grad_out.data_ptr<scalar_t>(), points.data_ptr<scalar_t>(), sigma.data_ptr<scalar_t>(),
        omega0.data_ptr<scalar_t>(), bern.data_ptr<scalar_t>(), curves.data_ptr<scalar_t>(),
        graw.data_ptr<scalar_t>(), gsamples.data_ptr<scalar_t>(), g_points.data_ptr<scalar_t>(),
        g_sigma.data_ptr<scalar_t>(), g_omega0.data_ptr<scalar_t>(), static_cast<int>(K), static_cast<int>(S),
        static_cast<int>(H), static_cast<int>(W), detach_max);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {g_points, g_sigma, g_omega0};
}

}  // namespace ppl::runtime::detail
