#pragma once
/// Generative Neurosymbolic Machines (Jiang & Ahn 2020; seed 003) written
/// with the eDSL.
///
/// Model (Eq. 1-2, Algorithms 1-2), for an S x S grid of cells (S = num_cells):
///   z_g = (z_g/0 .. z_g/L-1) ~ StructDRAW prior, drawing the feature map f
///                                  (or, GNM-Gaussian, z_g ~ N(0, I), f = MLP(z_g))
///   z_b     ~ N(MLP(z_g))                         background, p(z_b | z_g) ("overlap" only)
///   z_pres  ~ RelaxedBernoulli(tau, logits(f))    [B, S*S]       per cell
///   z_where ~ N(.(f))                             [B, S*S, 4]    (scale, log aspect, shift x, shift y)
///   z_depth ~ N(.(f))                             [B, S*S, 1]
///   z_what  ~ N(.(f))                             [B, S*S, z_what_size]
///   x       ~ N(render(z_pres, z_where, z_depth, z_what, z_b), likelihood_sd)
/// The networks giving p(z_s | f) are those of q(z_s | f_x) (shared, D.1).
///
/// `composition` chooses the renderer. "overlap" is Algorithm 2: object
/// masks, depth-weighted responsibilities and a background z_b. "additive"
/// is the authors' configuration for MNIST-4 / MNIST-10 (their
/// phase_overlap and phase_background off): x = sum_i z_pres_i o_i on a
/// black canvas, no masks, no background site, z_depth drawn but unused.
/// Without a background, ink can only be explained by objects.
///
/// Guide (Eq. 3): the image encoder (Table 6) gives f_x [B, 128, S, S];
/// q(z_g | x) is StructDRAW's inference pass over f_x (or an MLP for
/// GNM-Gaussian), q(z_b | x) an MLP over f_x and q(z_s | x) the shared
/// structure head over f_x.
///
/// Objective (Eq. 5-9): the ELBO with the z_g sites weighted by beta_g
/// (warm-up 0 -> 1), plus, while gradients are recorded and
/// `auxiliary_losses` is on, an observed site "aux" whose log-density is
///   -KL(q(z_pres|x) || Ber(rho)) - KL(q(z_where|x) || N(mu_where, sd_where))
///   -KL(q(z_what|x) || N(0, I)) - beta_b KL(q(z_b|x) || N(0, I))
/// with beta_b annealed 50 -> 1 (Eq. 7-9); the z_where and z_what terms of
/// each cell are weighted by its q(z_pres = 1 | x), as the authors weight
/// them by z_pres, so that absent cells are not pulled to the prior. The
/// auxiliary terms are training regularisers, not part of p(x), so they are
/// left out when no gradient is recorded (log-likelihood estimates,
/// sampling). They reuse the guide's q(z_s | x) of the same images rather
/// than running the encoder again.
///
/// z_where of cell (i, j) (row i, column j) places a window of width
/// sigmoid(z_where[0]) exp(-z_where[1] / 2) and height sigmoid(z_where[0])
/// exp(z_where[1] / 2) (fractions of the image side; with `z_where_form`
/// "scales", sigmoid(z_where[0]) and sigmoid(z_where[1])) centred at the cell
/// centre plus (2 / S) tanh(z_where[2 or 3]) in the runtime's [-1, 1]
/// coordinates (see where_to_runtime).
///
/// With `presence_kl` "bernoulli" (the authors' objective) the training ELBO
/// takes z_pres's term as -KL(Ber(q) || Ber(p)) in closed form, an observed
/// site "kl_pres", the z_pres sites weighted 0; the relaxed draw still
/// renders the image, so that its gradient stays pathwise.
#include <map>
#include <optional>

#include <boost/hana.hpp>
#include <torch/torch.h>

#include <ppl/core/reflect.hpp>
#include <ppl/dist/normal.hpp>
#include <ppl/programs/gnm/layers.hpp>
#include <ppl/programs/program.hpp>
#include <ppl/programs/structure_map.hpp>

