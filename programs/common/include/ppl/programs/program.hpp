#pragma once
/// The interface every image program offers the `ppl` tool (train, ll,
/// sample, trace), and the registry of programs by name.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/infer/elbo.hpp>
#include <ppl/ppl.hpp>
#include <ppl/programs/objects.hpp>

namespace ppl::programs {

/// A learning rate for the parameters whose names start with `prefix`.
struct ParamGroupSpec {
  std::string prefix;
  double lr;
};

/// A generative program over grayscale images x [B, 1, H, W] in [0, 1],
/// with its guide. Programs are written only with the eDSL and the runtime.
class ImageProgram {
 public:
  virtual ~ImageProgram() = default;

  /// The registered name ("air", ...).
  virtual std::string name() const = 0;
  /// The options this instance was built with (round-trips through the factory).
  virtual nlohmann::json options() const = 0;
  /// Height and width of the images it models.
  virtual int64_t image_size() const = 0;

  /// The model: latents from the prior, then `observe("x", ...)` of x.
  virtual torch::Tensor model(const torch::Tensor& x) = 0;
  /// The guide q(z | x): the same latent sites, named as in the model.
  virtual torch::Tensor guide(const torch::Tensor& x) = 0;

  /// `n` unconditional samples [n, 1, H, W] (mean images).
  virtual torch::Tensor sample(int64_t n) = 0;
  /// Samples with the spread of the prior's continuous latents multiplied by
  /// `temperature` (below 1: more typical samples). The default supports
  /// only temperature 1; other values throw ArgumentError naming the program.
  virtual torch::Tensor sample_tempered(int64_t n, double temperature) {
    if (temperature != 1.0)
      throw ArgumentError("program \"" + name() + "\" has no sampling temperature; got " +
                          std::to_string(temperature) + ", only 1 is possible");
    return sample(n);
  }
  /// Reconstructions of x [B, 1, H, W]: the model's mean image at the guide's latents.
  /// The default runs the guide under trace, replays the model against it
  /// and returns the model's result (its mean image) clamped to [0, 1].
  virtual torch::Tensor reconstruct(const torch::Tensor& x) {
    torch::NoGradGuard no_grad;
    auto guide_trace = ppl::trace([this](const torch::Tensor& img) { return guide(img); }, x);
    auto model_trace =
        ppl::trace(handlers::replay([this](const torch::Tensor& img) { return model(img); }, guide_trace), x);
    return model_trace.result<torch::Tensor>().clamp(0, 1);
  }
  /// The canvas after each step of a model trace, [T, B, 1, H, W] (programs
  /// that draw in steps); empty when the program has no steps.
  virtual torch::Tensor step_canvases(const Trace& model_trace) { return {}; }

  /// Learning rates by parameter-name prefix, most specific first; the last
  /// entry (prefix "") is the default.
  virtual std::vector<ParamGroupSpec> param_groups() const = 0;
  /// The objective `ppl train` optimises (particles, KL weights, analytic KL).
  virtual infer::ElboOptions elbo_options() const { return {}; }
  /// The global gradient-norm bound `ppl train` clips to (0: no clipping).
  virtual double clip_norm() const { return 0.0; }
  /// The update rule `ppl train` optimises with: "adam" or "rmsprop"
  /// (`infer::Adam::Rule`).
  virtual std::string optimiser() const { return "adam"; }
  /// True when clip_norm() bounds the gradient of the loss averaged over a
  /// batch (GNM's authors' convention) rather than of the loss summed over it.
  virtual bool clips_mean_loss() const { return false; }
  /// The bound `ppl train` clips the gradient of its loss, which is summed
  /// over a rank's `batch` images, to: clip_norm(), times `batch` when
  /// clips_mean_loss() (the sum's gradient is `batch` times the mean's).
  double clip_bound(int64_t batch) const {
    return clips_mean_loss() ? clip_norm() * static_cast<double>(batch) : clip_norm();
  }
  /// Moves the step-dependent state (annealing schedules, warm-ups) to
  /// `step`: `ppl train` calls it before each optimisation step, and the
  /// commands that open a run (ll, sample, trace, eval) call it with the
  /// checkpoint's step, so a loaded program is the one training left.
  virtual void set_step(int64_t step) {}
  /// Switches the training-only objective on or off (e.g. DooD's beta
  /// weighting of the latent sites): `ppl train` turns it on before its
  /// first step; programs opened for evaluation leave it off.
  virtual void set_training(bool on) {}
  /// Batch size the program was tuned for.
  virtual int64_t batch_size() const { return 64; }
  /// Program-specific evaluation on a labelled batch (e.g. count accuracy);
  /// `labels` may be undefined. Returns named figures.
  virtual nlohmann::json evaluate(const torch::Tensor& x, const torch::Tensor& labels) { return nlohmann::json::object(); }

