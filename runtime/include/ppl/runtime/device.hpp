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

/// Sets the number of threads of libtorch's CPU kernels and of the BLAS
/// library under them. libtorch's own setting does not reach a pthreads
/// OpenBLAS (Debian's default), whose worker threads busy-wait between
/// matrix products: without this, a process asked for one thread keeps two
/// cores busy. Throws std::invalid_argument when `n` is below 1.
void set_cpu_threads(int n);

/// Threads of the BLAS library's own pool, or 0 when the process has no
/// BLAS whose pool can be queried (OpenBLAS is looked up at run time).
int blas_threads();

}  // namespace ppl::runtime