namespace ppl::programs::gnm {

using ppl::programs::BoxForm;

/// Options of GNM; `defaults()` are the paper's (and its authors' MNIST-4
/// configuration's) for 64 x 64 MNIST-4 / MNIST-10.
///
/// `legacy()` holds what a configuration written before an option existed
/// was trained with: runs and exported models are opened over it, so that a
/// key their config.json lacks keeps its old behaviour.
struct GnmOptions {
  PPL_DEFINE_OPTIONS(GnmOptions,
                     (int, image_size),                 // H = W, num_cells times a power of two
                     (int, num_cells),                  // S: the structure map is S x S
                     (int, channels),                   // image encoding / StructDRAW channels (128)
                     (int, encoder_width),              // widest image encoder row (authors 64; Table 6: 128)
                     (std::string, global_prior),       // "structdraw" or "gaussian" (GNM-Gaussian)
                     (int, draw_steps),                 // L (4 or 8)
                     (int, draw_kernel),                // ConvLSTM kernel (Table 9: 3)
                     (int, z_global_size),              // size of each z_g/l (32)
                     (bool, mlp_interaction),           // false: GNM-NoMLP
                     (int, interaction_hidden),         // MLP^int width (512)
                     (int, z_decoder_hidden),           // MLP^g_dec's second layer (authors 512; Table 9: 1024)
                     (int, z_what_size),
                     (int, z_bg_size),
                     (int, glimpse_size),               // side of the decoded object patch
                     (std::string, composition),        // "additive" (authors' MNIST) or "overlap" (Algorithm 2)
                     (double, likelihood_sd),           // sd of the Normal likelihood (0.1 at 64 px)
                     (double, z_pres_temperature),      // tau of the relaxed z_pres, start
                     (double, z_pres_temperature_end),  // ... and end of its linear anneal
                     (int, temperature_anneal_begin),
                     (int, temperature_anneal_end),
                     (double, z_pres_prior),            // rho of the auxiliary Ber(rho), start
                     (double, z_pres_prior_end),        // ... and end of its linear anneal
                     (int, z_pres_prior_anneal_steps),
                     (std::string, z_where_form),       // "scale_aspect" (authors') or "scales" (x and y)
                     (double, scale_prior_mean),        // mu_where of the scales (logit space)
                     (double, scale_prior_sd),
                     (double, aspect_prior_sd),         // sd_where of the log aspect ratio (mean 0)
                     (double, shift_prior_sd),
                     (std::string, presence_kl),        // "bernoulli" (closed form, authors') or "relaxed"
                     (double, mask_curriculum_value),   // object mask during the curriculum (0.9)
                     (int, mask_curriculum_steps),      // its length in steps
                     (double, beta_b_start),            // beta_b annealed from 50 ...
                     (double, beta_b_end),              // ... to 1
                     (int, beta_b_anneal_steps),
                     (double, beta_g_start),            // beta_g warmed from 0 ...
                     (double, beta_g_end),              // ... to 1
                     (int, beta_g_warmup_begin),        // held at beta_g_start until this step
                     (int, beta_g_warmup_steps),
                     (int, z_what_kl_warmup_steps),     // z_what's KLs weighted 0 -> 1 (0: from 1)
                     (bool, auxiliary_losses),          // Eq. 7-8 on (training only)
                     (bool, analytic_kl),               // closed-form Normal KLs in training
                     (std::string, optimiser),          // "rmsprop" (authors') or "adam"
                     (double, learning_rate),
                     (double, clip_norm),               // global gradient-norm bound (0: none)
                     (bool, clip_mean_loss),            // clip_norm bounds the batch mean's gradient (authors')
                     (int, batch_size));

