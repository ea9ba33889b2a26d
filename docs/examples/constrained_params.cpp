// Constrained parameters: the probabilities of a Categorical kept on the
// simplex, and the Cholesky factor of a Gaussian's covariance kept lower
// triangular with a positive diagonal, fitted by maximum likelihood and
// checked against the closed-form estimates.
#include <cstdio>

#include <ppl/ppl.hpp>

namespace d = ppl::dist;
namespace c = ppl::constraints;

int main() {
  torch::manual_seed(0);
  const int64_t n = 4000;
  const auto labels = d::Categorical(torch::tensor({0.1, 0.6, 0.3})).sample({n});
  const auto points = d::MultivariateNormal(torch::zeros({2}), {.scale_tril = torch::tensor({{1.0, 0.0}, {0.8, 0.5}})})
                          .sample({n});

  auto loss = [&] {
    auto probs = ppl::param("probs", torch::full({3}, 1.0 / 3), c::simplex);
    auto tril = ppl::param("scale_tril", torch::eye(2), c::lower_cholesky);
    return -(d::Categorical(probs).log_prob(labels).mean() +
             d::MultivariateNormal(torch::zeros({2}), {.scale_tril = tril}).log_prob(points).mean());
  };
  loss();  // creates the parameters
  // The optimiser moves the unconstrained coordinates the store keeps.
  torch::optim::LBFGS lbfgs(ppl::param_store().parameters(),
                            torch::optim::LBFGSOptions(1).max_iter(500).line_search_fn("strong_wolfe"));
  lbfgs.step([&] {
    lbfgs.zero_grad();
    auto l = loss();
    l.backward();
    return l;
  });
  // Maximum likelihood: the label frequencies, and the second-moment matrix
  // of the points (their mean is known to be 0).
  const auto frequencies = torch::bincount(labels, {}, 3).to(torch::kFloat) / n;
  const auto second_moment = torch::matmul(points.t(), points) / n;
  const auto probs = ppl::param_store().at("probs").detach();
  const auto tril = ppl::param_store().at("scale_tril").detach();
  const auto covariance = torch::matmul(tril, tril.t());
  std::printf("probs %.4f %.4f %.4f (frequencies %.4f %.4f %.4f)\n", probs[0].item<double>(), probs[1].item<double>(),
              probs[2].item<double>(), frequencies[0].item<double>(), frequencies[1].item<double>(),
              frequencies[2].item<double>());
  std::printf("covariance [[%.4f, %.4f], [%.4f, %.4f]] (second moment [[%.4f, %.4f], [%.4f, %.4f]])\n",
              covariance[0][0].item<double>(), covariance[0][1].item<double>(), covariance[1][0].item<double>(),
              covariance[1][1].item<double>(), second_moment[0][0].item<double>(), second_moment[0][1].item<double>(),
              second_moment[1][0].item<double>(), second_moment[1][1].item<double>());
  const bool ok = torch::allclose(probs, frequencies, 0, 1e-3) && torch::allclose(covariance, second_moment, 0, 1e-3) &&
                  c::simplex.check(probs).item<bool>() && c::lower_cholesky.check(tril).item<bool>();
  return ok ? 0 : 1;
}
