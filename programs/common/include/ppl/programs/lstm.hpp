#pragma once
/// An LSTM cell for sequences whose input is [fixed, varying], where the fixed
/// part (an image, say) is the same at every step.
///
/// `torch::nn::LSTMCell` multiplies the whole input by its input weights at
/// every step. `SplitLSTMCell` keeps the input weights as two blocks,
/// `weight_fixed` [4H, F] and `weight_varying` [4H, V]: `project(fixed)` is
/// computed once per sequence and each `step` multiplies only the varying
/// part. Each step equals `LSTMCell::forward(cat({fixed, varying}, 1), {h, c})`
/// with the input weights `cat({weight_fixed, weight_varying}, 1)`; the
/// initialisation is LSTMCell's, U(-1/sqrt(H), 1/sqrt(H)) for every tensor.
/// Gate order i, f, g, o as in libtorch.
#include <cmath>
#include <tuple>

#include <torch/torch.h>

namespace ppl::programs {

struct SplitLSTMCellImpl : torch::nn::Module {
  SplitLSTMCellImpl(int64_t fixed_size, int64_t varying_size, int64_t hidden_size) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
    auto init = [&](const char* name, std::vector<int64_t> shape) {
      return register_parameter(name, torch::empty(shape).uniform_(-bound, bound));
    };
    weight_fixed = init("weight_fixed", {4 * hidden_size, fixed_size});
    weight_varying = init("weight_varying", {4 * hidden_size, varying_size});
    weight_hh = init("weight_hh", {4 * hidden_size, hidden_size});
    bias_ih = init("bias_ih", {4 * hidden_size});
    bias_hh = init("bias_hh", {4 * hidden_size});
  }

  /// The fixed input's share of the gates, with the biases: [B, 4H].
  torch::Tensor project(const torch::Tensor& fixed) const {
    return torch::addmm(bias_ih + bias_hh, fixed, weight_fixed.t());
  }

  /// One step from the projected fixed input, the varying input [B, V] and
  /// the state (h, c): returns (h', c').
  std::tuple<torch::Tensor, torch::Tensor> step(const torch::Tensor& projected, const torch::Tensor& varying,
                                                const torch::Tensor& h, const torch::Tensor& c) const {
    auto gates = torch::addmm(torch::addmm(projected, varying, weight_varying.t()), h, weight_hh.t());
    auto g = gates.chunk(4, 1);
    auto c_next = torch::sigmoid(g[1]) * c + torch::sigmoid(g[0]) * torch::tanh(g[2]);
    auto h_next = torch::sigmoid(g[3]) * torch::tanh(c_next);
    return {h_next, c_next};
  }

  torch::Tensor weight_fixed, weight_varying, weight_hh, bias_ih, bias_hh;
};
TORCH_MODULE(SplitLSTMCell);

}  // namespace ppl::programs