  /// Evaluation only: whether infer_objects gives the boxes of the objects
  /// the program finds (`ppl eval boxes`).
  virtual bool infers_objects() const { return false; }
  /// Evaluation only: the objects inferred in images x [B, 1, H, W], one box
  /// and feature row per object slot (InferredObjects). Programs without
  /// object slots throw ArgumentError naming themselves.
  virtual InferredObjects infer_objects(const torch::Tensor& x) {
    throw ArgumentError("program \"" + name() + "\" infers no object boxes");
  }

  /// Evaluation only: whether the likelihood has a learnt per-pixel scale
  /// that `set_likelihood_scale` can replace.
  virtual bool has_likelihood_scale() const { return false; }
  /// Evaluation only: observe x with `scale` ([1, H, W], positive) in place of
  /// the learnt per-pixel scale; an undefined tensor restores the learnt one.
  /// Programs without such a scale throw ArgumentError naming themselves.
  virtual void set_likelihood_scale(const torch::Tensor& scale) {
    throw ArgumentError("program \"" + name() + "\" has no learnt likelihood scale to replace");
  }

  /// Moves the program's networks to `device`.
  virtual void to(const torch::Device& device) = 0;
};

/// A learnt per-pixel likelihood scale (DooD's, AIR-Laplace's) from its
/// unconstrained parameter `raw`: 0.01 + 0.99 sigmoid(raw), in [0.01, 1], the
/// DooD authors' bound.
inline torch::Tensor bounded_likelihood_scale(const torch::Tensor& raw) { return 0.01 + 0.99 * torch::sigmoid(raw); }

/// A replacement likelihood scale for `set_likelihood_scale`, checked: a
/// finite, positive float tensor of shape [1, H, W] or [H, W] with H = W =
/// `image_size`; returned as [1, H, W]. Throws ShapeError or ArgumentError naming `program`.
inline torch::Tensor check_likelihood_scale(const std::string& program, const torch::Tensor& scale,
                                            int64_t image_size) {
  auto s = scale.dim() == 2 ? scale.unsqueeze(0) : scale;
  if (s.dim() != 3 || s.size(0) != 1 || s.size(1) != image_size || s.size(2) != image_size)
    throw ShapeError(program + ": a likelihood scale must have shape [1, " + std::to_string(image_size) + ", " +
                     std::to_string(image_size) + "], got " + shape_string(scale.sizes()));
  s = s.to(torch::kFloat);
  const std::string ctx = program + " likelihood scale";
  check::finite({ctx}, "scale", s);
  check::positive({ctx}, "scale", s);
  return s;
}

/// A registered program: its name, a one-line description, its default
/// options and a factory from options (unknown keys are errors).
struct ProgramInfo {
  std::string name;
  std::string description;
  std::function<nlohmann::json()> default_options;
  std::function<std::unique_ptr<ImageProgram>(const nlohmann::json& options)> make;
};

/// Every registered program, by name.
const std::vector<ProgramInfo>& registry();
/// The program named `name`; throws ppl::Error listing the known names.
const ProgramInfo& find_program(const std::string& name);

}  // namespace ppl::programs
