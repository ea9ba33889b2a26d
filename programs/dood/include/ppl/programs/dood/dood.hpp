#pragma once
/// DooD, Drawing out of Distribution (Liang et al. 2022), written with the eDSL.
///
/// Model, for steps t = 0..T-1 (seed 000, Appendix B; docs/programs/dood.md):
///   h^l_t = GRU_l([o_{t-1}, l_{t-1}, s_{t-1}, e(x_{<t})], h^l_{t-1})    layout RNN
///   o_t  ~ Bernoulli(o_{t-1} * pi(h^l_t))                              on / off (off stays off)
///   l_t  ~ Normal(mu_l(h^l_t), sd_l(h^l_t))                            layout (s, x, y, r)
///   h^s_t = GRU_s([l_t, s_{t-1}, e(x_{<t})], h^s_{t-1})                 stroke RNN
///   s_t  ~ Normal(mu_s(h^s_t), sd_s(h^s_t))                            D+1 control points in the glimpse
///   x_t   = render(affine(l_t) s_t; sigma_t, omega0_t)                 Eq. 10-13
///   x_{<=t} = tanh(sum_{t' <= t} o_t' x_t' / omega1)                   Eq. 14-15
///   x    ~ Laplace(x_{<=T}, b)                                          b learnt per pixel
/// e(x_{<t}) is the CNN feature of the detached canvas so far (execution
/// guidance, C.1). The model replayed on the guide's draws computes the same
/// canvases as the guide did, so it takes the guide's features of them
/// instead of recomputing them (`set_feature_reuse`); the blank canvas of
/// t = 0 goes through the CNN once per batch, not once per image. sigma_t, omega0_t and omega1 come from a renderer MLP and
/// are not latent. Sites: "o/t", "l/t", "s/t" (ppl::addr), and "x".
///
/// Guide: the same RNNs, read with the target and the residual x - x_{<t}
/// (detached); o_t is a score-function site with a neural baseline, l_t and
/// s_t are reparameterised, s_t reads the glimpse of x at l_t.
///
/// With `prior_mixtures = K > 0` (the authors' `--num_mixtures K
/// --correlated_latent`), p(l_t | h^l_t) and p(s_t | h^s_t) (per control
/// point) are K-component GaussianMixtures whose Cholesky factors correlate
/// x with y. With `correlated_guide` the guide's q(l_t) and q(s_t) are
/// Gaussians with the same x-y correlation (one-component GaussianMixtures,
/// reparameterised); without it they are Normal.
///
/// Ablations: `sequential_prior = false` (DooD-SP) draws o_t, l_t, s_t from
/// fixed per-step priors; `execution_guidance = false` (DooD-EG) removes the
/// canvas so far from the RNN inputs and the canvas and residual from the guide.
#include <numbers>
#include <string>
#include <vector>

#include <boost/hana.hpp>
#include <torch/torch.h>

#include <ppl/programs/program.hpp>

namespace ppl::programs::dood {

/// Options of DooD; `defaults()` follows the paper and its supplement.
struct DoodOptions {
  BOOST_HANA_DEFINE_STRUCT(DoodOptions,
                           (int, image_size),            // H = W (50 for every DooD data set, App. A)
                           (int, steps),                 // T, the most strokes per image
                           (int, control_points),        // D + 1 per Bezier stroke
                           (int, glimpse_size),          // side of the glimpse the guide crops
                           (int, render_samples),        // S curve samples (B.1)
                           (int, rnn_hidden),            // GRU hidden size (B.3)
                           (int, mlp_hidden),            // hidden width of every MLP (B.3)
                           (int, feature_size),          // CNN feature size (B.3)
                           (bool, sequential_prior),     // false: DooD-SP
                           (bool, execution_guidance),   // false: DooD-EG
                           (double, beta),               // KL weight while training (C.1)
                           (double, presence_init_bias), // initial bias of the guide's o MLP's last layer (C.1)
                           (double, prior_presence_init_bias), // the same for the prior's o MLP
                           (bool, presence_from_residual), // guide's o head reads only the residual and its ink ratio
                           (bool, normalise_signal),     // NVIL: o's learning signal / max(1, running sd), decay 0.8
                           (bool, beta_signal_only),     // beta weighs the KL in o's learning signal only
                           (bool, pooled_signal_stats),  // one running mean/variance of o's signal for all steps, live images only
                           (int, prior_mixtures),        // K > 0: l_t and each point of s_t get K-component priors
                           (bool, correlated_guide),     // q(l_t), q(s_t): x-y correlated Gaussians
                           (bool, squash_layout),        // layout means in the authors' ranges (sigmoids)
                           (double, layout_init_sd),     // sd of p(l_t) and q(l_t) at the start
                           (std::string, renderer_ranges), // "supplement" or "authors" (ranges and start)
                           (bool, detach_stroke_max),    // the renderer's gradients hold each stroke's max fixed
                           (double, likelihood_scale_init), // every pixel's learnt Laplace scale at the start
                           (double, likelihood_blur),    // training only: image and canvas blurred (sd, px) at step 0
                           (int, likelihood_blur_steps), // ... the blur's sd falling linearly to 0 by this step
                           (double, learning_rate),      // the rest (C.1)
                           (double, nvil_learning_rate), // o head of the guide and its baseline (C.1)
                           (double, presence_learning_rate), // > 0: the guide's o head apart from the baseline
                           (int, batch_size));

