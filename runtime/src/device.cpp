#include <ppl/runtime/device.hpp>

#include <cstdlib>
#include <stdexcept>
#include <strings.h>
#include <vector>

#if defined(__unix__)
#include <dlfcn.h>
#include <unistd.h>
#endif

#include <fmt/format.h>

#include <torch/torch.h>

#include <ppl/config.hpp>

namespace ppl::runtime {

bool built_with_cuda() noexcept { return PPL_WITH_CUDA != 0; }

bool use_cuda_kernel(std::string_view op, std::string_view arg, const torch::Tensor& tensor) {
  const auto type = tensor.device().type();
  if (type == torch::kCPU) return false;
  if (type == torch::kCUDA) {
    if (!built_with_cuda())
      throw std::invalid_argument(fmt::format(
          "{}: {} is a CUDA tensor, but this build of ppl has no CUDA kernels "
          "(configure with -DPPL_WITH_CUDA=ON against a CUDA libtorch)",
          op, arg));
    return true;
  }
  throw std::invalid_argument(fmt::format("{}: {} is on device {}, but only cpu and cuda are supported",
                                          op, arg, tensor.device().str()));
}

namespace {
/// A function of the BLAS library loaded with libtorch, or null. Looked up
/// by name so that the build does not depend on which BLAS libtorch uses.
template <class Fn>
Fn* blas_function([[maybe_unused]] const char* name) {
#if defined(__unix__)
  return reinterpret_cast<Fn*>(dlsym(RTLD_DEFAULT, name));
#else
  return nullptr;
#endif
}
}  // namespace

void set_cpu_threads(int n) {
  if (n < 1) throw std::invalid_argument(fmt::format("set_cpu_threads: n is {}, but must be at least 1", n));
  torch::set_num_threads(n);
  if (auto* set = blas_function<void(int)>("openblas_set_num_threads")) set(n);
}

int blas_threads() {
  if (auto* get = blas_function<int()>("openblas_get_num_threads")) return get();
  return 0;
}

std::string blas_core() {
  auto* name = blas_function<char*()>("openblas_get_corename");
  const char* core = name ? name() : nullptr;
  return core ? std::string(core) : std::string();
}

std::string faster_blas_core(std::string_view chosen, bool avx512, bool avx2_fma, bool avx) {
  if (chosen.size() != 8 || strncasecmp(chosen.data(), "prescott", 8) != 0) return {};
  if (avx512) return "SkylakeX";
  if (avx2_fma) return "Haswell";
  if (avx) return "Sandybridge";
  return {};
}

void rerun_with_runtime_defaults([[maybe_unused]] char** argv) {
#if defined(__linux__)
  if (argv == nullptr) return;
  std::vector<const char*> set;  // the variables this call sets, to undo if the rerun does not start
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && setenv("OMP_WAIT_POLICY", "passive", 1) == 0)
    set.push_back("OMP_WAIT_POLICY");
#if defined(__x86_64__) || defined(__i386__)
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const auto core = faster_blas_core(blas_core(), avx512, avx2_fma, __builtin_cpu_supports("avx"));
    if (!core.empty() && setenv("OPENBLAS_CORETYPE", core.c_str(), 1) == 0) set.push_back("OPENBLAS_CORETYPE");
  }
#endif
  if (set.empty()) return;
  execv("/proc/self/exe", argv);
  for (const char* name : set) unsetenv(name);  // the rerun did not start: go on as loaded
#endif
}

}  // namespace ppl::runtime
