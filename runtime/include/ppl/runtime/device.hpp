#pragma once
/// Device dispatch helpers shared by the runtime's operators.
#include <string>
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

/// The kernel family OpenBLAS chose when it loaded ("SkylakeX", "Haswell",
/// "Prescott", ...), or "" when the process has no OpenBLAS.
std::string blas_core();

/// The OpenBLAS kernel family to ask for, or "" to leave OpenBLAS's choice.
/// OpenBLAS picks its kernels from the CPU model when it loads; version
/// 0.3.21 (Debian 12) does not know recent Intel models and falls back to
/// its Prescott (SSE3) kernels, whose sgemm is 3-4 times slower than the
/// AVX-512 ones on such a CPU. So a chosen "Prescott" (any case) on a CPU with
/// AVX-512 (F, BW, DQ, VL) gives "SkylakeX", with AVX2 and FMA "Haswell",
/// with AVX "Sandybridge"; any other choice, or a CPU without AVX, gives "".
std::string faster_blas_core(std::string_view chosen, bool avx512, bool avx2_fma, bool avx);

/// Runs the program again from the start, in place of this process, with
/// the runtime settings that are fixed once the libraries have loaded, for
/// each one the environment does not set already (the user's choice wins;
/// the rerun sees them set, so it runs once):
/// - OMP_WAIT_POLICY=passive: libtorch's OpenMP workers sleep between
///   parallel regions instead of spinning, which on a machine with as many
///   threads as cores starved the BLAS pool and the main thread (AIR on 2
///   threads of 2 cores: 211 ms a step spinning, 81 ms passive);
/// - OPENBLAS_CORETYPE=faster_blas_core(blas_core(), <this CPU>), when that
///   is not empty.
/// Call it first in main, before any output or thread; `argv` is main's.
/// Returns, doing nothing, when there is nothing to set and when the rerun
/// cannot start.
void rerun_with_runtime_defaults(char** argv);

}  // namespace ppl::runtime
