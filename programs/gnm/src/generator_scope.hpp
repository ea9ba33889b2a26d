#pragma once
// A private helper of GNM's evaluations: a seeded default CPU generator.
#include <cstdint>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

namespace ppl::programs::gnm {

/// Seeds torch's default CPU generator (weight initialisation) and restores
/// its state on destruction, so an evaluation leaves the caller's stream alone.
class DefaultGeneratorScope {
 public:
  explicit DefaultGeneratorScope(uint64_t seed) : gen_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    state_ = gen_.get_state();
    gen_.set_current_seed(seed);
  }
  ~DefaultGeneratorScope() {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    gen_.set_state(state_);
  }
  DefaultGeneratorScope(const DefaultGeneratorScope&) = delete;
  DefaultGeneratorScope& operator=(const DefaultGeneratorScope&) = delete;

 private:
  at::Generator gen_;
  torch::Tensor state_;
};

}  // namespace ppl::programs::gnm
