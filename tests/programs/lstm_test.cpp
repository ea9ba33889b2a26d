// SplitLSTMCell against torch::nn::LSTMCell on the concatenated input.
#include <catch2/catch.hpp>

#include <ppl/programs/lstm.hpp>

TEST_CASE("SplitLSTMCell steps equal LSTMCell on fixed and varying inputs, values and gradients", "[programs][lstm]") {
  torch::manual_seed(3);
  ppl::programs::SplitLSTMCell split(7, 3, 5);
  torch::nn::LSTMCell cell(7 + 3, 5);
  {
    torch::NoGradGuard no_grad;
    cell->weight_ih.copy_(torch::cat({split->weight_fixed, split->weight_varying}, 1));
    cell->weight_hh.copy_(split->weight_hh);
    cell->bias_ih.copy_(split->bias_ih);
    cell->bias_hh.copy_(split->bias_hh);
  }
  auto fixed = torch::randn({4, 7}), h0 = torch::randn({4, 5}), c0 = torch::randn({4, 5});
  auto v1 = torch::randn({4, 3}), v2 = torch::randn({4, 3});

  // Two steps through the reference cell.
  auto [h1, c1] = cell->forward(torch::cat({fixed, v1}, 1), std::make_tuple(h0, c0));
  auto [h2, c2] = cell->forward(torch::cat({fixed, v2}, 1), std::make_tuple(h1, c1));
  auto ref = torch::autograd::grad({h2.pow(2).sum() + c2.sum()}, cell->parameters());

  // The same two steps with the fixed part projected once.
  auto projected = split->project(fixed);
  auto [k1, d1] = split->step(projected, v1, h0, c0);
  auto [k2, d2] = split->step(projected, v2, k1, d1);
  CHECK(torch::allclose(k2, h2, 1e-5, 1e-6));
  CHECK(torch::allclose(d2, c2, 1e-5, 1e-6));
  auto g = torch::autograd::grad({k2.pow(2).sum() + d2.sum()},
                                 {split->weight_fixed, split->weight_varying, split->weight_hh, split->bias_ih,
                                  split->bias_hh});
  // LSTMCell's parameters: weight_ih, weight_hh, bias_ih, bias_hh.
  CHECK(torch::allclose(torch::cat({g[0], g[1]}, 1), ref[0], 1e-5, 1e-6));
  CHECK(torch::allclose(g[2], ref[1], 1e-5, 1e-6));
  CHECK(torch::allclose(g[3], ref[2], 1e-5, 1e-6));
  CHECK(torch::allclose(g[4], ref[3], 1e-5, 1e-6));

  // LSTMCell's initialisation range.
  CHECK(split->weight_fixed.abs().max().item<double>() <= 1 / std::sqrt(5.0));
}
