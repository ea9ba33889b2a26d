// Distributions rebuilt from their JSON form: one row per family.
#include <limits>
#include <type_traits>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/tensor_json.hpp>
#include <ppl/dist.hpp>
#include <ppl/transforms/transform.hpp>

namespace ppl::dist {
namespace {

/// The parts of one distribution's JSON that a row reads.
class Reader {
 public:
  Reader(std::string type, const nlohmann::json& j)
      : type_(std::move(type)),
        params_(j.at("params")),
        options_(j.value("options", nlohmann::json::object())),
        parts_(j.value("parts", nlohmann::json::object())) {}

  torch::Tensor get(const char* name) const {
    if (!params_.contains(name))
      throw Error(fmt::format("distribution JSON: {} has no parameter \"{}\"", type_, name));
    return tensor_from_json(params_.at(name));
  }
  bool has(const char* name) const { return params_.contains(name); }
  const nlohmann::json& options() const { return options_; }
  template <class T>
  T option(const char* name) const {
    if (!options_.contains(name))
      throw Error(fmt::format("distribution JSON: {} has no option \"{}\"", type_, name));
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      const auto v = json_whole_number(options_.at(name), fmt::format("distribution JSON: {} option \"{}\"", type_, name));
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
        throw Error(fmt::format("distribution JSON: {} option \"{}\" is {}, out of range", type_, name, v));
      return static_cast<T>(v);
    } else {
      return options_.at(name).get<T>();
    }
  }
  std::shared_ptr<Distribution> part(const char* name) const {
    if (!parts_.contains(name)) throw Error(fmt::format("distribution JSON: {} has no part \"{}\"", type_, name));
    return from_json(parts_.at(name));
  }
  /// Calls `make` with the category or success weights as given: Logits{...}
  /// when the JSON holds logits, else Probs{...}.
  template <class Make>
  std::shared_ptr<Distribution> weights(Make make) const {
    return has("logits") ? make(Logits{get("logits")}) : make(Probs{get("probs")});
  }

