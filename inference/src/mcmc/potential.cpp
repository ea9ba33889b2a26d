// The potential energy of a model's continuous latents (see potential.hpp).
#include <ppl/infer/mcmc/potential.hpp>

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <torch/torch.h>

#include <ppl/core/check.hpp>

namespace ppl::infer::mcmc {

torch::Tensor log_joint(const Trace& trace) {
  torch::Tensor total;
  for (const auto& site : trace) {
    if (!site.is_random()) continue;
    auto lp = site.log_prob_sum();
    total = total.defined() ? total + lp : lp;
  }
  return total.defined() ? total : torch::zeros({}, torch::kDouble);
}

std::vector<LatentSite> model_latent_sites(const ModelRunner& runner, std::string_view who, const ValueMap& init_values) {
  const auto prototype = runner({});
  auto sites = latent_sites(
      prototype,
      {.who = who,
       .discrete_hint = fmt::format("{} samples continuous latents (sum discrete ones out with enumeration, or "
                                    "marginalise them in the model)",
                                    who),
       .subsample_hint = fmt::format("{} needs the whole plate (the potential is the full joint density)", who),
       .init_values = &init_values});
  for (const auto& [name, value] : init_values) {
    bool found = false;
    for (const auto& s : sites) found = found || s.name == name;
    if (!found) {
      std::vector<std::string> names;
      for (const auto& s : sites) names.push_back("\"" + s.name + "\"");
      throw SiteError(fmt::format("{}: init names site \"{}\", which is not a latent site of the model (latent sites: "
                                  "{})",
                                  who, name, fmt::join(names, ", ")));
    }
  }
  if (sites.empty()) throw ArgumentError(fmt::format("{}: the model has no latent sample site to sample", who));
  return sites;
}

ModelPotential::ModelPotential(ModelRunner runner, std::vector<LatentSite> sites)
    : runner_(std::move(runner)), sites_(std::move(sites)), dim_(latent_dim(sites_)) {}

double ModelPotential::operator()(const std::vector<double>& q, std::vector<double>& grad) {
  PPL_ASSERT(static_cast<int64_t>(q.size()) == dim_);
  torch::AutoGradMode grad_mode(true);
  auto u = torch::tensor(q, torch::kDouble).requires_grad_(true);
  ValueMap values;
  torch::Tensor log_det;
  const auto constrained = constrain(sites_, u);
  for (size_t i = 0; i < sites_.size(); ++i) {
    const auto& [value, ladj] = constrained[i];
    values[sites_[i].name] = value.to(sites_[i].options.dtype());
    if (ladj.defined()) log_det = log_det.defined() ? log_det + ladj.sum() : ladj.sum();
  }
  auto log_density = log_joint(runner_(values)).to(torch::kDouble);
  if (log_det.defined()) log_density = log_density + log_det;
  const double value = -log_density.item<double>();
  if (!std::isfinite(value)) return std::numeric_limits<double>::infinity();
  const auto g = torch::autograd::grad({log_density}, {u}, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true)[0];
  grad.resize(static_cast<size_t>(dim_));
  if (!g.defined()) {
    std::fill(grad.begin(), grad.end(), 0.0);
    return value;
  }
  const auto gd = g.to(torch::kDouble).contiguous();
  const auto* gp = gd.data_ptr<double>();
  for (int64_t i = 0; i < dim_; ++i) {
    grad[static_cast<size_t>(i)] = -gp[i];
    if (!std::isfinite(gp[i])) return std::numeric_limits<double>::infinity();
  }
  return value;
}

ValueMap ModelPotential::values(const std::vector<double>& q) const {
  torch::NoGradGuard no_grad;
  const auto u = torch::tensor(q, torch::kDouble);
  const auto constrained = constrain(sites_, u);
  ValueMap out;
  for (size_t i = 0; i < sites_.size(); ++i) out[sites_[i].name] = constrained[i].first.to(sites_[i].options.dtype());
  return out;
}

}  // namespace ppl::infer::mcmc
