#include <ppl/runtime/device.hpp>

#include <stdexcept>

#include <fmt/format.h>

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

}  // namespace ppl::runtime
