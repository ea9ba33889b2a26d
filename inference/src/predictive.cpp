#include <ppl/infer/predictive.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

namespace ppl::infer::detail {

std::vector<std::pair<std::string, torch::Tensor>> predictive_sites(const Trace& model,
                                                                    const std::vector<std::string>& return_sites) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (!return_sites.empty()) {
    for (const auto& name : return_sites) {
      const Site* s = model.find(name);
      if (!s || s->kind == SiteKind::param)
        throw SiteError(fmt::format("Predictive: the model has no sample, observe or deterministic site \"{}\"", name));
      out.emplace_back(name, s->value.detach());
    }
    return out;
  }
  for (const auto& s : model)
    if ((s.kind == SiteKind::sample && !s.observed) || s.kind == SiteKind::deterministic)
      out.emplace_back(s.name, s.value.detach());
  return out;
}

std::map<std::string, torch::Tensor> stack_draws(const std::vector<std::map<std::string, torch::Tensor>>& draws) {
  std::map<std::string, torch::Tensor> out;
  if (draws.empty()) return out;
  for (const auto& [name, first] : draws.front()) {
    std::vector<torch::Tensor> values;
    values.reserve(draws.size());
    for (const auto& d : draws) {
      const auto it = d.find(name);
      if (it == d.end() || it->second.sizes() != first.sizes())
        throw ShapeError(fmt::format("Predictive: site \"{}\" is missing from some draws or changes shape between "
                                     "them; name it in return_sites only if every run has it with one shape",
                                     name));
      values.push_back(it->second);
    }
    out[name] = torch::stack(values);
  }
  return out;
}

int64_t predictive_size(int64_t num_samples, bool has_guide, const std::map<std::string, torch::Tensor>& samples) {
  if (samples.empty()) {
    if (num_samples < 1)
      throw ArgumentError(fmt::format("Predictive: num_samples is {}, but must be at least 1", num_samples));
    return num_samples;
  }
  if (has_guide) throw ArgumentError("Predictive: give either a guide or posterior_samples, not both");
  int64_t s = -1;
  for (const auto& [name, v] : samples) {
    if (!v.defined() || v.dim() < 1)
      throw ShapeError(fmt::format("Predictive: posterior_samples[\"{}\"] must have a leading sample dimension", name));
    if (s >= 0 && v.size(0) != s)
      throw ShapeError(fmt::format("Predictive: posterior_samples[\"{}\"] has {} samples, but another site has {}", name,
                                   v.size(0), s));
    s = v.size(0);
  }
  return s;
}

void VectorisedSubstitute::process(Message& msg) {
  if (msg.kind != SiteKind::sample || msg.observed || !msg.dist) return;
  const auto it = samples_.find(msg.name);
  if (it == samples_.end()) return;
  const auto shape = msg.dist->shape();
  if (it->second.numel() != c10::multiply_integers(shape))
    throw ShapeError(fmt::format("Predictive: posterior_samples[\"{}\"] of shape {} does not fill site \"{}\" of shape {} "
                                 "in a vectorised run",
                                 msg.name, shape_string(it->second.sizes()), msg.name, shape_string(shape)));
  msg.value = it->second.reshape(shape);
  msg.reparameterised = false;
}

}  // namespace ppl::infer::detail
