#pragma once
/// Device dispatch helpers shared by the runtime's operators.
#include <string_view>

#include <torch/types.h>

namespace ppl::runtime {

/// True when this build has the runtime's CUDA kernels (PPL_WITH_CUDA).
bool built_with_cuda() noexcept;

/// True when `tensor` should go to the CUDA kernels of an operator.
/// Throws std::invalid_argument naming `op` and `arg` when the tensor is on
/// CUDA but this build has no CUDA kernels, or on a device no kernel serves.
bool use_cuda_kernel(std::string_view op, std::string_view arg, const torch::Tensor& tensor);

}  // namespace ppl::runtime
