#pragma once
/// The potential energy of a model's continuous latents in unconstrained
/// space:
///
///     U(q) = -( log p(x, z) + sum_sites log |det J_site(q_site)| ),   z = biject_to(support)(q)
///
/// computed by running the model once with the values z substituted (inside
/// block and trace handlers) and summing the trace's log-densities; the
/// gradient is autograd's.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include <ppl/core/trace.hpp>
#include <ppl/infer/latent_sites.hpp>
#include <ppl/infer/mcmc/kernel.hpp>

namespace ppl::infer::mcmc {

/// log p(x, z) of one run of the model: the sum of the log-densities of its
/// sample and observe sites (scales and masks applied), a 0-dim tensor.
/// This is the one place where the joint density is read off a trace: the
/// sites the runner enumerated are summed out here, exactly, by tensor
/// variable elimination over the plates (as the enumerating Elbo does).
torch::Tensor log_joint(const Trace& trace);

/// The latent sites of the model that `runner` runs, from one prototype run
/// (a draw from the prior): the continuous latents (the enumerated ones left
/// out), with `who` ("NUTS") in the messages for a discrete latent not
/// marked `.enumerate`, a subsampled plate, or a continuous latent drawn
/// along an enumeration dim (left of `max_plate_nesting` plate dims), and
/// `init_values` checked against the sites (a name that is no latent site is
/// a SiteError).
std::vector<LatentSite> model_latent_sites(const ModelRunner& runner, std::string_view who, const ValueMap& init_values,
                                           int max_plate_nesting);

/// U(q) of a model bound to its arguments.
class ModelPotential : public Potential {
 public:
  ModelPotential(ModelRunner runner, std::vector<LatentSite> sites);

  int64_t dim() const override { return dim_; }
  double operator()(const std::vector<double>& q, std::vector<double>& grad) override;

  /// Every site's constrained value at q (no gradient).
  ValueMap values(const std::vector<double>& q) const;
  const std::vector<LatentSite>& sites() const { return sites_; }

 private:
  ModelRunner runner_;
  std::vector<LatentSite> sites_;
  int64_t dim_ = 0;
};

}  // namespace ppl::infer::mcmc
