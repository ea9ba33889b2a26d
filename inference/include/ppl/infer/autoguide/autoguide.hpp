#pragma once
/// What the autoguides share: tracing the model once (a prototype run) to
/// find its latent sites, their shapes, supports and plates, and the guide
/// object users call with the model's arguments.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <ppl/core/handlers.hpp>
#include <ppl/core/trace.hpp>
#include <ppl/infer/latent_sites.hpp>

namespace ppl::infer {

/// Options of the autoguides.
struct AutoGuideOptions {
  /// Initial standard deviation in unconstrained space (AutoNormal, and the
  /// diagonal of the multivariate guides).
  double init_scale = 0.1;
  /// Initial (constrained) values by site name; other sites start at the
  /// prior median (elementwise supports) or at a prior draw (vector and
  /// matrix supports, whose elementwise median may leave the support).
  std::map<std::string, torch::Tensor> init_values{};
  /// Prefix of the guide's parameter names (default: the guide's class name,
  /// "AutoNormal"), so that two guides of one model can coexist.
  std::string prefix{};

  AutoGuideOptions& with_init_scale(double s) { init_scale = s; return *this; }
  AutoGuideOptions& with_init_value(std::string site, torch::Tensor value) {
    init_values[std::move(site)] = std::move(value);
    return *this;
  }
  AutoGuideOptions& with_prefix(std::string p) { prefix = std::move(p); return *this; }
};

namespace autoguide {

/// One latent site of the model (ppl/infer/latent_sites.hpp).
using infer::LatentSite;

/// `infer::latent_sites` with the autoguides' messages, leaving out the sites
/// marked `.enumerate` (summed out by Elbo({.enumerate = true})): ArgumentError naming
/// the guide and the site for a discrete support (autoguides cover
/// continuous latents), a subsampled plate, or an init value of the wrong
/// shape or outside the support.
std::vector<LatentSite> latent_sites(const Trace& prototype, const AutoGuideOptions& options, std::string_view guide);

/// Runs `body` inside plates that repeat `frames` (names, sizes, dims).
void within_plates(const std::vector<PlateFrame>& frames, const std::function<void()>& body);

/// The guide's value for one site as a sample site: a Delta at `value`
/// (event dims: `site.shape.size() - site.batch_rank`) whose log-density is
/// `log_density` ([batch], or undefined for 0), inside the site's plates.
void sample_delta(const LatentSite& site, const torch::Tensor& value, const torch::Tensor& log_density);

}  // namespace autoguide

/// The base of the autoguides. Copies share their state, so a guide copied
/// into `Svi` is the one the user asks for `median()` afterwards.
class AutoGuide {
 public:
  virtual ~AutoGuide() = default;

  /// True once the model has been traced (the first call).
  bool built() const { return state_->built; }
  /// The latent sites; ppl::Error when the guide has not been called yet.
  const std::vector<autoguide::LatentSite>& latent_sites() const;

  /// The posterior median of every latent site (constrained): the transform
  /// of the unconstrained location (the mode for AutoDelta).
  virtual std::map<std::string, torch::Tensor> median() const = 0;
  /// Quantiles `qs` (in (0, 1)) of every latent site's marginals, mapped to
  /// the constrained space elementwise: name -> [qs.size(), ...].
  virtual std::map<std::string, torch::Tensor> quantiles(const std::vector<double>& qs) const = 0;
  /// `n` draws from the guide: name -> [n, ...] (without gradient).
  std::map<std::string, torch::Tensor> sample_posterior(int64_t n) const;

  /// The guide's parameter and sample sites, for a model already traced.
  virtual void sample_sites() const = 0;

 protected:
  AutoGuide(AutoGuideOptions options, std::string name);
  /// Reads the latent sites off the model's `prototype` trace (first call).
  void build(const Trace& prototype);
  /// Hook after `build`: sizes that depend on every site.
  virtual void on_build() {}
  /// "<prefix>.<kind>.<site>".
  std::string param_name(std::string_view kind, std::string_view site) const;
  /// The guide's own name ("AutoNormal") for messages.
  const std::string& name() const { return state_->name; }
  const AutoGuideOptions& options() const { return state_->options; }

 private:
  struct State {
    AutoGuideOptions options;
    std::string name;
    std::vector<autoguide::LatentSite> sites;
    bool built = false;
  };
  std::shared_ptr<State> state_;
};

namespace detail {
/// An autoguide `Core` bound to a model: called with the model's arguments,
/// it traces the model once (hidden from the handlers outside), then runs
/// the guide's sites.
template <class Core, class Model>
class ModelGuide : public Core {
 public:
  template <class... CoreArgs>
  explicit ModelGuide(Model model, CoreArgs&&... core_args)
      : Core(std::forward<CoreArgs>(core_args)...), model_(std::move(model)) {}

  template <class... Args>
  void operator()(Args&&... args) {
    if (!this->built()) {
      auto prototype = handlers::block(handlers::trace(std::ref(model_)));
      this->build(prototype(args...));
    }
    this->sample_sites();
  }

 private:
  Model model_;
};
}  // namespace detail

}  // namespace ppl::infer
