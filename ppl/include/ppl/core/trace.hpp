#pragma once
/// Execution traces: the ordered record of every site a program visited.
#include <any>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <ppl/core/message.hpp>

namespace ppl {

/// One recorded site.
struct Site {
  std::string name;
  SiteKind kind = SiteKind::sample;
  std::shared_ptr<const dist::Distribution> dist;  ///< null for param sites
  torch::Tensor value;
  bool observed = false;
  bool reparameterised = false;
  std::vector<PlateFrame> plates;  ///< outermost first
  double scale = 1.0;
  torch::Tensor scale_tensor;      ///< per-element scale (`handlers::scale` by a tensor); undefined for none
  torch::Tensor mask;              ///< undefined for none
  SampleOptions options;
  SourceLocation location;
  Enumeration enumeration;         ///< its enumeration dim and the variables it may depend on

  /// log p(value), summed over event dimensions, masked and scaled: shape is
  /// the batch shape. Computed on first use and kept. Zeros for param and
  /// deterministic sites. Throws the distribution's errors, and ppl::Error
  /// naming the site where libtorch refuses the computation (e.g. float16 on CPU).
  const torch::Tensor& log_prob() const;
  /// The sum of `log_prob()`.
  torch::Tensor log_prob_sum() const;
  /// True for sample and observe sites (those with a density).
  bool is_random() const { return kind == SiteKind::sample || kind == SiteKind::observe; }
  /// Sets the cached log_prob (used when loading a trace from JSON).
  void set_log_prob(torch::Tensor lp) const { log_prob_ = std::move(lp); }

 private:
  mutable torch::Tensor log_prob_;
};

/// The sites of one execution, in the order they were visited.
class Trace {
 public:
  /// Appends a site; throws SiteError when its name is already present.
  void add(Site site);

  /// The site named `name`; throws SiteError listing the names present.
  const Site& site(const std::string& name) const;
  /// The site named `name`, or nullptr.
  const Site* find(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) > 0; }

  /// All sites in order; a range for range-v3 or std::views pipelines:
  /// `trace.sites() | ranges::views::filter(...)`.
  const std::vector<Site>& sites() const { return sites_; }
  auto begin() const { return sites_.begin(); }
  auto end() const { return sites_.end(); }
  size_t size() const { return sites_.size(); }
  bool empty() const { return sites_.empty(); }

  /// Sum of the log-probabilities of all sample and observe sites.
  torch::Tensor log_prob_sum() const;

  /// The program's return value, when it returned one.
  const std::any& return_value() const { return return_value_; }
  void set_return_value(std::any v) { return_value_ = std::move(v); }
  /// The return value as T; throws ppl::Error when it holds another type.
  template <class T>
  T result() const {
    if (const T* v = std::any_cast<T>(&return_value_)) return *v;
    throw Error("Trace::result: the program's return value has another type or was not recorded");
  }

  /// The JSON form (docs/trace-json.md): values as nested arrays with shape
  /// and dtype, distributions with their parameters, log-probs, plates,
  /// source locations. `from_json(to_json())` gives the same values and
  /// log-probs bit for bit.
  nlohmann::json to_json() const;
  /// Rebuilds a trace; throws ppl::Error naming the site and field at fault.
  static Trace from_json(const nlohmann::json& j);

  /// A table of every site: kind, distribution, batch and event shapes,
  /// value and log_prob shapes, plates.
  std::string format_shapes() const;

 private:
  std::vector<Site> sites_;
  std::unordered_map<std::string, size_t> index_;
  std::any return_value_;
};

}  // namespace ppl