  /// The defaults (seed 000 and the authors' released configuration).
  static DoodOptions defaults();
};

/// The networks of DooD (libtorch module idiom). Submodule names fix the
/// parameter names: "q_o" (the guide's o head) and "bl_" (the baseline) are
/// the NVIL-trained parameters.
struct DoodNetsImpl : torch::nn::Module {
  explicit DoodNetsImpl(const DoodOptions& o);
  /// 2 conv 3x3 (1 -> 8 -> 16, no pooling) then a linear layer to `feature_size` (B.3).
  torch::nn::Sequential image_cnn{nullptr}, glimpse_cnn{nullptr}, residual_cnn{nullptr};
  torch::nn::GRUCell layout_rnn{nullptr}, stroke_rnn{nullptr};
  /// Prior heads: o and l from the layout RNN, s from the stroke RNN.
  torch::nn::Sequential p_o{nullptr}, p_l{nullptr}, p_s{nullptr};
  /// Guide heads.
  torch::nn::Sequential q_o{nullptr}, q_l{nullptr}, q_s{nullptr};
  /// Renderer parameters (sigma_t, omega0_t, omega1) from (l_t, s_t).
  torch::nn::Sequential renderer{nullptr};
  /// Neural baseline of o_t.
  torch::nn::Sequential bl_o{nullptr};
  /// Unconstrained per-pixel scale of the Laplace likelihood.
  torch::Tensor obs_scale;
};
TORCH_MODULE(DoodNets);

/// The renderer parameters of one step, constrained to the supplement's
/// ranges, sigma in [0.01, 0.04], omega0 and omega1 in [0.1, 0.7], or with
/// `renderer_ranges` "authors" to their code's: sigma in [0.005, 0.04],
/// omega0 in [0.1, 0.9], omega1 in [0.1, 1.5].
struct RenderParams {
  torch::Tensor sigma, omega0, omega1;  // each [B]
};

/// Control points of a stroke in its glimpse frame ([B, P, 2] in [0, 1]) as
/// points of the image ([0, 1], the renderer's frame): the glimpse point
/// u = 2 p - 1 goes to the STN's image point A u + t of
/// `ppl::runtime::stn_theta(layout_affine(l))`, then to the renderer's pixel grid.
torch::Tensor glimpse_to_image(const torch::Tensor& points, const torch::Tensor& l, int64_t image_size);

/// The runtime's [B, 6] affine z_where of a layout l = (s, x, y, r): the
/// glimpse covers s [-1, 1]^2 rotated by r radians and centred at (x, y);
/// s is clamped to at least 0.02 so that the window stays invertible.
torch::Tensor layout_affine(const torch::Tensor& l);

/// DooD as an ImageProgram.
class Dood : public ImageProgram {
 public:
  explicit Dood(DoodOptions options = DoodOptions::defaults());

  std::string name() const override { return "dood"; }
  nlohmann::json options() const override;
  int64_t image_size() const override { return options_.image_size; }
  torch::Tensor model(const torch::Tensor& x) override;
  torch::Tensor guide(const torch::Tensor& x) override;
  torch::Tensor sample(int64_t n) override;
  /// Samples with the scales of the prior's layout and stroke Normals (the
  /// Cholesky factors of its mixtures) multiplied by `temperature` (> 0); the
  /// on/off draws and mixture weights are unchanged.
  torch::Tensor sample_tempered(int64_t n, double temperature) override;
  torch::Tensor step_canvases(const Trace& model_trace) override;
  std::vector<ParamGroupSpec> param_groups() const override;
  /// The objective's options: with `normalise_signal`, NVIL's variance
  /// normalisation of the o_t learning signals, with the authors' decay 0.8;
  /// with `beta_signal_only`, beta as the signals' KL weight; with
  /// `pooled_signal_stats`, one running mean and variance for every o_t.
  infer::ElboOptions elbo_options() const override;
  /// Turns the training-only objective on or off (beta, the likelihood's
  /// blur): `ppl train` turns it on, so it applies to training and not to
  /// `ppl ll`.
  void set_training(bool on) override { training_ = on; }
  /// The training step, for the likelihood's blur schedule.
  void set_step(int64_t step) override { step_ = step; }
  /// The standard deviation (pixels) of the Gaussian blur the likelihood
  /// applies to the image and the canvas now: likelihood_blur x (1 - step /
  /// likelihood_blur_steps) while training, 0 from that step on and whenever
  /// training is off (so that log p(x) estimates are exact).
  double likelihood_blur_now() const;
  int64_t batch_size() const override { return options_.batch_size; }
  /// {"mean_strokes": ...}: the mean number of steps the guide draws on x.
  nlohmann::json evaluate(const torch::Tensor& x, const torch::Tensor& labels) override;
  void to(const torch::Device& device) override;
  bool has_likelihood_scale() const override { return true; }
  void set_likelihood_scale(const torch::Tensor& scale) override;

