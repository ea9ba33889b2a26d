#include <ppl/infer/autoguide/auto_normal.hpp>

#include <cmath>

#include <torch/torch.h>

#include <ppl/constraints.hpp>
#include <ppl/core/sites.hpp>
#include <ppl/dist/normal.hpp>
#include <ppl/dist/transformed_distribution.hpp>

namespace ppl::infer {

AutoNormalCore::AutoNormalCore(AutoGuideOptions options) : AutoGuide(std::move(options), "AutoNormal") {}

std::pair<torch::Tensor, torch::Tensor> AutoNormalCore::loc_scale(const std::string& site) const {
  for (const auto& s : latent_sites())
    if (s.name == site) {
      auto loc = ppl::param(param_name("locs", s.name), s.init);
      auto scale = ppl::param(param_name("scales", s.name), torch::full(s.unconstrained_shape, options().init_scale, s.options),
                              constraints::positive);
      return {loc, scale};
    }
  throw SiteError(fmt::format("{}: the model has no latent site \"{}\"", name(), site));
}

void AutoNormalCore::sample_sites() const {
  for (const auto& s : latent_sites()) {
    auto [loc, scale] = loc_scale(s.name);
    const auto event_rank = static_cast<int64_t>(s.unconstrained_shape.size()) - s.batch_rank;
    autoguide::within_plates(s.plates, [&] {
      const auto base = dist::Normal(loc, scale).to_event(event_rank);
      if (s.real) ppl::sample(s.name, base);
      else ppl::sample(s.name, dist::TransformedDistribution(base, {s.transform}));
    });
  }
}

std::map<std::string, torch::Tensor> AutoNormalCore::median() const {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> out;
  for (const auto& s : latent_sites()) out[s.name] = s.transform->forward(loc_scale(s.name).first.detach());
  return out;
}

std::map<std::string, torch::Tensor> AutoNormalCore::quantiles(const std::vector<double>& qs) const {
  torch::NoGradGuard no_grad;
  for (double q : qs)
    if (!(q > 0 && q < 1)) throw ArgumentError(fmt::format("{}: quantile {} is not in (0, 1)", name(), q));
  std::map<std::string, torch::Tensor> out;
  for (const auto& s : latent_sites()) {
    auto [loc, scale] = loc_scale(s.name);
    std::vector<torch::Tensor> each;
    for (double q : qs) {
      // The standard normal quantile, sqrt(2) erfinv(2q - 1).
      const double z = std::sqrt(2.0) * torch::erfinv(torch::tensor(2 * q - 1, torch::kDouble)).item<double>();
      each.push_back(s.transform->forward(loc.detach() + z * scale.detach()));
    }
    out[s.name] = torch::stack(each);
  }
  return out;
}

}  // namespace ppl::infer