 private:
  std::string type_;
  const nlohmann::json& params_;
  nlohmann::json options_, parts_;
};

using Builder = std::shared_ptr<Distribution> (*)(const Reader&);

template <class D, class... A>
std::shared_ptr<Distribution> make(A&&... args) {
  return std::make_shared<D>(std::forward<A>(args)...);
}

const std::unordered_map<std::string, Builder>& builders() {
  static const std::unordered_map<std::string, Builder> table = {
      {"Normal", [](const Reader& r) { return make<Normal>(r.get("loc"), r.get("scale")); }},
      {"Laplace", [](const Reader& r) { return make<Laplace>(r.get("loc"), r.get("scale")); }},
      {"Uniform", [](const Reader& r) { return make<Uniform>(r.get("low"), r.get("high")); }},
      {"Beta", [](const Reader& r) { return make<Beta>(r.get("concentration1"), r.get("concentration0")); }},
      {"Gamma", [](const Reader& r) { return make<Gamma>(r.get("concentration"), r.get("rate")); }},
      {"Delta", [](const Reader& r) { return make<Delta>(r.get("v"), r.get("log_density")); }},
      {"Exponential", [](const Reader& r) { return make<Exponential>(r.get("rate")); }},
      {"LogNormal", [](const Reader& r) { return make<LogNormal>(r.get("loc"), r.get("scale")); }},
      {"HalfNormal", [](const Reader& r) { return make<HalfNormal>(r.get("scale")); }},
      {"HalfCauchy", [](const Reader& r) { return make<HalfCauchy>(r.get("scale")); }},
      {"Cauchy", [](const Reader& r) { return make<Cauchy>(r.get("loc"), r.get("scale")); }},
      {"StudentT", [](const Reader& r) { return make<StudentT>(r.get("df"), r.get("loc"), r.get("scale")); }},
      {"InverseGamma", [](const Reader& r) { return make<InverseGamma>(r.get("concentration"), r.get("rate")); }},
      {"Chi2", [](const Reader& r) { return make<Chi2>(r.get("df")); }},
      {"Weibull", [](const Reader& r) { return make<Weibull>(r.get("scale"), r.get("concentration")); }},
      {"VonMises", [](const Reader& r) { return make<VonMises>(r.get("loc"), r.get("concentration")); }},
      {"Poisson", [](const Reader& r) { return make<Poisson>(r.get("rate")); }},
      {"DiscreteUniform", [](const Reader& r) { return make<DiscreteUniform>(r.get("low"), r.get("high")); }},
      {"Dirichlet", [](const Reader& r) { return make<Dirichlet>(r.get("concentration")); }},
      {"LKJCholesky",
       [](const Reader& r) { return make<LKJCholesky>(r.option<int64_t>("dim"), r.get("concentration")); }},
      {"MultivariateNormal",
       [](const Reader& r) {
         MultivariateNormalScale m;
         if (r.has("covariance")) m.covariance = r.get("covariance");
         else if (r.has("precision")) m.precision = r.get("precision");
         else m.scale_tril = r.get("scale_tril");
         return make<MultivariateNormal>(r.get("loc"), m);
       }},
      {"LowRankMultivariateNormal",
       [](const Reader& r) {
         return make<LowRankMultivariateNormal>(r.get("loc"), r.get("cov_factor"), r.get("cov_diag"));
       }},
      {"Bernoulli", [](const Reader& r) { return r.weights([](auto w) { return make<Bernoulli>(w); }); }},
      {"Categorical", [](const Reader& r) { return r.weights([](auto w) { return make<Categorical>(w); }); }},
      {"OneHotCategorical",
       [](const Reader& r) { return r.weights([](auto w) { return make<OneHotCategorical>(w); }); }},
      {"Geometric", [](const Reader& r) { return r.weights([](auto w) { return make<Geometric>(w); }); }},
      {"ContinuousBernoulli",
       [](const Reader& r) { return r.weights([](auto w) { return make<ContinuousBernoulli>(w); }); }},
      {"Binomial",
       [](const Reader& r) { return r.weights([&](auto w) { return make<Binomial>(r.get("total_count"), w); }); }},
      {"NegativeBinomial",
       [](const Reader& r) {
         return r.weights([&](auto w) { return make<NegativeBinomial>(r.get("total_count"), w); });
       }},
      {"Multinomial",
       [](const Reader& r) {
         return r.weights([&](auto w) { return make<Multinomial>(r.option<int64_t>("total_count"), w); });
       }},
      {"GaussianMixture",
       [](const Reader& r) {
         return r.weights([&](auto w) { return make<GaussianMixture>(w, r.get("loc"), r.get("scale_tril")); });
       }},
      {"RelaxedBernoulli",
       [](const Reader& r) {
         const bool st = r.options().value("straight_through", false);
         return r.weights([&](auto w) { return make<RelaxedBernoulli>(r.get("temperature"), w, st); });
       }},
      {"RelaxedOneHotCategorical",
       [](const Reader& r) {
         const bool st = r.options().value("straight_through", false);
         return r.weights([&](auto w) { return make<RelaxedOneHotCategorical>(r.get("temperature"), w, st); });
       }},
      {"MixtureSameFamily",
       [](const Reader& r) {
         const auto mixture = r.part("mixture");
         const auto* categorical = dynamic_cast<const Categorical*>(mixture.get());
         if (!categorical) throw Error("distribution JSON: MixtureSameFamily's mixture is not a Categorical");
         return make<MixtureSameFamily>(*categorical, *r.part("component"));
       }},
      {"TransformedDistribution",
       [](const Reader& r) {
         std::vector<transforms::TransformArg> ts;
         for (const auto& t : r.option<nlohmann::json>("transforms")) ts.emplace_back(transforms::from_json(t));
         return make<TransformedDistribution>(*r.part("base"), std::move(ts));
       }},
      {"Independent",
       [](const Reader& r) {
         return make<Independent>(*r.part("base"), r.option<int64_t>("reinterpreted_batch_dims"));
       }},
      {"FoldedDistribution", [](const Reader& r) { return make<FoldedDistribution>(*r.part("base")); }},
  };
  return table;
}

}  // namespace

std::shared_ptr<Distribution> from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j.contains("params"))
    throw Error("distribution JSON: expected an object with \"type\" and \"params\"");
  const auto type = j.at("type").get<std::string>();
  const auto& table = builders();
  const auto row = table.find(type);
  if (row == table.end()) throw Error(fmt::format("distribution JSON: unknown distribution type \"{}\"", type));
  auto d = row->second(Reader(type, j));
  // The mask is stored aligned with the base shape: apply it before to_event.
  if (j.contains("mask") && !j.at("mask").is_null()) d = d->mask_ptr(tensor_from_json(j.at("mask")));
  const int64_t event_dims = j.contains("event_dims") ? json_whole_number(j.at("event_dims"), "distribution JSON: \"event_dims\"") : 0;
  if (event_dims > 0) d = d->to_event_ptr(event_dims);
  return d;
}

}  // namespace ppl::dist
