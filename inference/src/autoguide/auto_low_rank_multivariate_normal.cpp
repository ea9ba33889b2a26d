#include <ppl/infer/autoguide/auto_low_rank_multivariate_normal.hpp>

#include <cmath>

#include <fmt/format.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <ppl/constraints.hpp>
#include <ppl/core/sites.hpp>
#include <ppl/dist/low_rank_multivariate_normal.hpp>

namespace ppl::infer {

AutoLowRankMultivariateNormalCore::AutoLowRankMultivariateNormalCore(int64_t rank, AutoGuideOptions options)
    : AutoContinuous(std::move(options), "AutoLowRankMultivariateNormal"), rank_(rank) {
  if (rank < 1) throw ArgumentError(fmt::format("AutoLowRankMultivariateNormal: rank is {}, but must be at least 1", rank));
}

std::shared_ptr<dist::Distribution> AutoLowRankMultivariateNormalCore::latent_distribution() const {
  const auto init = initial_loc();
  const auto d = init.size(0);
  auto loc = ppl::param(param_name("", "loc"), init);
  // Half of the initial variance init_scale^2 in the diagonal, half in W W^T
  // (W with N(0, 1 / rank) entries, scaled), as Pyro starts it; W is drawn
  // from a generator of its own (the same every call, and the program's
  // random stream is left alone). W = 0 would be a saddle point.
  const double s = options().init_scale;
  auto w = [&] {
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(0x5EED);
    return torch::randn({d, rank_}, gen, torch::kDouble).to(init.options()) *
           (s * std::sqrt(0.5 / static_cast<double>(rank_)));
  }();
  auto cov_factor = ppl::param(param_name("", "cov_factor"), w);
  auto cov_diag = ppl::param(param_name("", "cov_diag"), torch::full({d}, 0.5 * s * s, init.options()),
                             constraints::positive);
  return std::make_shared<dist::LowRankMultivariateNormal>(loc, cov_factor, cov_diag);
}

std::pair<torch::Tensor, torch::Tensor> AutoLowRankMultivariateNormalCore::marginals() const {
  auto dist = latent_distribution();
  const auto& lr = static_cast<const dist::LowRankMultivariateNormal&>(*dist);
  return {lr.mean(), lr.variance().sqrt()};
}

}  // namespace ppl::infer
