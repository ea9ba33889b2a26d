#pragma once
// Central-difference gradient check for the runtime tests (torch has no C++
// gradcheck). The scalar checked is sum(f(inputs) * weights) for fixed random
// weights, so every output element contributes.
#include <functional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <torch/torch.h>

namespace ppl_test {

using TensorFn = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

/// A fresh leaf copy of `x` on `device` that records its gradient. `x` itself
/// is left alone, also when it is already on `device` (where `to` would hand
/// back `x` itself), so one input can feed a CPU run and then a CUDA run.
inline torch::Tensor leaf_on(const torch::Tensor& x, const torch::Device& device) {
  return x.detach().to(device).clone().set_requires_grad(true);
}

/// Checks d sum(f(x) * r) / d x[i] of every element of every input named in
/// `names` against central differences with step `eps`.
inline void check_gradients(const TensorFn& f, std::vector<torch::Tensor> inputs,
                            const std::vector<std::string>& names, double eps = 1e-6,
                            double rtol = 1e-4, double atol = 1e-6) {
  for (auto& x : inputs) x = leaf_on(x, x.device());
  const auto out = f(inputs);
  const auto weights = torch::randn_like(out);
  (out * weights).sum().backward();
  for (std::size_t a = 0; a < inputs.size(); ++a) {
    const auto analytic = inputs[a].grad().defined() ? inputs[a].grad().clone()
                                                     : torch::zeros_like(inputs[a]);
    auto numeric = torch::zeros_like(inputs[a]);
    torch::NoGradGuard guard;
    std::vector<torch::Tensor> probe;
    for (const auto& x : inputs) probe.push_back(x.detach().clone());
    auto flat = probe[a].view({-1});
    auto num_flat = numeric.view({-1});
    for (std::int64_t i = 0; i < flat.numel(); ++i) {
      const double x0 = flat[i].item<double>();
      flat[i] = x0 + eps;
      const double up = (f(probe) * weights).sum().item<double>();
      flat[i] = x0 - eps;
      const double down = (f(probe) * weights).sum().item<double>();
      flat[i] = x0;
      num_flat[i] = (up - down) / (2 * eps);
    }
    const auto err = (analytic - numeric).abs();
    const auto tol = atol + rtol * numeric.abs();
    const bool ok = (err <= tol).all().item<bool>();
    INFO("gradient of " << names[a] << ": max |analytic - numeric| = " << err.max().item<double>()
                        << "\nanalytic:\n" << analytic << "\nnumeric:\n" << numeric);
    CHECK(ok);
  }
}

}  // namespace ppl_test
