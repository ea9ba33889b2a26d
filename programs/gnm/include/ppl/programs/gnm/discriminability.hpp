#pragma once
/// D-Steps, discriminability: the number of optimisation steps a fixed
/// binary CNN needs to separate a model's generated images from real ones
/// with 90 % held-out accuracy. Higher is better.
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace ppl::programs::gnm {

/// Options of discriminability_steps. The discriminator and its optimiser
/// are fixed: conv(1 -> 16, 4 x 4, stride 2) - LeakyReLU(0.2) - conv(16 -> 32,
/// 4 x 4, stride 2) - LeakyReLU - conv(32 -> 64, 4 x 4, stride 2) - LeakyReLU
/// - global average pool - linear(64 -> 1); Adam with lr 1e-4, batches of
/// 16 real + 16 generated images drawn with replacement.
struct DiscriminabilityOptions {
  int64_t max_steps = 2000;       ///< cap; when not reached, `steps` is this cap (a lower bound)
  int64_t eval_every = 10;        ///< held-out accuracy after every this many steps
  double target = 0.9;            ///< accuracy to reach
  double held_out_fraction = 0.2; ///< of each set, kept for the accuracy
  uint64_t seed = 0;
  DiscriminabilityOptions& with_max_steps(int64_t v) { max_steps = v; return *this; }
  DiscriminabilityOptions& with_eval_every(int64_t v) { eval_every = v; return *this; }
  DiscriminabilityOptions& with_seed(uint64_t v) { seed = v; return *this; }
};

/// What discriminability_steps measured.
struct Discriminability {
  int64_t steps = 0;        ///< first evaluated step with accuracy >= target, else max_steps
  bool reached = false;     ///< false: `steps` is a lower bound
  double accuracy = 0;      ///< held-out accuracy at `steps`
  std::vector<std::pair<int64_t, double>> curve;  ///< (step, held-out accuracy)
};

/// D-Steps of `generated` against `real` (both [N, 1, H, W] in [0, 1], same
/// H, W, at least 10 images each). `progress(step, accuracy)` is called after
/// each evaluation when given. Deterministic given the seed; the global torch
/// generator is left as it was. Throws std::invalid_argument for mismatched
/// shapes or too few images.
Discriminability discriminability_steps(const torch::Tensor& real, const torch::Tensor& generated,
                                        const DiscriminabilityOptions& options = {},
                                        const std::function<void(int64_t, double)>& progress = {});

}  // namespace ppl::programs::gnm