  static GnmOptions defaults();
  static GnmOptions legacy();
};

// The schedule and the structure map's placement, shared with SPACE
// (<ppl/programs/layers.hpp>, <ppl/programs/structure_map.hpp>).
using ppl::programs::linear_schedule;
using ppl::programs::where_to_runtime;

/// The distribution parameters of the structure map from a feature map, the
/// output of the shared head q(z_s | f_x) = p(z_s | f), per cell n = i S + j.
struct StructureParams {
  torch::Tensor pres_logits;              ///< [B, N]
  torch::Tensor where_loc, where_scale;   ///< [B, N, 4]
  torch::Tensor depth_loc, depth_scale;   ///< [B, N, 1]
  torch::Tensor what_loc, what_scale;     ///< [B, N, z_what_size]
};

/// The latents of the structure map and background.
struct StructureLatents {
  torch::Tensor z_pres, z_where, z_depth, z_what, z_b;
};

/// The networks of GNM.
struct GnmNetsImpl : torch::nn::Module {
  explicit GnmNetsImpl(const GnmOptions& o);
  torch::nn::Sequential encoder{nullptr};          // Table 6
  DrawCore draw{nullptr};                          // StructDRAW (structdraw prior)
  torch::nn::Sequential g_enc{nullptr}, g_dec{nullptr};  // GNM-Gaussian: q(z_g | f_x), f = g_dec(z_g)
  torch::nn::Sequential head{nullptr};             // q(z_s | f_x) = p(z_s | f), Table 9
  torch::nn::Sequential bg_enc{nullptr}, bg_prior{nullptr};  // q(z_b | f_x), p(z_b | z_g)
  torch::nn::Sequential glimpse_dec{nullptr};      // Table 7
  torch::nn::Sequential bg_dec{nullptr};           // Table 8
};
TORCH_MODULE(GnmNets);

/// GNM as an ImageProgram ("gnm").
class Gnm : public ImageProgram {
 public:
  explicit Gnm(GnmOptions options = GnmOptions::defaults());

  std::string name() const override { return "gnm"; }
  nlohmann::json options() const override;
  int64_t image_size() const override { return options_.image_size; }
  torch::Tensor model(const torch::Tensor& x) override;
  torch::Tensor guide(const torch::Tensor& x) override;
  /// Samples with z_g from its prior and the mode of z_s and z_b given z_g (D.1).
  torch::Tensor sample(int64_t n) override;
  /// The same samples with the structure they were rendered from: the mode
  /// of z_s (z_pres 0 or 1, the z_where each object was placed at).
  std::pair<torch::Tensor, StructureLatents> sample_structured(int64_t n);
  /// The same generation with the global latent fixed: `z_g` maps the sites
  /// "z_g/0" .. "z_g/L-1" (or "z_g" for GNM-Gaussian) to values [n, ...],
  /// e.g. a guide trace's, edited (Fig. 5's z_g traversals). Throws
  /// ArgumentError naming a missing site.
  torch::Tensor sample_given(const std::map<std::string, torch::Tensor>& z_g);
  /// What StructDRAW has drawn after each step l of a model trace: the image
  /// rendered from the mode of z_s given f_l (and the trace's z_b),
  /// [L, B, 1, H, W]; empty for GNM-Gaussian.
  torch::Tensor step_canvases(const Trace& model_trace) override;
  std::vector<ParamGroupSpec> param_groups() const override { return {{"", options_.learning_rate}}; }
  double clip_norm() const override { return options_.clip_norm; }
  std::string optimiser() const override { return options_.optimiser; }
  /// With `clip_mean_loss` (the authors' convention) clip_norm bounds the
  /// gradient of the loss averaged over the batch.
  bool clips_mean_loss() const override { return options_.clip_mean_loss; }
  /// With `analytic_kl`, the Normal sites (z_g, z_where, z_depth, z_what,
  /// z_b) enter training as -KL(q || p) in closed form, given the sampled
  /// upstream latents, as in the authors' code; z_pres stays a sampled term.
  infer::ElboOptions elbo_options() const override { return {.analytic_kl = options_.analytic_kl}; }
  /// Moves the schedules: tau, rho, beta_b, beta_g and the mask curriculum.
  void set_step(int64_t step) override;
  /// Turns the training-only objective on or off: beta_g and the z_what
  /// warm-up weights on the latent sites, and the auxiliary KL site. `ppl
  /// train` turns it on; off (the default), model and guide are the plain
  /// joint and posterior, so `ppl ll` estimates log p(x) at any step.
  void set_training(bool on) override { training_ = on; }
  bool training() const { return training_; }
  /// True when the program has a background (composition "overlap").
  bool has_background() const { return options_.composition == "overlap"; }
  /// What z_where's first two numbers are (`z_where_form`).
  BoxForm box_form() const {
    return options_.z_where_form == "scales" ? BoxForm::scales : BoxForm::scale_aspect;
  }
  /// Whether z_pres enters the objective now as the closed-form Bernoulli
  /// KL (`presence_kl` "bernoulli", training, gradients on).
  bool closed_form_presence() const;
  int64_t batch_size() const override { return options_.batch_size; }
  /// {"mean_inferred_count", "count_accuracy"}: cells with q(z_pres) > 1/2
  /// against the true object counts (when given).
  nlohmann::json evaluate(const torch::Tensor& x, const torch::Tensor& counts) override;
  void to(const torch::Device& device) override { nets_->to(device); }
  bool infers_objects() const override { return true; }
  /// Per cell of the structure map, the box of the mean of q(z_where | x)
  /// (where_to_runtime in pixels) scored by q(z_pres = 1 | x), and the mean
  /// of q(z_what | x) as its feature row, from one pass of the encoder.
  /// Throws std::invalid_argument for images of another shape.
  InferredObjects infer_objects(const torch::Tensor& x) override;

