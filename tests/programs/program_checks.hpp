// Checks every image program should pass, shared by the program tests.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <ppl/inference.hpp>
#include <ppl/programs/program.hpp>

namespace ppl::test {

/// Guide then model replayed on it; checks that both visit the same latent
/// sites with equal values and finite log-densities, and returns the traces.
inline std::pair<ppl::Trace, ppl::Trace> check_same_sites(ppl::programs::ImageProgram& program,
                                                          const torch::Tensor& x) {
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto q = ppl::trace(ppl::handlers::seed(guide, 5), x);
  auto p = ppl::trace(ppl::handlers::replay(model, q), x);
  std::vector<std::string> guide_latents, model_latents;
  for (const auto& s : q)
    if (s.kind == ppl::SiteKind::sample) guide_latents.push_back(s.name);
  for (const auto& s : p)
    if (s.kind == ppl::SiteKind::sample && !s.observed) model_latents.push_back(s.name);
  std::sort(guide_latents.begin(), guide_latents.end());
  std::sort(model_latents.begin(), model_latents.end());
  CHECK(guide_latents == model_latents);
  for (const auto& name : guide_latents) {
    INFO(name);
    CHECK(torch::equal(p.site(name).value, q.site(name).value));
    CHECK(p.site(name).log_prob().isfinite().all().item<bool>());
    CHECK(q.site(name).log_prob().isfinite().all().item<bool>());
    CHECK(q.site(name).reparameterised);
  }
  REQUIRE(p.contains("x"));
  CHECK(p.site("x").observed);
  return {q, p};
}

/// Four fixed 16 x 16 images: a bright square at a different place in each.
inline torch::Tensor squares() {
  auto x = torch::zeros({4, 1, 16, 16});
  for (int i = 0; i < 4; ++i)
    x.index_put_({i, 0, torch::indexing::Slice(2 + 3 * i, 6 + 3 * i), torch::indexing::Slice(4, 9)}, 1.0);
  return x;
}

/// A copy of every parameter of the store, by name.
inline std::vector<std::pair<std::string, torch::Tensor>> snapshot_params() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& name : ppl::param_store().names())
    out.emplace_back(name, ppl::param_store().at(name).detach().clone());
  return out;
}

/// One SVI step of `program` on x (Adam, lr 1e-3): checks that the loss is
/// finite, that no parameter became NaN and that some trained parameter
/// moved; returns the loss.
inline double check_one_step(ppl::programs::ImageProgram& program, const torch::Tensor& x) {
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  ppl::infer::Svi svi(model, guide, ppl::infer::Elbo(program.elbo_options()), ppl::infer::Adam(1e-3));
  program.set_step(1);
  // The first step creates the parameters; the second is the one checked.
  svi.step(x);
  const auto before = snapshot_params();
  program.set_step(2);
  const double loss = svi.step(x);
  CHECK(std::isfinite(loss));
  int64_t moved = 0;
  for (const auto& [name, old] : before) {
    const auto now = ppl::param_store().at(name);
    INFO(name);
    CHECK_FALSE(now.isnan().any().item<bool>());
    moved += !torch::equal(now.detach(), old);
  }
  CHECK(moved > 0);
  return loss;
}

/// An ELBO loss of `program` on x and the gradient of each of `params`
/// (zeros for one the loss does not reach).
struct ElboGradients {
  torch::Tensor loss;
  std::vector<torch::Tensor> grads;
};

/// One ELBO loss (default options, a fresh baseline) of `program` on x with
/// the draws seeded by `seed`, and its gradients; clears the gradients of
/// `params` first.
inline ElboGradients elbo_gradients(ppl::programs::ImageProgram& program, const torch::Tensor& x,
                                    std::vector<torch::Tensor> params, uint64_t seed = 5) {
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
  ppl::infer::Elbo elbo;
  auto loss = ppl::handlers::seed([&](const torch::Tensor& img) { return elbo.loss(model, guide, img); }, seed)(x);
  loss.backward();
  ElboGradients out{loss.detach(), {}};
  for (auto& p : params) out.grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return out;
}

/// Checks that two computations of the same loss and gradients agree up to
/// float rounding of sums taken in another order: the loss to 1e-6 relative
/// (1e-5 absolute), each gradient within 1e-5 of its largest entry (+1e-7).
inline void check_same_gradients(const ElboGradients& got, const ElboGradients& want) {
  CHECK(torch::allclose(got.loss, want.loss, 1e-6, 1e-5));
  REQUIRE(got.grads.size() == want.grads.size());
  for (std::size_t i = 0; i < got.grads.size(); ++i) {
    const double scale = want.grads[i].abs().max().item<double>();
    const double difference = (got.grads[i] - want.grads[i]).abs().max().item<double>();
    INFO("parameter " << i << " max difference " << difference << " of " << scale);
    CHECK(difference <= 1e-5 * scale + 1e-7);
  }
}

}  // namespace ppl::test
