#pragma once
#include <ppl/dist/distribution.hpp>
#include <ppl/infer/autoguide/autoguide.hpp>

namespace ppl::infer {

/// The guides over one joint vector of every latent site's unconstrained
/// coordinates (Pyro's AutoContinuous): u ~ q(u) in R^D, drawn at an
/// auxiliary site "_<prefix>_latent" that the model does not have, then each
/// site's slice reshaped and mapped by biject_to(support), recorded as a
/// Delta whose log-density is minus the transform's log-determinant, so the
/// guide's log-density is that of the constrained values.
class AutoContinuous : public AutoGuide {
 public:
  std::map<std::string, torch::Tensor> median() const override;
  std::map<std::string, torch::Tensor> quantiles(const std::vector<double>& qs) const override;
  void sample_sites() const override;
  /// D, the number of unconstrained coordinates (0 before the first call).
  int64_t latent_dim() const;

 protected:
  using AutoGuide::AutoGuide;
  void on_build() override;
  /// The joint distribution of u (creates or reads its parameters).
  virtual std::shared_ptr<dist::Distribution> latent_distribution() const = 0;
  /// The location of u, and the standard deviation of each coordinate.
  virtual std::pair<torch::Tensor, torch::Tensor> marginals() const = 0;
  /// Every site's initial unconstrained value, concatenated: [D].
  torch::Tensor initial_loc() const;
  /// Each site's constrained value from u [..., D], with minus the log-det
  /// (undefined for a real site: zero).
  std::vector<std::pair<torch::Tensor, torch::Tensor>> unpack(const torch::Tensor& u) const;
};

}  // namespace ppl::infer
