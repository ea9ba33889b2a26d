#include <ppl/infer/autoguide/auto_continuous.hpp>

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include <ppl/core/sites.hpp>

namespace ppl::infer {

int64_t AutoContinuous::latent_dim() const { return built() ? infer::latent_dim(latent_sites()) : 0; }

void AutoContinuous::on_build() {
  if (latent_dim() == 0) throw ArgumentError(fmt::format("{}: the model has no continuous latent site", name()));
}

torch::Tensor AutoContinuous::initial_loc() const {
  std::vector<torch::Tensor> parts;
  for (const auto& s : latent_sites()) parts.push_back(s.init.reshape({-1}));
  return torch::cat(parts);
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> AutoContinuous::unpack(const torch::Tensor& u) const {
  auto out = constrain(latent_sites(), u);
  for (auto& [value, ladj] : out)
    if (ladj.defined()) ladj = -ladj;
  return out;
}

void AutoContinuous::sample_sites() const {
  const auto& sites = latent_sites();
  const auto u = ppl::sample(fmt::format("_{}_latent", options().prefix), *latent_distribution(), {.auxiliary = true});
  const auto values = unpack(u);
  for (size_t i = 0; i < sites.size(); ++i) autoguide::sample_delta(sites[i], values[i].first, values[i].second);
}

std::map<std::string, torch::Tensor> AutoContinuous::median() const {
  torch::NoGradGuard no_grad;
  const auto values = unpack(marginals().first.detach());
  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < values.size(); ++i) out[latent_sites()[i].name] = values[i].first;
  return out;
}

std::map<std::string, torch::Tensor> AutoContinuous::quantiles(const std::vector<double>& qs) const {
  torch::NoGradGuard no_grad;
  for (double q : qs)
    if (!(q > 0 && q < 1)) throw ArgumentError(fmt::format("{}: quantile {} is not in (0, 1)", name(), q));
  const auto [loc, sd] = marginals();
  std::map<std::string, std::vector<torch::Tensor>> each;
  for (double q : qs) {
    const double z = std::sqrt(2.0) * torch::erfinv(torch::tensor(2 * q - 1, torch::kDouble)).item<double>();
    const auto values = unpack(loc.detach() + z * sd.detach());
    for (size_t i = 0; i < values.size(); ++i) each[latent_sites()[i].name].push_back(values[i].first);
  }
  std::map<std::string, torch::Tensor> out;
  for (auto& [site, v] : each) out[site] = torch::stack(v);
  return out;
}

}  // namespace ppl::infer
