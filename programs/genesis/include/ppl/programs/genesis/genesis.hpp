#pragma once
/// GENESIS (Engelcke et al. 2020), GNM's main baseline (seed 003, Table 1),
/// written with the eDSL: a scene is a mixture of K components whose masks
/// come from an autoregressive prior and whose appearances come from one
/// component VAE each.
///
/// Model (GENESIS Eq. 1-4; <ppl/programs/component_mixture.hpp>):
///   z_m/k ~ N(MLP(LSTM(z_m/k-1)))        k = 0 .. K-1     [B, z_mask_size] each
///   m_k   = stick-breaking of sigmoid(mask_decoder(z_m/k))  [B, H, W]
///   z_c   ~ N(MLP(z_m/k)) per component                     [B, K, z_comp_size]
///   x     ~ sum_k m_k N(sigmoid(broadcast_decoder(z_c/k)), likelihood_sd)
/// Guide: q(z_m/k | x, z_m/<k) from an LSTM over the image encoding and
/// q(z_c/k | x, m_k) from an encoder of the image beside mask k.
///
/// Objective: the ELBO ("elbo"), or GECO (Rezende & Viola 2018) as GENESIS
/// trains ("geco"): the latent sites of model and guide weighted by beta,
///   loss = -log p(x | z) + beta KL(q || p),
/// and after each step, with the reconstruction error E = -log p(x | z) / (H W)
/// (per pixel, mean over the batch) and its moving average
/// E_ema <- alpha E_ema + (1 - alpha) E,
///   beta <- max(beta exp(step_size (goal - E_ema) H W), beta_min),
/// so that beta falls while the reconstruction is worse than the goal. beta
/// and E_ema are kept as (untrained) parameters and so saved with a run.
#include <optional>
#include <string>

#include <boost/hana.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/programs/component_mixture.hpp>
#include <ppl/programs/program.hpp>

namespace ppl::programs::genesis {

/// GENESIS's objective: the plain ELBO or GECO's constrained one.
enum class Objective { elbo, geco };

/// "elbo", "geco".
std::string to_string(Objective o);
/// JSON spells Objective as its string; another string throws ArgumentError
/// naming the option and the choices.
void to_json(nlohmann::json& j, Objective o);
void from_json(const nlohmann::json& j, Objective& o);

/// Options of GENESIS; `defaults()` follow the GENESIS paper's multi-object
/// settings (K = 5 as for Multi-dSprites, z_m of 64, z_c of 16, LSTMs of
/// 256, a 4-layer broadcast decoder of 32 channels, sd 0.7 and GECO) at
/// 64 x 64 grayscale. For a scene set of up to N objects, K = N + 1.
struct GenesisOptions {
  BOOST_HANA_DEFINE_STRUCT(GenesisOptions,
                           (int, image_size),          // H = W, 4 times a power of two (8 .. 128)
                           (int, components),          // K
                           (int, z_mask_size),
                           (int, z_comp_size),
                           (int, encoder_channels),    // channels of the encoders' 4 x 4 maps
                           (int, lstm_hidden),
                           (int, decoder_channels),    // spatial broadcast decoder
                           (int, decoder_layers),
                           (double, likelihood_sd),    // sd of each pixel's components
                           (Objective, objective),     // "geco" or "elbo"
                           (double, geco_goal),        // target reconstruction error per pixel
                           (double, geco_step_size),   // step of log beta per unit of summed error
                           (double, geco_alpha),       // moving average of the error
                           (double, geco_beta_init),
                           (double, geco_beta_min),
                           (double, learning_rate),
                           (double, clip_norm),        // global gradient-norm bound (0: none)
                           (int, batch_size));

  static GenesisOptions defaults();
};

/// The networks of GENESIS and GECO's state.
struct GenesisNetsImpl : torch::nn::Module {
  explicit GenesisNetsImpl(const GenesisOptions& o);
  ComponentMixture mixture{nullptr};
  torch::Tensor geco;  ///< [beta, E_ema, updates], not trained
};
TORCH_MODULE(GenesisNets);

/// GENESIS as an ImageProgram ("genesis").
class Genesis : public ImageProgram {
 public:
  /// Throws ArgumentError naming the first bad option.
  explicit Genesis(GenesisOptions options = GenesisOptions::defaults());

  std::string name() const override { return "genesis"; }
  nlohmann::json options() const override;
  int64_t image_size() const override { return options_.image_size; }
  torch::Tensor model(const torch::Tensor& x) override;
  torch::Tensor guide(const torch::Tensor& x) override;
  /// Samples from the prior: the mixture's mean image sum_k m_k mu_k.
  torch::Tensor sample(int64_t n) override;
  std::vector<ParamGroupSpec> param_groups() const override { return {{"", options_.learning_rate}}; }
  double clip_norm() const override { return options_.clip_norm; }
  /// With GECO, applies the update of beta from the last training step's error.
  void set_step(int64_t step) override;
  void set_training(bool on) override { training_ = on; }
  int64_t batch_size() const override { return options_.batch_size; }
  /// {"mean_inferred_count", "count_accuracy"}: components with an object
  /// box (infer_objects, score > 1/2) against the true object counts.
  nlohmann::json evaluate(const torch::Tensor& x, const torch::Tensor& counts) override;
  void to(const torch::Device& device) override { nets_->to(device); }
  bool infers_objects() const override { return true; }
  /// Per component, the extent of its mask from the guide's means
  /// (mask_boxes at 1/2), scored by the mask's peak, except that a mask
  /// extending over more than half the image is the background and scores
  /// 0; the mean of q(z_c/k | x) is its feature row. Throws
  /// std::invalid_argument for images of another shape.
  InferredObjects infer_objects(const torch::Tensor& x) override;

  /// The guide's masks m_k [B, K, H, W] and component means mu_k [B, K, H, W]
  /// at the means of q (no sites).
  std::pair<torch::Tensor, torch::Tensor> decompose(const torch::Tensor& x);

  /// GECO's beta now (1 with the ELBO).
  double geco_beta() const;
  /// The weight of the latent sites now: beta while training with GECO, else 1.
  double kl_weight() const;
  /// The reconstruction error per pixel of the last training step, if any not yet applied.
  std::optional<double> pending_error() const { return pending_error_; }
  const GenesisOptions& genesis_options() const { return options_; }
  GenesisNets nets() const { return nets_; }

 private:
  /// The guide's mixture at the means of q, for images checked against image_size.
  MixtureDraw posterior_mode(const torch::Tensor& x);

  GenesisOptions options_;
  GenesisNets nets_;
  bool training_ = false;
  std::optional<double> pending_error_;
};

}  // namespace ppl::programs::genesis