  /// The number of strokes the guide draws per image (sum of its o_t draws), [B].
  torch::Tensor infer_strokes(const torch::Tensor& x);
  /// The weight the latent sites carry now: beta after `set_training(true)`,
  /// 1 otherwise (so that log p(x) estimates are exact), and always 1 with
  /// `beta_signal_only` (where `elbo_options()` carries beta instead).
  double kl_weight() const { return training_ && !options_.beta_signal_only ? options_.beta : 1.0; }
  /// Whether the training-only objective (beta) is on.
  bool training() const { return training_; }
  const DoodOptions& dood_options() const { return options_; }
  DoodNets nets() const { return nets_; }
  /// The renderer parameters predicted from layout l [B, 4] and stroke s [B, P, 2].
  RenderParams render_params(const torch::Tensor& l, const torch::Tensor& s);
  /// Per-stroke images [B, T, H, W] of layouts [B, T, 4] and strokes [B, T, P, 2].
  torch::Tensor render(const torch::Tensor& l, const torch::Tensor& s, const torch::Tensor& sigma,
                       const torch::Tensor& omega0);
  /// Whether the model takes the canvas features the guide computed when it
  /// replays the guide's draws, and the blank canvas goes through the CNN
  /// once per batch (on by default; off, every canvas of every image is
  /// passed, guide and model). The features are the guide's own tensors, so
  /// values and gradients are those of recomputing them; the model
  /// recomputes them where its draws are not the guide's latest ones, where
  /// a parameter changed since, or where it needs gradients the guide's
  /// features lack (a guide run without them).
  void set_feature_reuse(bool on) { reuse_features_ = on; }
  /// Images passed through the CNNs so far (a counter for tests and timing).
  int64_t cnn_images() const { return cnn_images_; }

 private:
  /// Draws the latents from the prior; returns the final canvas [B, 1, H, W].
  torch::Tensor prior(int64_t n, const torch::TensorOptions& opts);
  torch::Tensor features(torch::nn::Sequential cnn, const torch::Tensor& images);
  /// image_cnn's features of n blank canvases: one pass, expanded.
  torch::Tensor blank_features(int64_t n, const torch::TensorOptions& opts);
  /// The versions of the parameters the canvas features depend on (image_cnn, renderer).
  std::vector<int64_t> canvas_versions() const;

  /// The guide's latest draws and its features of the canvas before each step.
  struct GuideCanvas {
    std::vector<torch::Tensor> o, l, s, features;
    std::vector<int64_t> versions;
    bool grad = false;  ///< computed with gradients on
  };

  DoodOptions options_;
  DoodNets nets_;
  bool training_ = false;
  int64_t step_ = 0;
  double temperature_ = 1.0;  ///< multiplies the prior's l and s scales (sample_tempered)
  torch::Tensor fixed_l_loc_, fixed_l_scale_;
  torch::Tensor scale_override_;  ///< set_likelihood_scale; undefined: the learnt scale
  bool reuse_features_ = true;
  GuideCanvas guide_canvas_;
  int64_t cnn_images_ = 0;
};

/// The affine part of the token model (B.4) for a batch: shift in x and y in
/// [-0.2, 0.2], scale in x and y in [0.8, 1.2], rotation and shear in x and y
/// in [-pi/4, pi/4], each uniform. Tensors are [B, 2], [B, 2], [B], [B, 2].
struct TokenAffine {
  /// B.4's ranges: |shift| <= kShift, kScaleLow <= scale <= kScaleHigh,
  /// |rotation|, |shear| <= kAngle.
  static constexpr double kShift = 0.2, kScaleLow = 0.8, kScaleHigh = 1.2, kAngle = std::numbers::pi / 4;

  torch::Tensor shift, scale, rotation, shear;
  /// The identity transform for a batch of n.
  static TokenAffine identity(int64_t n, const torch::TensorOptions& opts = {});
};

/// Draws a token affine transform uniformly from the ranges above.
TokenAffine sample_token_affine(int64_t n, const torch::TensorOptions& opts = {});
/// log p of a token affine under the uniform token prior ([B]; -inf outside).
torch::Tensor token_affine_log_prob(const TokenAffine& a);
/// Applies the affine to points [B, ..., 2] in image coordinates [0, 1] about
/// the image centre c = (0.5, 0.5): p' = R(rotation) H(shear) diag(scale) (p - c) + c + shift,
/// with H = [[1, tan shear_x], [tan shear_y, 1]].
torch::Tensor apply_token_affine(const torch::Tensor& points, const TokenAffine& a);
/// The token model p(s' | s) of B.4: the type's control points [B, ..., 2],
/// a sampled affine, then motor noise s' ~ Normal(affine(s), motor_sd).
torch::Tensor token_model(const torch::Tensor& points, double motor_sd = 1e-3);
/// log p(s' | s, affine) of the motor noise, summed per batch element ([B]).
torch::Tensor token_log_prob(const torch::Tensor& token, const torch::Tensor& type_points, const TokenAffine& a,
                             double motor_sd = 1e-3);

}  // namespace ppl::programs::dood
