#pragma once
/// GENESIS's mixture of K components (Engelcke et al. 2020, Eq. 1-4), the
/// whole of the GENESIS program and SPACE's background (Lin et al. 2020,
/// section 2.2):
///
///   z_m/k ~ N(MLP(LSTM_prior(z_m/k-1)))             k = 0 .. K-1, autoregressive
///   a_k   = mask_decoder(z_m/k)                       [B, H, W] logits
///   m_k   = sigmoid(a_k) prod_{j<k} (1 - sigmoid(a_j)) for k < K - 1,
///   m_K-1 = prod_{j<K-1} (1 - sigmoid(a_j))           (stick-breaking)
///   z_c   ~ N(MLP(z_m/k)) per component               [B, K, z_comp]
///   mu_k  = sigmoid(broadcast_decoder(z_c/k))         [B, H, W]
///   x     ~ sum_k m_k N(mu_k, sd)                     pixel-wise mixture
///
/// and the guide q(z_m/k | x, z_m/<k) = N(MLP(LSTM_post([enc(x), z_m/k-1])))
/// with q(z_c/k | x, m_k) = N(MLP(enc_c([x, m_k]))), the masks decoded from
/// the guide's z_m. The sites are `<mask_site>/k` (one per step, [B, z_mask])
/// and `<comp_site>` ([B, K, z_comp]), inside the caller's "data" plate.
///
/// The model replayed on the guide's draws (as the ELBO runs it) decodes
/// the latents the guide has just decoded: the guide's masks and component
/// means are kept (`GuideDecoding`) and the model takes them while its
/// draws are the guide's tensors and the decoders unchanged, the same
/// values and the same graph, instead of running both decoders again (two
/// fifths of a GENESIS step).
#include <string>

#include <torch/torch.h>

#include <ppl/dist/mixture_same_family.hpp>
#include <ppl/programs/layers.hpp>

namespace ppl::programs {

/// Sizes of a component mixture.
struct MixtureSizes {
  int64_t image_size = 64;
  int64_t components = 5;        ///< K
  int64_t z_mask_size = 64;      ///< z_m/k
  int64_t z_comp_size = 16;      ///< z_c/k
  int64_t encoder_channels = 64; ///< channels of the mask and component encoders' 4 x 4 maps
  int64_t lstm_hidden = 256;     ///< the prior's and posterior's LSTMs
  int64_t decoder_channels = 32; ///< the broadcast decoder's convolutions
  int64_t decoder_layers = 4;
};

/// What the guide's latest run decoded, for the model replayed on its draws.
struct GuideDecoding {
  std::vector<torch::Tensor> z_m;   ///< the draws z_m/k, as the sites gave them
  torch::Tensor z_c;                ///< the draw of z_c
  torch::Tensor log_masks, means;   ///< what the decoders made of them
  std::vector<int64_t> versions;    ///< the decoders' parameter versions then
  bool grad = false;                ///< whether they were computed with gradients
};

/// The networks of a component mixture.
struct ComponentMixtureImpl : torch::nn::Module {
  explicit ComponentMixtureImpl(const MixtureSizes& sizes);
  MixtureSizes sizes;
  torch::nn::Sequential mask_enc{nullptr};                // x -> features of q(z_m | x)
  torch::nn::LSTMCell prior_lstm{nullptr}, post_lstm{nullptr};
  torch::nn::Linear prior_out{nullptr}, post_out{nullptr};  // hidden -> loc, raw scale of z_m/k
  torch::nn::Sequential mask_dec{nullptr};                // z_m/k -> mask logits [1, H, W]
  torch::nn::Sequential comp_enc{nullptr};                // [x, m_k] -> loc, raw scale of z_c/k
  torch::nn::Sequential comp_prior{nullptr};              // z_m/k -> loc, raw scale of z_c/k
  BroadcastDecoder comp_dec{nullptr};                     // z_c/k -> mu_k logits

  /// Whether the model replayed on the guide's draws reuses the guide's
  /// decoding (on by default; off recomputes, for tests and comparisons).
  bool reuse_guide_decoding = true;
  /// The guide's latest decoding, used at most once.
  GuideDecoding guide_decoding;
  /// Latents z_m/k decoded so far (each also z_c/k), for tests and profiles.
  int64_t decoded_components = 0;
};
TORCH_MODULE(ComponentMixture);

/// Site names of one mixture.
struct MixtureSites {
  std::string mask = "z_m";  ///< `mask`/0 .. `mask`/K-1
  std::string comp = "z_c";
};

/// A drawn (or inferred) mixture.
struct MixtureDraw {
  torch::Tensor z_m;        ///< [B, K, z_mask]
  torch::Tensor log_masks;  ///< log m_k, [B, K, H, W]
  torch::Tensor z_c;        ///< [B, K, z_comp]
  torch::Tensor means;      ///< mu_k in (0, 1), [B, K, H, W]
  torch::Tensor z_c_loc;    ///< the mean of z_c's distribution, [B, K, z_comp]
};

/// log m_k by stick-breaking from mask logits a [B, K, H, W] (the last
/// component's logit unused), in log space: log m_k = log sigmoid(a_k) +
/// sum_{j<k} log sigmoid(-a_j). The masks sum to 1 at every pixel.
torch::Tensor log_stick_breaking(const torch::Tensor& logits);

/// The model's mixture for `n` images: sites unless `mode`, in which case
/// each latent is the mean of its distribution given the ones before and no
/// site is visited.
MixtureDraw mixture_prior(ComponentMixture& nets, const MixtureSites& sites, int64_t n,
                          const torch::TensorOptions& options, bool mode = false);

/// The guide's mixture for images x [B, 1, H, W]; with `mode`, the means of
/// q and no sites.
MixtureDraw mixture_posterior(ComponentMixture& nets, const MixtureSites& sites, const torch::Tensor& x,
                              bool mode = false);

/// The pixel-wise mixture likelihood sum_k w_k N(x; mu_k, sd_k) of images
/// [B, 1, H, W]: log weights and means [B, K, H, W], `sd` [K] (or a scalar
/// tensor); the event is (1, H, W).
dist::MixtureSameFamily pixel_mixture(const torch::Tensor& log_weights, const torch::Tensor& means,
                                      const torch::Tensor& sd);

}  // namespace ppl::programs
