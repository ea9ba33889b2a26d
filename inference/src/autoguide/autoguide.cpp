// What the autoguides share: the prototype run, plates, Delta sites, the guide object.
#include <ppl/infer/autoguide/autoguide.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <ppl/core/plate.hpp>
#include <ppl/core/check.hpp>
#include <ppl/core/sites.hpp>
#include <ppl/dist/delta.hpp>

namespace ppl::infer {

namespace autoguide {

std::vector<LatentSite> latent_sites(const Trace& prototype, const AutoGuideOptions& options, std::string_view guide) {
  return infer::latent_sites(
      prototype, {.who = guide,
                  .discrete_hint = "autoguides cover continuous latents (sum it out with enumeration, or write a guide "
                                   "site for it)",
                  .subsample_hint = "autoguides need the whole plate (write a guide that indexes its parameters by "
                                    "the plate's indices)",
                  .init_values = &options.init_values,
                  .skip_enumerated = true});
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
