// The potential energy of a model's continuous latents (see potential.hpp).
#include <ppl/infer/mcmc/potential.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <torch/torch.h>

#include <ppl/core/check.hpp>

#include "../enum/elimination.hpp"

namespace ppl::infer::mcmc {

torch::Tensor log_joint(const Trace& trace) {
  torch::Tensor total;
  const auto add = [&](const torch::Tensor& lp) { total = total.defined() ? total + lp : lp; };
  const bool enumerated = std::any_of(trace.begin(), trace.end(), [](const Site& s) { return s.enumeration.enumerated(); });
  if (enumerated) {
    TracePair pair;
    pair.model = trace;
    EliminationStats stats;
    for (const auto& term : enumeration::sum_out(pair, enumeration::Sum::model, stats, "MCMC")) add(term.log_value.sum());
  } else {
    for (const auto& site : trace)
      if (site.is_random()) add(site.log_prob_sum());
  }
  return total.defined() ? total : torch::zeros({}, torch::kDouble);
}

std::vector<LatentSite> model_latent_sites(const ModelRunner& runner, std::string_view who, const ValueMap& init_values,
                                           int max_plate_nesting) {
  const auto prototype = runner({});
  auto sites = latent_sites(
      prototype,
      {.who = who,
       .discrete_hint = fmt::format("{} samples continuous latents (mark the site .enumerate to sum it out exactly, "
                                    "or marginalise it in the model)",
                                    who),
       .subsample_hint = fmt::format("{} needs the whole plate (the potential is the full joint density)", who),
       .init_values = &init_values,
       .skip_enumerated = true});
  // A continuous latent drawn along an enumeration dim has one value per
  // value of an enumerated site: it cannot be one point of the sampler.
  for (const auto& s : sites) {
    const auto& site = *prototype.find(s.name);
    const auto event_rank = static_cast<int64_t>(site.dist->event_shape().size());
    const auto sizes = site.value.sizes();
    for (int64_t d = 0; d + event_rank + max_plate_nesting < static_cast<int64_t>(sizes.size()); ++d)
      if (sizes[static_cast<size_t>(d)] > 1)
        throw ArgumentError(fmt::format("{}: site \"{}\" has shape [{}], of size {} at dim {}, left of its {} plate "
                                        "dim(s) (max_plate_nesting): a continuous latent must not depend on an "
                                        "enumerated site, nor lie in more plates than max_plate_nesting",
                                        who, s.name, fmt::join(sizes, ", "), sizes[static_cast<size_t>(d)],
                                        d - static_cast<int64_t>(sizes.size()), max_plate_nesting));
  }
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
  // One leaf per site (not slices of one vector): fewer autograd nodes.
  std::vector<torch::Tensor> leaves;
  leaves.reserve(sites_.size());
  ValueMap values;
  torch::Tensor log_density;
  const double* at = q.data();
  for (const auto& site : sites_) {
    auto leaf = torch::empty(site.unconstrained_shape, torch::kDouble);
    std::copy(at, at + site.numel(), leaf.data_ptr<double>());
    at += site.numel();
    leaf.requires_grad_(true);
    auto [value, ladj] = constrain_site(site, leaf);
    if (ladj.defined()) log_density = log_density.defined() ? log_density + ladj.sum() : ladj.sum();
    values[site.name] = value.scalar_type() == site.options.dtype() ? value : value.to(site.options.dtype());
    leaves.push_back(std::move(leaf));
  }
  auto joint = log_joint(runner_(values));
  if (joint.scalar_type() != torch::kDouble) joint = joint.to(torch::kDouble);
  log_density = log_density.defined() ? log_density + joint : joint;
  const double value = -log_density.item<double>();
  if (!std::isfinite(value)) return std::numeric_limits<double>::infinity();
  const auto grads = torch::autograd::grad({log_density}, leaves, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                           /*allow_unused=*/true);
  grad.resize(static_cast<size_t>(dim_));
  auto out = grad.begin();
  for (size_t i = 0; i < sites_.size(); ++i) {
    const auto n = sites_[i].numel();
    if (!grads[i].defined()) {
      out = std::fill_n(out, n, 0.0);
      continue;
    }
    const auto g = grads[i].contiguous();
    const auto* gp = g.data_ptr<double>();
    for (int64_t k = 0; k < n; ++k, ++out) {
      if (!std::isfinite(gp[k])) return std::numeric_limits<double>::infinity();
      *out = -gp[k];
    }
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
