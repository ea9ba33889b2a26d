#pragma once
/// The continuous latent sites of a model, read off one prototype trace: the
/// layout that the autoguides and MCMC share (shapes, supports and their
/// bijections from unconstrained space, plates, initial values), and the map
/// from one flat vector of unconstrained coordinates to every site's value.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <ppl/core/trace.hpp>
#include <ppl/transforms/transform.hpp>

namespace ppl::infer {

/// One latent site of the model, as the prototype run saw it.
struct LatentSite {
  std::string name;
  std::vector<int64_t> shape;                ///< the value's shape: batch + event
  int64_t batch_rank = 0;                    ///< leading dimensions of `shape` that are batch
  std::vector<int64_t> unconstrained_shape;  ///< transform->inverse_shape(shape)
  std::shared_ptr<const transforms::Transform> transform;  ///< biject_to(support)
  bool real = false;                         ///< support is the real line (no transform needed)
  std::vector<PlateFrame> plates;            ///< outermost first
  torch::Tensor init;                        ///< initial value, unconstrained
  bool init_given = false;                   ///< `init` came from the caller's init values
  torch::TensorOptions options;              ///< dtype and device of the value

  /// Number of unconstrained coordinates.
  int64_t numel() const;
};

/// How `latent_sites` reads a prototype, and what its messages say.
struct LatentSiteOptions {
  /// Who asks ("AutoNormal", "NUTS"): every message starts with it.
  std::string_view who;
  /// Appended to the message about a discrete latent: what to do instead.
  std::string_view discrete_hint;
  /// Appended to the message about a subsampled plate.
  std::string_view subsample_hint;
  /// Initial (constrained) values by site name; other sites start at the
  /// prior median (elementwise supports) or at the prototype's draw (vector
  /// and matrix supports, whose elementwise median may leave the support).
  const std::map<std::string, torch::Tensor>* init_values = nullptr;
  /// Leaves out the sites marked `.enumerate` (summed out by an enumerating
  /// Elbo, so a guide need not cover them) instead of refusing them as
  /// discrete.
  bool skip_enumerated = false;
};

/// The latent sites of `prototype`, a trace of the model: every sample site
/// that is not observed (nor, with `skip_enumerated`, marked `.enumerate`),
/// with its initial value. Throws ArgumentError naming
/// `options.who` and the site for a discrete support, a subsampled plate, or
/// an init value of the wrong shape or outside the support.
std::vector<LatentSite> latent_sites(const Trace& prototype, const LatentSiteOptions& options);

/// D, the number of unconstrained coordinates of all `sites`.
int64_t latent_dim(const std::vector<LatentSite>& sites);

/// One site's value from its unconstrained coordinates x [..., unconstrained
/// shape], with log |det dy/dx| summed to the site's batch shape (leading
/// dimensions of x kept); undefined for a real site, whose transform is the
/// identity.
std::pair<torch::Tensor, torch::Tensor> constrain_site(const LatentSite& site, const torch::Tensor& x);

/// Every site's value from u [..., D] (the sites' unconstrained coordinates
/// concatenated in order, after any leading batch dimensions), with
/// log |det dy/du| of its transform summed to the site's batch shape
/// (leading dimensions of u kept); undefined for a real site, whose
/// transform is the identity.
std::vector<std::pair<torch::Tensor, torch::Tensor>> constrain(const std::vector<LatentSite>& sites,
                                                               const torch::Tensor& u);

}  // namespace ppl::infer
