#pragma once
/// SPACE (Lin et al. 2020), GNM's baseline for decomposition (seed 003,
/// Table 4), written with the eDSL: a spatially parallel foreground, an
/// S x S grid of object cells with independent priors, over a background
/// mixture of K components (GENESIS's, <ppl/programs/component_mixture.hpp>).
///
/// Model, per cell n of the S x S grid (no prior couples the cells, unlike
/// GNM's StructDRAW):
///   z_pres  ~ RelaxedBernoulli(tau, rho)                     [B, N]
///   z_where ~ N((mu_s, mu_s, 0, 0), (sd_s, sd_s, sd_t, sd_t))  [B, N, 4]
///   z_depth ~ N(0, 1)                                        [B, N, 1]
///   z_what  ~ N(0, I)                                        [B, N, z_what_size]
///   (o_n, m_n) = sigmoid(glimpse_decoder(z_what_n))          appearance and mask
///   (colour, alpha) = composite_objects(...)                 shared with GNM
///   z_bg_m/k, z_bg_c ~ the component mixture's prior         masks m_k, means mu_k
///   x ~ alpha N(colour, fg_sd) + (1 - alpha) sum_k m_k N(mu_k, bg_sd)   per pixel
/// z_where places the cell's box exactly as GNM does (where_to_runtime).
///
/// Guide: the image encoder (GNM's Table 6) gives an S x S map; a per-cell
/// head gives q(z_pres), q(z_where), q(z_depth); z_what is inferred from
/// the glimpse of x that the sampled z_where crops (runtime stn_crop); the
/// background from the component mixture's guide on x.
///
/// tau and rho are annealed linearly (set_step).
#include <boost/hana.hpp>
#include <torch/torch.h>

#include <ppl/programs/component_mixture.hpp>
#include <ppl/programs/program.hpp>
#include <ppl/programs/structure_map.hpp>

namespace ppl::programs::space {

/// Options of SPACE; `defaults()` for 64 x 64 MNIST-4 with GNM's 4 x 4 grid,
/// so that the two decompose scenes into the same cells.
struct SpaceOptions {
  BOOST_HANA_DEFINE_STRUCT(SpaceOptions,
                           (int, image_size),          // H = W, num_cells times 2 .. 32, and 8 .. 128
                           (int, num_cells),           // S
                           (int, channels),            // the image encoder's map
                           (int, z_what_size),
                           (int, glimpse_size),        // side of the crops and decoded patches (power of 2, 2 .. 32)
                           (int, bg_components),       // K of the background
                           (int, z_bg_mask_size),
                           (int, z_bg_comp_size),
                           (int, bg_encoder_channels),
                           (int, bg_lstm_hidden),
                           (int, bg_decoder_channels),
                           (int, bg_decoder_layers),
                           (double, fg_sd),            // sd of the foreground's pixels
                           (double, bg_sd),            // sd of the background components' pixels
                           (double, z_pres_prior),     // rho at the start ...
                           (double, z_pres_prior_end), // ... and at the end of its anneal
                           (int, z_pres_prior_anneal_steps),
                           (double, z_pres_temperature),      // tau at the start ...
                           (double, z_pres_temperature_end),  // ... and at the end of its anneal
                           (int, temperature_anneal_steps),
                           (double, scale_prior_mean), // mu_s (logit of the box's side)
                           (double, scale_prior_sd),
                           (double, shift_prior_sd),
                           (double, learning_rate),    // the foreground's
                           (double, bg_learning_rate), // the background's
                           (double, clip_norm),
                           (int, batch_size));

  static SpaceOptions defaults();
};

/// The networks of SPACE.
struct SpaceNetsImpl : torch::nn::Module {
  explicit SpaceNetsImpl(const SpaceOptions& o);
  torch::nn::Sequential encoder{nullptr};      // x -> [B, channels, S, S]
  torch::nn::Sequential head{nullptr};         // q(z_pres), q(z_where), q(z_depth) per cell
  torch::nn::Sequential glimpse_enc{nullptr};  // glimpse -> q(z_what)
  torch::nn::Sequential glimpse_dec{nullptr};  // z_what -> appearance, mask (GNM's Table 7)
  ComponentMixture bg{nullptr};
};
TORCH_MODULE(SpaceNets);

/// The foreground's latents.
struct SpaceLatents {
  torch::Tensor z_pres, z_where, z_depth, z_what;
};

/// SPACE as an ImageProgram ("space").
class Space : public ImageProgram {
 public:
  /// Throws ArgumentError naming the first bad option.
  explicit Space(SpaceOptions options = SpaceOptions::defaults());

  std::string name() const override { return "space"; }
  nlohmann::json options() const override;
  int64_t image_size() const override { return options_.image_size; }
  torch::Tensor model(const torch::Tensor& x) override;
  torch::Tensor guide(const torch::Tensor& x) override;
  /// Samples from the prior, z_pres drawn as 0 or 1: each cell independently.
  torch::Tensor sample(int64_t n) override;
  /// The background's networks (prefix "space.bg") at bg_learning_rate,
  /// the rest at learning_rate.
  std::vector<ParamGroupSpec> param_groups() const override {
    return {{"space.bg.", options_.bg_learning_rate}, {"", options_.learning_rate}};
  }
  double clip_norm() const override { return options_.clip_norm; }
  /// Moves tau and rho.
  void set_step(int64_t step) override;
  int64_t batch_size() const override { return options_.batch_size; }
  /// {"mean_inferred_count", "count_accuracy"}: cells with q(z_pres) > 1/2.
  nlohmann::json evaluate(const torch::Tensor& x, const torch::Tensor& counts) override;
  void to(const torch::Device& device) override { nets_->to(device); }
  bool infers_objects() const override { return true; }
  /// Per cell, the box of the mean of q(z_where | x) scored by
  /// q(z_pres = 1 | x) (structure_boxes, as GNM's), and the mean of
  /// q(z_what | x) at that box as its feature row. Throws
  /// std::invalid_argument for images of another shape.
  InferredObjects infer_objects(const torch::Tensor& x) override;

  /// The foreground of latents z: colour and alpha [B, 1, H, W].
  Foreground render_foreground(const SpaceLatents& z);
  double temperature() const { return tau_; }
  double z_pres_prior() const { return rho_; }
  const SpaceOptions& space_options() const { return options_; }
  SpaceNets nets() const { return nets_; }

 private:
  /// The mean image and the likelihood's mixture of foreground and background.
  std::pair<torch::Tensor, dist::MixtureSameFamily> likelihood(const SpaceLatents& z, const MixtureDraw& bg);
  /// The foreground's prior sites for n images.
  SpaceLatents prior(int64_t n, const torch::TensorOptions& opts);
  /// q(z_what | x) [B, N, 2 z_what_size raw] of the glimpses that z_where crops.
  std::pair<torch::Tensor, torch::Tensor> what_params(const torch::Tensor& x, const torch::Tensor& z_where);

  SpaceOptions options_;
  SpaceNets nets_;
  double tau_ = 2.5, rho_ = 0.1;
};

}  // namespace ppl::programs::space
