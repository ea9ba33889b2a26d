// The prototype run shared by the autoguides: latent sites, plates, initial values.
#include <ppl/infer/autoguide/autoguide.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <ppl/core/plate.hpp>
#include <ppl/core/check.hpp>
#include <ppl/core/sites.hpp>
#include <ppl/dist/delta.hpp>
#include <ppl/transforms/biject_to.hpp>

namespace ppl::infer {

namespace autoguide {

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

std::vector<LatentSite> latent_sites(const Trace& prototype, const AutoGuideOptions& options, std::string_view guide) {
  std::vector<LatentSite> out;
  for (const auto& s : prototype) {
    // Sites marked for enumeration are summed out (Elbo({.enumerate = true})), not guided.
    if (s.kind != SiteKind::sample || s.observed || s.options.enumerate) continue;
    const auto where = [&] { return fmt::format("{}: site \"{}\"{}", guide, s.name, s.location.short_string().empty() ? "" : " (" + s.location.short_string() + ")"); };
    for (const auto& f : s.plates)
      if (f.subsample_size != f.size)
        throw ArgumentError(fmt::format("{} lies in plate \"{}\", which is subsampled ({} of {}); autoguides need the "
                                        "whole plate (write a guide that indexes its parameters by the plate's indices)",
                                        where(), f.name, f.subsample_size, f.size));
    const auto support = s.dist->support();
    if (support.is_discrete())
      throw ArgumentError(fmt::format("{} has the discrete support {}; autoguides cover continuous latents (sum it out "
                                      "with enumeration, or write a guide site for it)",
                                      where(), support.to_string()));
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
    if (auto it = options.init_values.find(s.name); it != options.init_values.end()) {
      value = it->second.to(site.options);
      if (value.sizes() != s.value.sizes())
        throw ArgumentError(fmt::format("{}: init value has shape {}, but the site's values have shape {}", where(),
                                        shape_string(value.sizes()), shape_string(s.value.sizes())));
      if (!support.check(value).all().item<bool>())
        throw ArgumentError(fmt::format("{}: init value lies outside the support ({})", where(), support.describe()));
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

namespace {
/// Plates for frames[i..], nested by recursion so that they close innermost
/// first, also when `body` throws.
void within_plates_from(const std::vector<PlateFrame>& frames, size_t i, const std::function<void()>& body) {
  if (i == frames.size()) return body();
  Plate plate(frames[i].name, frames[i].size, PlateOptions{.dim = frames[i].dim});
  within_plates_from(frames, i + 1, body);
}
}  // namespace

void within_plates(const std::vector<PlateFrame>& frames, const std::function<void()>& body) {
  within_plates_from(frames, 0, body);
}

void sample_delta(const LatentSite& site, const torch::Tensor& value, const torch::Tensor& log_density) {
  const auto event_rank = static_cast<int64_t>(site.shape.size()) - site.batch_rank;
  torch::Tensor density = torch::zeros({}, value.options());
  if (log_density.defined()) {
    if (event_rank == 0) {
      density = log_density;
    } else {
      // The whole log-density on the first element of each event, zeros on
      // the rest: the event sum is exactly log_density.
      const auto batch = value.sizes().slice(0, value.dim() - event_rank);
      int64_t events = 1;
      for (auto d : batch) events *= d;
      const auto per_event = value.numel() / std::max<int64_t>(events, 1);
      auto first = log_density.reshape({events, 1});
      auto rest = torch::zeros({events, per_event - 1}, first.options());
      density = torch::cat({first, rest}, 1).reshape(value.sizes());
    }
  }
  within_plates(site.plates, [&] {
    ppl::sample(site.name, dist::Delta(value, density).to_event(event_rank));
  });
}

}  // namespace autoguide

AutoGuide::AutoGuide(AutoGuideOptions options, std::string name) : state_(std::make_shared<State>()) {
  if (options.prefix.empty()) options.prefix = name;
  if (!(options.init_scale > 0))
    throw ArgumentError(fmt::format("{}: init_scale is {}, but must be positive", name, options.init_scale));
  state_->options = std::move(options);
  state_->name = std::move(name);
}

const std::vector<autoguide::LatentSite>& AutoGuide::latent_sites() const {
  if (!state_->built)
    throw Error(fmt::format("{}: the guide has not seen the model yet; call it once with the model's arguments (or "
                            "train it)",
                            state_->name));
  return state_->sites;
}

void AutoGuide::build(const Trace& prototype) {
  state_->sites = autoguide::latent_sites(prototype, state_->options, state_->name);
  state_->built = true;
  on_build();
}

std::string AutoGuide::param_name(std::string_view kind, std::string_view site) const {
  return kind.empty() ? fmt::format("{}.{}", state_->options.prefix, site)
                      : fmt::format("{}.{}.{}", state_->options.prefix, kind, site);
}

std::map<std::string, torch::Tensor> AutoGuide::sample_posterior(int64_t n) const {
  if (n < 1) throw ArgumentError(fmt::format("{}: sample_posterior needs n >= 1, got {}", state_->name, n));
  const auto& sites = latent_sites();
  torch::NoGradGuard no_grad;
  std::map<std::string, std::vector<torch::Tensor>> draws;
  for (int64_t i = 0; i < n; ++i) {
    auto t = handlers::block(handlers::trace([this] { sample_sites(); }))();
    for (const auto& site : sites) draws[site.name].push_back(t.site(site.name).value.detach());
  }
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, values] : draws) out[name] = torch::stack(values);
  return out;
}

}  // namespace ppl::infer