  /// The mean image, [B, 1, H, W]: Algorithm 2 ("overlap") or the sum of
  /// the present objects ("additive", z.z_b unused and may be undefined).
  torch::Tensor render(const StructureLatents& z);
  /// The head's parameters for a feature map f [B, channels, S, S].
  StructureParams structure_params(const torch::Tensor& f);
  /// Number of cells with q(z_pres | x) > 1/2, [B].
  torch::Tensor infer_counts(const torch::Tensor& x);

  double beta_b() const { return beta_b_; }
  /// beta_g of the schedule at the current step.
  double beta_g() const { return beta_g_; }
  /// The weight the z_g sites carry now: beta_g while training, 1 otherwise.
  double global_kl_weight() const { return training_ ? beta_g_ : 1.0; }
  /// The weight of z_what's KL terms now: the warm-up's while training, 1 otherwise.
  double z_what_kl_weight() const { return training_ ? what_kl_ : 1.0; }
  double temperature() const { return tau_; }
  double z_pres_prior() const { return rho_; }
  bool mask_curriculum() const { return curriculum_; }
  const GnmOptions& gnm_options() const { return options_; }
  GnmNets nets() const { return nets_; }

 private:
  /// The z_what site, its log-density weighted by the z_what KL warm-up.
  torch::Tensor sample_what(const dist::Normal& dist);
  /// The mode of z_s given a feature map f, with background z_b.
  StructureLatents mode_of(const torch::Tensor& f, const torch::Tensor& z_b);
  /// What the guide computed from its images that the model's training terms
  /// need: q(z_s | x) and the output of q(z_b | x)'s MLP.
  struct GuidePass {
    torch::Tensor x;
    StructureParams q;
    torch::Tensor bg;
  };
  /// The model's latents: z_g, then z_b and z_s given it (sites unless
  /// `mode`); with `q`, z_pres's term is the closed-form KL from q.
  StructureLatents prior(int64_t n, const torch::TensorOptions& opts, bool mode, const StructureParams* q = nullptr);
  /// The feature map f drawn by the global prior (sites z_g/l or z_g).
  std::pair<torch::Tensor, torch::Tensor> global_prior(int64_t n, const torch::TensorOptions& opts);
  /// The auxiliary terms of Eq. 7-8 (with beta_b), per image [B].
  torch::Tensor auxiliary_kl(const GuidePass& pass);
  /// Whether the model adds the auxiliary site now (training, gradients on).
  bool adds_auxiliary() const;
  /// The guide's pass over `x`: the one it kept, or the encoder run again
  /// for images the guide was not given.
  GuidePass guide_pass(const torch::Tensor& x);

  /// The guide's last pass while the model needs it (auxiliary site or
  /// closed-form presence KL); the model takes it for the same images (one
  /// encoder pass a step).
  std::optional<GuidePass> guide_pass_;

  GnmOptions options_;
  GnmNets nets_;
  double tau_ = 1.0, rho_ = 0.1, beta_b_ = 50.0, beta_g_ = 0.0, what_kl_ = 1.0;
  bool curriculum_ = true;
  bool training_ = false;
};

}  // namespace ppl::programs::gnm
