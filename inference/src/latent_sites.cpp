// The prototype run shared by the autoguides and MCMC: latent sites, plates,
// initial values, and the map from unconstrained coordinates to values.
#include <ppl/infer/latent_sites.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/transforms/biject_to.hpp>

namespace ppl::infer {

int64_t LatentSite::numel() const {
  int64_t n = 1;
  for (auto d : unconstrained_shape) n *= d;
  return n;
}

namespace {
/// The prior median of `site`'s distribution, per element, from 15 draws.
torch::Tensor prior_median(const Site& site) {
  torch::NoGradGuard no_grad;
  return std::get<0>(site.dist->sample({15}).median(0));
}
}  // namespace

std::vector<LatentSite> latent_sites(const Trace& prototype, const LatentSiteOptions& options) {
  std::vector<LatentSite> out;
  for (const auto& s : prototype) {
    if (s.kind != SiteKind::sample || s.observed || (options.skip_enumerated && s.options.enumerate)) continue;
    const auto where = [&] {
      return fmt::format("{}: site \"{}\"{}", options.who, s.name,
                         s.location.short_string().empty() ? "" : " (" + s.location.short_string() + ")");
    };
    for (const auto& f : s.plates)
      if (f.subsample_size != f.size)
        throw ArgumentError(fmt::format("{} lies in plate \"{}\", which is subsampled ({} of {}); {}", where(), f.name,
                                        f.subsample_size, f.size, options.subsample_hint));
    const auto support = s.dist->support();
    if (support.is_discrete())
      throw ArgumentError(
          fmt::format("{} has the discrete support {}; {}", where(), support.to_string(), options.discrete_hint));
    LatentSite site;
    site.name = s.name;
    site.shape = s.value.sizes().vec();
    site.batch_rank = static_cast<int64_t>(s.dist->batch_shape().size());
    site.transform = transforms::biject_to(support);
    site.real = support.kind() == constraints::Constraint::Kind::real;
    site.unconstrained_shape = site.transform->inverse_shape(site.shape);
    site.plates = s.plates;
    site.options = s.value.options().requires_grad(false);
    torch::Tensor value;
    const torch::Tensor* given = nullptr;
    if (options.init_values)
      if (const auto it = options.init_values->find(s.name); it != options.init_values->end()) given = &it->second;
    if (given) {
      value = given->to(site.options);
      if (value.sizes() != s.value.sizes())
        throw ArgumentError(fmt::format("{}: init value has shape {}, but the site's values have shape {}", where(),
                                        shape_string(value.sizes()), shape_string(s.value.sizes())));
      if (!support.check(value).all().item<bool>())
        throw ArgumentError(fmt::format("{}: init value lies outside the support ({})", where(), support.describe()));
      site.init_given = true;
    } else {
      // An elementwise median stays in an elementwise support; a vector or
      // matrix one (simplex, Cholesky factors) keeps the prototype's draw.
      value = support.event_rank() == 0 ? prior_median(s) : s.value.detach();
    }
    {
      torch::NoGradGuard no_grad;
      site.init = site.transform->inverse(value.detach()).clone();
    }
    out.push_back(std::move(site));
  }
  return out;
}

int64_t latent_dim(const std::vector<LatentSite>& sites) {
  int64_t d = 0;
  for (const auto& s : sites) d += s.numel();
  return d;
}

std::pair<torch::Tensor, torch::Tensor> constrain_site(const LatentSite& site, const torch::Tensor& x) {
  if (site.real) return {x, torch::Tensor()};
  const auto y = site.transform->forward(x);
  auto ladj = site.transform->log_abs_det_jacobian(x, y);
  const auto keep = x.dim() - static_cast<int64_t>(site.unconstrained_shape.size()) + site.batch_rank;
  while (ladj.dim() > keep) ladj = ladj.sum(-1);
  return {y, ladj};
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> constrain(const std::vector<LatentSite>& sites,
                                                               const torch::Tensor& u) {
  std::vector<std::pair<torch::Tensor, torch::Tensor>> out;
  out.reserve(sites.size());
  int64_t at = 0;
  for (const auto& s : sites) {
    auto shape = u.sizes().slice(0, u.dim() - 1).vec();
    shape.insert(shape.end(), s.unconstrained_shape.begin(), s.unconstrained_shape.end());
    out.push_back(constrain_site(s, u.narrow(-1, at, s.numel()).reshape(shape)));
    at += s.numel();
  }
  return out;
}

}  // namespace ppl::infer
