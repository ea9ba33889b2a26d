#pragma once
/// Attend-Infer-Repeat (Eslami et al. 2016) written with the eDSL.
///
/// Model, per step t < max_steps, while objects are present:
///   z_pres_t  ~ Bernoulli(rho_t * z_pres_{t-1})        (rho_t: truncated geometric prior on the count)
///   z_where_t ~ Normal([s, x, y]; [scale_prior_mean, pos_prior_mean, pos_prior_mean],
///                      [scale_prior_sd, pos_prior_sd, pos_prior_sd])
///   z_what_t  ~ Normal(0, I)
///   canvas   += z_pres_t * place(decode(z_what_t), z_where_t)
///   x         ~ Normal(canvas, likelihood_sd)            (likelihood "normal", the default)
///   x         ~ Laplace(canvas, b), b in [0.01, 1]        (likelihood "laplace": a learnt
///                                                          per-pixel scale, as DooD's)
/// z_where = (s, x, y) maps image coordinates u in [-1, 1]^2 to window
/// coordinates s u + (x, y) (as the AIR paper and Pyro's example), so the
/// object covers 1/s of the image centred at -(x, y)/s.
///
/// Guide: an LSTM over the image and the previous latents predicts z_pres
/// (score-function site with a neural baseline from a second LSTM),
/// z_where (Normal), then z_what (Normal) from the glimpse cropped at z_where.
#include <boost/hana.hpp>
#include <torch/torch.h>

#include <ppl/programs/lstm.hpp>
#include <ppl/programs/program.hpp>

namespace ppl::programs::air {

/// Options of AIR; `defaults()` reproduces Pyro's AIR example on 50 x 50
/// multi-MNIST with 0-2 digits.
struct AirOptions {
  BOOST_HANA_DEFINE_STRUCT(AirOptions,
                           (int, image_size),            // H = W of the canvas
                           (int, max_steps),             // N, the most objects per image
                           (int, window_size),           // glimpse side in pixels
                           (int, z_what_size),
                           (int, rnn_hidden),
                           (int, encoder_hidden),
                           (int, decoder_hidden),
                           (int, predict_hidden),
                           (int, baseline_hidden),
                           (double, z_pres_prior),       // k of the truncated geometric prior p(n) ~ k^n
                           (std::string, anneal_prior),  // "none" or "exp" (decay of k)
                           (double, anneal_prior_to),
                           (int, anneal_prior_begin),
                           (int, anneal_prior_duration),
                           (double, scale_prior_mean),
                           (double, scale_prior_sd),
                           (double, pos_prior_mean),
                           (double, pos_prior_sd),
                           (std::string, likelihood),    // "normal" (fixed likelihood_sd) or "laplace"
                           (double, likelihood_sd),
                           (double, decoder_output_bias),
                           (bool, use_baselines),
                           (bool, analytic_kl),          // closed-form KLs in the ELBO (mean-field)
                           (int, z_pres_warmup),         // steps with the guide's z_pres fixed at 1/2
                           (double, learning_rate),
                           (double, baseline_learning_rate),
                           (int, batch_size));

  /// The defaults (Pyro AIR example; its README's settings for 0-2 digits).
  static AirOptions defaults();
};

/// The success probabilities rho_0..rho_{N-1} of the z_pres prior such that
/// p(n objects) is proportional to k^n for n = 0..N (a truncated geometric).
std::vector<double> count_prior_trials(double k, int max_steps);

/// The networks of AIR (libtorch module idiom; forward-free, used by the program).
struct AirNetsImpl : torch::nn::Module {
  explicit AirNetsImpl(const AirOptions& o);
  SplitLSTMCell rnn{nullptr}, bl_rnn{nullptr};
  torch::nn::Sequential predict{nullptr}, encode{nullptr}, decode{nullptr}, bl_predict{nullptr};
  torch::Tensor h_init, c_init, bl_h_init, bl_c_init, z_where_init, z_what_init;
  /// Unconstrained per-pixel Laplace scale [1, H, W]; defined only for likelihood "laplace".
  torch::Tensor obs_scale;
};
TORCH_MODULE(AirNets);

/// AIR as an ImageProgram.
class Air : public ImageProgram {
 public:
  explicit Air(AirOptions options = AirOptions::defaults());

  std::string name() const override { return "air"; }
  nlohmann::json options() const override;
  int64_t image_size() const override { return options_.image_size; }
  torch::Tensor model(const torch::Tensor& x) override;
  torch::Tensor guide(const torch::Tensor& x) override;
  torch::Tensor sample(int64_t n) override;
  torch::Tensor step_canvases(const Trace& model_trace) override;
  std::vector<ParamGroupSpec> param_groups() const override;
  infer::ElboOptions elbo_options() const override { return {.analytic_kl = options_.analytic_kl}; }
  void set_step(int64_t step) override;
  int64_t batch_size() const override { return options_.batch_size; }
  /// {"count_accuracy": ..., "confusion": [[...]]} against true counts.
  nlohmann::json evaluate(const torch::Tensor& x, const torch::Tensor& counts) override;
  void to(const torch::Device& device) override;
  bool has_likelihood_scale() const override { return options_.likelihood == "laplace"; }
  void set_likelihood_scale(const torch::Tensor& scale) override;

  /// Inferred number of objects per image (guide draws), [B].
  torch::Tensor infer_counts(const torch::Tensor& x);
  bool infers_objects() const override { return true; }
  /// One guide draw per image: a box per step from z_where (the window's
  /// extent in the image: 1/s of its side, centred at -(x, y)/s), scored by
  /// the guide's presence probability at that step (0 after an absent step),
  /// and z_what as the step's feature row.
  InferredObjects infer_objects(const torch::Tensor& x) override;
  /// The current prior success probabilities rho_t (after annealing).
  const std::vector<double>& prior_trials() const { return trials_; }
  const AirOptions& air_options() const { return options_; }
  AirNets nets() const { return nets_; }

 private:
  /// Draws the latents from the prior and returns the canvas [B, 1, H, W].
  torch::Tensor prior(int64_t n, const torch::TensorOptions& opts);
  /// The decoded object placed on the canvas, [B, 1, H, W].
  torch::Tensor render_object(const torch::Tensor& z_what, const torch::Tensor& z_where);

  AirOptions options_;
  AirNets nets_;
  std::vector<double> trials_;
  int64_t step_ = 0;
  torch::Tensor where_loc_, where_scale_;
  torch::Tensor scale_override_;  // set_likelihood_scale; undefined: the learnt scale
};

/// Converts AIR's z_where (s, x, y) to the runtime's (scale, shift x, shift y)
/// convention of ppl::runtime::stn_crop / stn_place.
torch::Tensor to_runtime_where(const torch::Tensor& z_where);

/// The box in pixels of an image of side `image_size` that the window at
/// z_where = (s, x, y) covers: side image_size / s, centred at -(x, y)/s in
/// coordinates [-1, 1] (s kept at 0.01 or more, as to_runtime_where does).
ScoredBox window_box(double s, double x, double y, int64_t image_size, double score = 1);

}  // namespace ppl::programs::air
