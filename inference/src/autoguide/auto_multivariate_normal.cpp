#include <ppl/infer/autoguide/auto_multivariate_normal.hpp>

#include <torch/torch.h>

#include <ppl/constraints.hpp>
#include <ppl/core/sites.hpp>
#include <ppl/dist/multivariate_normal.hpp>

namespace ppl::infer {

AutoMultivariateNormalCore::AutoMultivariateNormalCore(AutoGuideOptions options)
    : AutoContinuous(std::move(options), "AutoMultivariateNormal") {}

namespace {
struct Params {
  torch::Tensor loc, scale_tril;
};
Params params(const std::string& loc_name, const std::string& tril_name, const torch::Tensor& init, double init_scale) {
  auto loc = ppl::param(loc_name, init);
  auto tril = ppl::param(tril_name, init_scale * torch::eye(init.size(0), init.options()), constraints::lower_cholesky);
  return {loc, tril};
}
}  // namespace

std::shared_ptr<dist::Distribution> AutoMultivariateNormalCore::latent_distribution() const {
  const auto p = params(param_name("", "loc"), param_name("", "scale_tril"), initial_loc(), options().init_scale);
  return std::make_shared<dist::MultivariateNormal>(p.loc, dist::MultivariateNormalScale{.scale_tril = p.scale_tril});
}

std::pair<torch::Tensor, torch::Tensor> AutoMultivariateNormalCore::marginals() const {
  const auto p = params(param_name("", "loc"), param_name("", "scale_tril"), initial_loc(), options().init_scale);
  return {p.loc, p.scale_tril.pow(2).sum(-1).sqrt()};
}

}  // namespace ppl::infer
