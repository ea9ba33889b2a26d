// D-Steps: how many steps a fixed discriminator needs to tell generated
// images from real ones.
#include <ppl/programs/gnm/discriminability.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "generator_scope.hpp"

namespace ppl::programs::gnm {
namespace nn = torch::nn;

namespace {

/// The discriminator of D-Steps (see DiscriminabilityOptions).
nn::Sequential make_discriminator() {
  auto conv = [](int64_t in, int64_t out) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, 4).stride(2).padding(1));
  };
  auto leaky = [] { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)); };
  return nn::Sequential(conv(1, 16), leaky(), conv(16, 32), leaky(), conv(32, 64), leaky(),
                        nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})), nn::Flatten(), nn::Linear(64, 1));
}

}  // namespace

Discriminability discriminability_steps(const torch::Tensor& real, const torch::Tensor& generated,
                                        const DiscriminabilityOptions& options,
                                        const std::function<void(int64_t, double)>& progress) {
  constexpr int64_t kHalfBatch = 16;
  constexpr double kLearningRate = 1e-4;
  if (!real.defined() || !generated.defined() || real.dim() != 4 || generated.dim() != 4 ||
      real.sizes().slice(1) != generated.sizes().slice(1) || real.size(1) != 1)
    throw std::invalid_argument(
        "discriminability_steps: real and generated images must both be [N, 1, H, W] of one size");
  if (real.size(0) < 10 || generated.size(0) < 10)
    throw std::invalid_argument(fmt::format("discriminability_steps: {} real and {} generated images, but each set "
                                            "needs at least 10", real.size(0), generated.size(0)));
  if (options.max_steps < 1 || options.eval_every < 1 ||
      !(options.held_out_fraction > 0 && options.held_out_fraction < 1))
    throw std::invalid_argument("discriminability_steps: max_steps and eval_every must be positive and "
                                "held_out_fraction in (0, 1)");
  DefaultGeneratorScope seed(options.seed + 1);
  auto split = [&](const torch::Tensor& x) {
    const auto held = std::max<int64_t>(1, std::llround(options.held_out_fraction * static_cast<double>(x.size(0))));
    auto c = x.to(torch::kCPU, torch::kFloat32).clamp(0, 1);
    return std::pair{c.narrow(0, 0, x.size(0) - held), c.narrow(0, x.size(0) - held, held)};
  };
  const auto real_sets = split(real), gen_sets = split(generated);
  const auto &real_train = real_sets.first, &real_test = real_sets.second;
  const auto &gen_train = gen_sets.first, &gen_test = gen_sets.second;
  auto net = make_discriminator();
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(kLearningRate));
  std::mt19937_64 rng(options.seed);
  auto draw = [&](const torch::Tensor& x) {
    std::uniform_int_distribution<int64_t> pick(0, x.size(0) - 1);
    std::vector<int64_t> idx(kHalfBatch);
    for (auto& i : idx) i = pick(rng);
    return x.index_select(0, torch::tensor(idx, torch::kInt64));
  };
  // Balanced held-out accuracy: the mean of the two per-set accuracies.
  auto accuracy = [&] {
    torch::NoGradGuard no_grad;
    const double on_real = (net->forward(real_test).squeeze(1) > 0).to(torch::kDouble).mean().item<double>();
    const double on_gen = (net->forward(gen_test).squeeze(1) <= 0).to(torch::kDouble).mean().item<double>();
    return (on_real + on_gen) / 2;
  };
  const auto targets = torch::cat({torch::ones({kHalfBatch}), torch::zeros({kHalfBatch})});
  Discriminability out;
  out.steps = options.max_steps;
  for (int64_t step = 1; step <= options.max_steps; ++step) {
    auto logits = net->forward(torch::cat({draw(real_train), draw(gen_train)})).squeeze(1);
    auto loss = torch::binary_cross_entropy_with_logits(logits, targets);
    adam.zero_grad();
    loss.backward();
    adam.step();
    if (step % options.eval_every != 0 && step != options.max_steps) continue;
    const double acc = accuracy();
    out.curve.emplace_back(step, acc);
    out.accuracy = acc;
    if (progress) progress(step, acc);
    if (acc >= options.target) {
      out.steps = step;
      out.reached = true;
      break;
    }
  }
  return out;
}

}  // namespace ppl::programs::gnm
