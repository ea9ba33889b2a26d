#pragma once
/// Canvas compositing of per-stroke images (seed 000, Appendix B.2, Eq. 14-15).
#include <torch/types.h>

namespace ppl::runtime {

/// The canvas after each stroke, all prefixes at once:
///   canvas[b, t, h, w] = tanh(sum_{t' <= t} strokes[b, t', h, w] / omega1[b])   (Eq. 15)
///
/// strokes: [B, T, H, W] (typically render_strokes' output); omega1: [B],
/// positive. Returns [B, T, H, W]; canvas[:, T-1] is the finished image.
/// Differentiable in strokes and omega1. On CPU a fused kernel whose backward
/// needs only the inputs and the output (a reverse cumulative sum), so no
/// intermediate of size B T H W is kept; on CUDA the same as a CUDA kernel.
/// Throws std::invalid_argument on a wrong rank, mismatched B, mixed dtypes or
/// devices, a non-floating dtype or a non-positive omega1.
torch::Tensor composite(const torch::Tensor& strokes, const torch::Tensor& omega1);

}  // namespace ppl::runtime
