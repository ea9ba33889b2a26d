#include <ppl/infer/autoguide/auto_delta.hpp>

#include <torch/torch.h>

#include <ppl/core/sites.hpp>

namespace ppl::infer {

AutoDeltaCore::AutoDeltaCore(AutoGuideOptions options) : AutoGuide(std::move(options), "AutoDelta") {}

namespace {
/// The point estimate of `s`: a parameter constrained to its support.
torch::Tensor point(const autoguide::LatentSite& s, const std::string& param) {
  torch::Tensor init;
  {
    torch::NoGradGuard no_grad;
    init = s.transform->forward(s.init);
  }
  return ppl::param(param, init, s.transform->codomain());
}
}  // namespace

void AutoDeltaCore::sample_sites() const {
  for (const auto& s : latent_sites()) autoguide::sample_delta(s, point(s, param_name("", s.name)), {});
}

std::map<std::string, torch::Tensor> AutoDeltaCore::median() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& s : latent_sites()) out[s.name] = point(s, param_name("", s.name)).detach();
  return out;
}

std::map<std::string, torch::Tensor> AutoDeltaCore::quantiles(const std::vector<double>& qs) const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, value] : median()) {
    auto sizes = value.sizes().vec();
    sizes.insert(sizes.begin(), static_cast<int64_t>(qs.size()));
    out[name] = value.unsqueeze(0).expand(sizes).clone();
  }
  return out;
}

}  // namespace ppl::infer
