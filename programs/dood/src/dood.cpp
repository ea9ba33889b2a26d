// DooD: model, guide, rendering and the token model.
#include <ppl/programs/dood/dood.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include <ppl/core/reflect.hpp>
#include <ppl/programs/layers.hpp>
#include <ppl/runtime/composite.hpp>
#include <ppl/runtime/image.hpp>
#include <ppl/runtime/render.hpp>
#include <ppl/runtime/stn.hpp>

namespace ppl::programs::dood {
namespace d = ppl::dist;
namespace nn = torch::nn;

DoodOptions DoodOptions::defaults() {
  DoodOptions o;
  o.image_size = 50;
  o.steps = 6;
  o.control_points = 5;
  o.glimpse_size = 50;
  o.render_samples = 100;
  o.rnn_hidden = 256;
  o.mlp_hidden = 256;
  o.feature_size = 256;
  o.sequential_prior = true;
  o.execution_guidance = true;
  o.beta = 4.0;
  // The supplement's on-bias for Omniglot ("e.g. 8"), here for every data
  // set: at the authors' MNIST values (guide 2, prior 1) this program
  // switched every step off within 250 steps (docs/programs/dood.md).
  o.presence_init_bias = 8.0;
  o.prior_presence_init_bias = 8.0;
  // The authors' MNIST configuration decides o_t from the residual alone
  // (its feature and the fraction of the target's ink left unexplained);
  // off by default here, where the o head also reads h^l_t and the target.
  o.presence_from_residual = false;
  // The authors' MNIST configuration normalises the o_t learning signal
  // (NVIL's running variance, `--update_reinforce_loss`); off by default here.
  o.normalise_signal = false;
  // The authors' code leaves the objective unweighted and divides the
  // likelihood by beta in the o_t learning signal only; here beta weighs
  // the whole objective (C.1's beta-VAE reading) unless this is on.
  o.beta_signal_only = false;
  // The authors keep one running mean and variance of the o_t learning
  // signal for all steps, over the images still drawing at step t; here each
  // o_t keeps its own over every image unless this is on.
  o.pooled_signal_stats = false;
  // The authors' MNIST configuration uses 40-component mixtures with x-y
  // correlation for the layout and stroke priors; the supplement describes
  // Normal priors, the default here.
  o.prior_mixtures = 0;
  // Their --correlated_latent correlates x and y in the guide too.
  o.correlated_guide = false;
  // The authors squash the layout means into s in [0.25, 1], x and y in
  // [-0.8, 0.8] and r in [-pi/4, pi/4] (their constrain_z_where) and start
  // the layout sd at sigmoid(-4) = 0.018; here the means are free and the
  // sd starts at 0.104 unless these are set.
  o.squash_layout = false;
  o.layout_init_sd = 0.104;
  // The supplement's renderer ranges with the renderer MLP's default start;
  // "authors": their code's wider ranges, the MLP's last layer zeroed to
  // start at sigma 0.0092, omega0 0.80, omega1 0.48 (biases -2, 2, -1).
  o.renderer_ranges = "supplement";
  // The authors' renderer detaches each stroke's max before dividing by it;
  // here its gradient flows unless this is on (the image is the same).
  o.detach_stroke_max = false;
  // The authors start the learnt per-pixel Laplace scale at the middle of
  // its range [0.01, 1] (raw 0: 0.505), as here; at the learning rate of
  // 1e-4 it takes thousands of steps to fall towards the data's level.
  o.likelihood_scale_init = 0.505;
  // Not in the paper or the authors' code: the image and the canvas both
  // blurred in the likelihood early in training, so that a stroke near a
  // thin line already scores better than no stroke (docs/programs/dood.md,
  // "Omniglot"). Off by default.
  o.likelihood_blur = 0.0;
  o.likelihood_blur_steps = 0;
  o.learning_rate = 1e-4;
  o.nvil_learning_rate = 1e-3;
  // 0: the guide's o head learns at nvil_learning_rate, as its baseline. The
  // authors' o head learns at 1e-4 (their baseline at 1e-3).
  o.presence_learning_rate = 0.0;
  o.batch_size = 64;
  return o;
}

namespace {
constexpr int64_t kLayout = 4;  // (s, x, y, r)

nn::Sequential cnn(int64_t size, int64_t features) {
  const int64_t side = size - 4;  // two 3x3 convolutions, stride 1, no padding
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 8, 3)), nn::ReLU(), nn::Conv2d(nn::Conv2dOptions(8, 16, 3)),
                        nn::ReLU(), nn::Flatten(), nn::Linear(16 * side * side, features), nn::ReLU());
}

// Two hidden layers with tanh (B.3).
nn::Sequential mlp(int64_t in, int64_t hidden, int64_t out) {
  return nn::Sequential(nn::Linear(in, hidden), nn::Tanh(), nn::Linear(hidden, hidden), nn::Tanh(),
                        nn::Linear(hidden, out));
}

// Zero weights and the given bias in the last layer (C.1's initialisations).
void init_last(nn::Sequential& net, const torch::Tensor& bias) {
  torch::NoGradGuard no_grad;
  auto last = net->ptr(net->size() - 1)->as<nn::Linear>();
  last->weight.zero_();
  last->bias.copy_(bias);
}

torch::Tensor bounded(const torch::Tensor& raw, double lo, double hi) { return lo + (hi - lo) * torch::sigmoid(raw); }

// The standard deviations of l and s: in [0.005, 0.505].
torch::Tensor spread(const torch::Tensor& raw) { return bounded(raw, 0.005, 0.505); }

// The raw value that `bounded(raw, lo, hi)` turns into `value` (in (lo, hi)).
double bounded_raw(double value, double lo, double hi) {
  const double u = (value - lo) / (hi - lo);
  return std::log(u / (1 - u));
}

// The raw bias that `spread` turns into the standard deviation sd.
double spread_raw(double sd) { return bounded_raw(sd, 0.005, 0.505); }

// The authors' ranges of the layout means (s, x, y, r), `squash_layout`.
constexpr std::array<double, kLayout> kLayoutLow = {0.25, -0.8, -0.8, -std::numbers::pi / 4};
constexpr std::array<double, kLayout> kLayoutHigh = {1.0, 0.8, 0.8, std::numbers::pi / 4};

// Raw layout means [..., 4] to the means: unchanged, or squashed into the ranges.
torch::Tensor layout_loc(const torch::Tensor& raw, bool squash) {
  if (!squash) return raw;
  auto lo = torch::tensor(std::vector<double>(kLayoutLow.begin(), kLayoutLow.end()), raw.options());
  auto hi = torch::tensor(std::vector<double>(kLayoutHigh.begin(), kLayoutHigh.end()), raw.options());
  return lo + (hi - lo) * torch::sigmoid(raw);
}

// The raw layout mean of the identity glimpse (s = 1, centred, unrotated);
// squashed, s starts at 0.25 + 0.75 sigmoid(6) = 0.998, as the authors' does.
torch::Tensor identity_layout_raw(bool squash) {
  return torch::tensor({squash ? 6.0 : 1.0, 0.0, 0.0, 0.0}, torch::kFloat);
}

// Layout head output [B, 8] to loc [B, 4] and scale [B, 4].
std::pair<torch::Tensor, torch::Tensor> layout_params(const torch::Tensor& out, bool squash) {
  return {layout_loc(out.narrow(1, 0, kLayout), squash), spread(out.narrow(1, kLayout, kLayout))};
}

// Stroke head output [B, 4P] to loc [B, P, 2] in [0, 1] and scale [B, P, 2].
std::pair<torch::Tensor, torch::Tensor> stroke_params(const torch::Tensor& out, int64_t points) {
  const int64_t n = out.size(0), k = 2 * points;
  return {torch::sigmoid(out.narrow(1, 0, k)).view({n, points, 2}), spread(out.narrow(1, k, k)).view({n, points, 2})};
}

// Mixture heads (prior_mixtures = K). The x-y correlation is the Cholesky
// entry L[y][x] = 0.5 tanh(raw), as the authors' factor [[sd_x, 0], [c, sd_y]]
// (theirs bounds c to [-1, 1] with sd in (0, 1); here sd <= 0.505).
constexpr double kCorrelationBound = 0.5;

// A [d, d] tensor with 1 at (row, col).
torch::Tensor unit_entry(int64_t d, int64_t row, int64_t col, const torch::TensorOptions& opts) {
  auto e = torch::zeros({d, d}, opts);
  e[row][col] = 1.0;
  return e;
}

// Layout head output [B, 10K]: logits K | loc 4K | raw scale 4K | raw x-y
// correlation K. Returns p(l_t) with batch [B], event [4]; `temperature`
// multiplies the Cholesky factors.
d::GaussianMixture layout_mixture(const torch::Tensor& out, int64_t k, double temperature, bool squash) {
  const int64_t n = out.size(0);
  auto logits = out.narrow(1, 0, k);
  auto loc = layout_loc(out.narrow(1, k, kLayout * k).view({n, k, kLayout}), squash);
  auto sd = spread(out.narrow(1, (1 + kLayout) * k, kLayout * k)).view({n, k, kLayout});
  auto cor = kCorrelationBound * torch::tanh(out.narrow(1, (1 + 2 * kLayout) * k, k));  // [B, K]
  // l = (s, x, y, r): y (row 2) leans on x (column 1).
  auto tril = torch::diag_embed(sd) + cor.view({n, k, 1, 1}) * unit_entry(kLayout, 2, 1, out.options());
  return d::GaussianMixture(d::logits(logits), loc, tril * temperature);
}

// Stroke head output [B, 6PK]: logits PK | loc 2PK (sigmoid, in [0, 1]) |
// raw scale 2PK | raw correlation PK. Returns p(s_t) with batch [B], event [P, 2].
d::GaussianMixture stroke_mixture(const torch::Tensor& out, int64_t points, int64_t k, double temperature) {
  const int64_t n = out.size(0), pk = points * k;
  auto logits = out.narrow(1, 0, pk).view({n, points, k});
  auto loc = torch::sigmoid(out.narrow(1, pk, 2 * pk)).view({n, points, k, 2});
  auto sd = spread(out.narrow(1, 3 * pk, 2 * pk)).view({n, points, k, 2});
  auto cor = kCorrelationBound * torch::tanh(out.narrow(1, 5 * pk, pk)).view({n, points, k, 1, 1});
  auto tril = torch::diag_embed(sd) + cor * unit_entry(2, 1, 0, out.options());
  return d::GaussianMixture(d::logits(logits), loc, tril * temperature).to_event(1);
}

// A correlated Gaussian from a head without mixture logits: [B, m] -> the
// mixture layout with `logits` zero columns in front (one component).
torch::Tensor with_unit_weight(const torch::Tensor& out, int64_t logits) {
  return torch::cat({torch::zeros({out.size(0), logits}, out.options()), out}, 1);
}

// The authors' start for a mixture head: component 0 carries the weight
// (logit 4, the others -4), every component sits at `loc` (the others with
// N(0, 0.001) noise so that they can part), scales at `raw_scale`,
// correlation 0. Layout: per component [logit | loc | raw scale | raw cor].
torch::Tensor mixture_bias(int64_t k, const torch::Tensor& loc, double raw_scale) {
  const int64_t d = loc.size(0);
  auto logits = torch::full({k}, -4.0);
  logits[0] = 4.0;
  auto locs = loc.unsqueeze(0).repeat({k, 1});
  locs.narrow(0, 1, k - 1).add_(0.001 * torch::randn({k - 1, d}));
  return torch::cat({logits, locs.flatten(), torch::full({k * d}, raw_scale), torch::zeros({k})});
}

torch::Tensor cat_defined(std::initializer_list<torch::Tensor> parts) {
  std::vector<torch::Tensor> v;
  for (const auto& p : parts)
    if (p.defined()) v.push_back(p);
  return torch::cat(v, 1);
}

// Runs f with every site's log-probability multiplied by w (beta on the KL
// terms: the latent sites of both model and guide carry it).
template <class F>
auto weighted(double w, F&& f) {
  if (w == 1.0) return f();
  handlers::ScaleHandler scale(w);
  HandlerScope scope(scale);
  return f();
}
}  // namespace

DoodNetsImpl::DoodNetsImpl(const DoodOptions& o) {
  const int64_t F = o.feature_size, H = o.rnn_hidden, M = o.mlp_hidden, P = o.control_points;
  const int64_t guidance = o.execution_guidance ? F : 0;
  image_cnn = register_module("image_cnn", cnn(o.image_size, F));
  // The glimpse shares the image extractor when it has the image's size (B.3).
  glimpse_cnn = o.glimpse_size == o.image_size ? image_cnn : register_module("glimpse_cnn", cnn(o.glimpse_size, F));
  residual_cnn = register_module("residual_cnn", cnn(o.image_size, F));
  layout_rnn = register_module("layout_rnn", nn::GRUCell(1 + kLayout + 2 * P + guidance, H));
  stroke_rnn = register_module("stroke_rnn", nn::GRUCell(kLayout + 2 * P + guidance, H));
  p_o = register_module("p_o", mlp(H, M, 1));
  const int64_t K = o.prior_mixtures;
  p_l = register_module("p_l", mlp(H, M, K > 0 ? (2 + 2 * kLayout) * K : 2 * kLayout));
  p_s = register_module("p_s", mlp(H, M, K > 0 ? 6 * P * K : 4 * P));
  const int64_t presence_in = o.presence_from_residual ? F + 1 : H + F + guidance;
  q_o = register_module("q_o", mlp(presence_in, M, 1));
  // correlated_guide: one x-y correlation entry more per layout and per point.
  const int64_t cor = o.correlated_guide ? 1 : 0;
  q_l = register_module("q_l", mlp(H + F + guidance, M, 2 * kLayout + cor));
  q_s = register_module("q_s", mlp(H + F + guidance, M, (4 + cor) * P));
  renderer = register_module("renderer", mlp(kLayout + 2 * P, M, 3));
  bl_o = register_module("bl_o", mlp(presence_in, M, 1));
  // bounded_likelihood_scale(raw) = bounded(raw, 0.01, 1) = likelihood_scale_init.
  obs_scale = register_parameter(
      "obs_scale", torch::full({1, o.image_size, o.image_size}, bounded_raw(o.likelihood_scale_init, 0.01, 1.0)));
  if (o.renderer_ranges == "authors") init_last(renderer, torch::tensor({-2.0, 2.0, -1.0}, torch::kFloat));
  // Identity layout (s = 1, centred, unrotated) with a small spread; o on.
  const double raw_sd = spread_raw(o.layout_init_sd);
  auto identity = torch::cat({identity_layout_raw(o.squash_layout), torch::full({kLayout}, raw_sd)});
  if (K > 0) {
    init_last(p_l, mixture_bias(K, identity.narrow(0, 0, kLayout), raw_sd));
  } else {
    init_last(p_l, identity);
  }
  init_last(q_l, o.correlated_guide ? torch::cat({identity, torch::zeros({1})}) : identity);
  init_last(p_o, torch::full({1}, o.prior_presence_init_bias));
  init_last(q_o, torch::full({1}, o.presence_init_bias));
}

torch::Tensor layout_affine(const torch::Tensor& l) {
  auto s = l.select(1, 0).clamp_min(0.02), x = l.select(1, 1), y = l.select(1, 2), r = l.select(1, 3);
  auto c = s * torch::cos(r), sn = s * torch::sin(r);
  return torch::stack({c, -sn, x, sn, c, y}, 1);
}

torch::Tensor glimpse_to_image(const torch::Tensor& points, const torch::Tensor& l, int64_t image_size) {
  auto theta = ppl::runtime::stn_theta(layout_affine(l));  // [B, 2, 3]
  auto u = 2 * points - 1;                                   // [B, P, 2], window frame [-1, 1]
  auto img = torch::matmul(u, theta.narrow(2, 0, 2).transpose(1, 2)) + theta.select(2, 2).unsqueeze(1);
  // STN pixel centres sit at (2 i + 1) / n - 1, the renderer's at i / n.
  return (img + 1) / 2 - 0.5 / static_cast<double>(image_size);
}

Dood::Dood(DoodOptions options) : options_(std::move(options)), nets_(options_) {
  const auto& o = options_;
  if (o.steps < 1) throw ArgumentError(fmt::format("DooD: steps is {}, but must be at least 1", o.steps));
  if (o.control_points < 2)
    throw ArgumentError(fmt::format("DooD: control_points is {}, but must be at least 2", o.control_points));
  if (o.image_size < 5 || o.glimpse_size < 5)
    throw ArgumentError(fmt::format("DooD: image_size is {} and glimpse_size {}, but both must be at least 5",
                                    o.image_size, o.glimpse_size));
  if (!(o.beta > 0)) throw ArgumentError(fmt::format("DooD: beta is {}, but must be positive", o.beta));
  if (o.prior_mixtures < 0)
    throw ArgumentError(fmt::format("DooD: prior_mixtures is {}, but must be 0 (Normal priors) or more",
                                    o.prior_mixtures));
  if (o.prior_mixtures > 0 && !o.sequential_prior)
    throw ArgumentError(
        "DooD: prior_mixtures needs sequential_prior (DooD-SP's fixed priors have no network to predict mixtures)");
  if (o.renderer_ranges != "supplement" && o.renderer_ranges != "authors")
    throw ArgumentError(fmt::format("DooD: renderer_ranges is \"{}\", but must be \"supplement\" or \"authors\"",
                                    o.renderer_ranges));
  if (!(o.layout_init_sd > 0.005 && o.layout_init_sd < 0.505))
    throw ArgumentError(fmt::format(
        "DooD: layout_init_sd is {}, but must lie in (0.005, 0.505), the range of the layout's sd", o.layout_init_sd));
  if (!(o.likelihood_scale_init > 0.01 && o.likelihood_scale_init < 1.0))
    throw ArgumentError(fmt::format("DooD: likelihood_scale_init is {}, but must lie in (0.01, 1), the range of the "
                                    "learnt likelihood scale",
                                    o.likelihood_scale_init));
  if (!(std::isfinite(o.likelihood_blur) && o.likelihood_blur >= 0))
    throw ArgumentError(fmt::format("DooD: likelihood_blur is {}, but must be a finite number of pixels >= 0",
                                    o.likelihood_blur));
  if (o.likelihood_blur_steps < 0 || (o.likelihood_blur > 0 && o.likelihood_blur_steps == 0))
    throw ArgumentError(fmt::format("DooD: likelihood_blur_steps is {}, but must be positive with a likelihood_blur "
                                    "(the steps over which the blur falls to none) and not negative",
                                    o.likelihood_blur_steps));
  if (!(o.presence_learning_rate >= 0))
    throw ArgumentError(fmt::format(
        "DooD: presence_learning_rate is {}, but must be 0 (nvil_learning_rate) or positive", o.presence_learning_rate));
  if (o.presence_from_residual && !o.execution_guidance)
    throw ArgumentError(
        "DooD: presence_from_residual needs execution_guidance (without it the guide has no residual to read)");
  // DooD-SP's fixed priors (the authors' independent prior: points around the
  // glimpse centre, a glimpse of about half the image anywhere).
  fixed_l_loc_ = torch::tensor({0.5, 0.0, 0.0, 0.0}, torch::kFloat);
  fixed_l_scale_ = torch::tensor({0.3, 0.5, 0.5, 0.5}, torch::kFloat);
}

nlohmann::json Dood::options() const { return options_to_json(options_); }

infer::ElboOptions Dood::elbo_options() const {
  infer::ElboOptions e;
  if (options_.normalise_signal) {
    e.normalise_variance = true;
    e.baseline_decay = 0.8;
  }
  if (options_.beta_signal_only) e.signal_kl_weight = options_.beta;
  if (options_.pooled_signal_stats) e.pooled_baselines = {"o/"};
  return e;
}

void Dood::to(const torch::Device& device) {
  nets_->to(device);
  fixed_l_loc_ = fixed_l_loc_.to(device);
  fixed_l_scale_ = fixed_l_scale_.to(device);
  if (scale_override_.defined()) scale_override_ = scale_override_.to(device);
}

void Dood::set_likelihood_scale(const torch::Tensor& scale) {
  scale_override_ =
      scale.defined() ? check_likelihood_scale("dood", scale, options_.image_size).to(fixed_l_loc_.device()) : scale;
}

std::vector<ParamGroupSpec> Dood::param_groups() const {
  const double presence = options_.presence_learning_rate > 0 ? options_.presence_learning_rate
                                                               : options_.nvil_learning_rate;
  return {{"dood.q_o", presence},
          {"dood.bl_", options_.nvil_learning_rate},
          {"", options_.learning_rate}};
}

torch::Tensor Dood::features(nn::Sequential cnn, const torch::Tensor& images) {
  cnn_images_ += images.size(0);
  return cnn->forward(images);
}

torch::Tensor Dood::blank_features(int64_t n, const torch::TensorOptions& opts) {
  const int64_t S = options_.image_size;
  return features(nets_->image_cnn, torch::zeros({1, 1, S, S}, opts)).expand({n, -1});
}

std::vector<int64_t> Dood::canvas_versions() const {
  return parameter_versions({nets_->image_cnn.get(), nets_->renderer.get()});
}

RenderParams Dood::render_params(const torch::Tensor& l, const torch::Tensor& s) {
  auto out = nets_->renderer->forward(torch::cat({l, s.flatten(1)}, 1));
  if (options_.renderer_ranges == "authors")
    return {bounded(out.select(1, 0), 0.005, 0.04), bounded(out.select(1, 1), 0.1, 0.9),
            bounded(out.select(1, 2), 0.1, 1.5)};
  return {bounded(out.select(1, 0), 0.01, 0.04), bounded(out.select(1, 1), 0.1, 0.7), bounded(out.select(1, 2), 0.1, 0.7)};
}

torch::Tensor Dood::render(const torch::Tensor& l, const torch::Tensor& s, const torch::Tensor& sigma,
                           const torch::Tensor& omega0) {
  const int64_t b = s.size(0), t = s.size(1), p = s.size(2);
  auto points = glimpse_to_image(s.reshape({b * t, p, 2}), l.reshape({b * t, kLayout}), options_.image_size);
  return ppl::runtime::render_strokes(points.view({b, t, p, 2}), sigma, omega0,
                                      {.height = options_.image_size,
                                       .width = options_.image_size,
                                       .samples = options_.render_samples,
                                       .detach_max = options_.detach_stroke_max});
}

torch::Tensor Dood::prior(int64_t n, const torch::TensorOptions& opts) {
  const auto& o = options_;
  const int64_t P = o.control_points, S = o.image_size;
  ppl::module("dood", nets_);
  auto data = ppl::plate("data", n);
  auto h_l = torch::zeros({n, o.rnn_hidden}, opts), h_s = torch::zeros({n, o.rnn_hidden}, opts);
  auto o_prev = torch::zeros({n, 1}, opts), l_prev = torch::zeros({n, kLayout}, opts);
  auto s_prev = torch::zeros({n, 2 * P}, opts), alive = torch::ones({n}, opts);
  auto sum = torch::zeros({n, 1, S, S}, opts);  // detached sum of strokes so far
  torch::Tensor omega1;
  std::vector<torch::Tensor> strokes;
  const double w = kl_weight();
  // The guide's canvas features serve while this run's draws are the guide's
  // (a replay of its latest trace), with the same parameters, and carry
  // gradients where this run needs them.
  const auto& from_guide = guide_canvas_;
  bool replaying = reuse_features_ && !from_guide.features.empty() && from_guide.features.front().size(0) == n &&
                   from_guide.versions == canvas_versions() && (from_guide.grad || !torch::GradMode::is_enabled());
  for (int t = 0; t < o.steps; ++t) {
    torch::Tensor o_t, l_t, s_t;
    if (o.sequential_prior) {
      torch::Tensor canvas_feat;
      if (o.execution_guidance) {
        if (replaying && t < static_cast<int>(from_guide.features.size())) {
          canvas_feat = from_guide.features[t];
        } else if (t == 0 && reuse_features_) {
          canvas_feat = blank_features(n, opts);
        } else {
          auto canvas = t == 0 ? sum : torch::tanh(sum / omega1.detach().view({n, 1, 1, 1}));
          canvas_feat = features(nets_->image_cnn, canvas);
        }
      }
      h_l = nets_->layout_rnn->forward(cat_defined({o_prev, l_prev, s_prev, canvas_feat}), h_l);
      auto prob = torch::sigmoid(nets_->p_o->forward(h_l).squeeze(1));
      o_t = weighted(w, [&] { return ppl::sample(addr("o", t), d::Bernoulli(alive * prob)); });
      auto mask = o_t > 0.5;
      const int64_t K = o.prior_mixtures;
      auto l_out = nets_->p_l->forward(h_l);
      l_t = weighted(w, [&] {
        if (K > 0) return ppl::sample(addr("l", t), layout_mixture(l_out, K, temperature_, o.squash_layout), {.mask = mask});
        auto [l_loc, l_scale] = layout_params(l_out, o.squash_layout);
        return ppl::sample(addr("l", t), d::Normal(l_loc, l_scale * temperature_).to_event(1), {.mask = mask});
      });
      h_s = nets_->stroke_rnn->forward(cat_defined({l_t, s_prev, canvas_feat}), h_s);
      auto s_out = nets_->p_s->forward(h_s);
      s_t = weighted(w, [&] {
        if (K > 0) return ppl::sample(addr("s", t), stroke_mixture(s_out, P, K, temperature_), {.mask = mask});
        auto [s_loc, s_scale] = stroke_params(s_out, P);
        return ppl::sample(addr("s", t), d::Normal(s_loc, s_scale * temperature_).to_event(2), {.mask = mask});
      });
    } else {
      o_t = weighted(w, [&] { return ppl::sample(addr("o", t), d::Bernoulli(alive * 0.5)); });
      auto mask = o_t > 0.5;
      l_t = weighted(w, [&] {
        return ppl::sample(addr("l", t),
                           d::Normal(fixed_l_loc_.to(opts).expand({n, kLayout}), (fixed_l_scale_ * temperature_).to(opts).expand({n, kLayout}))
                               .to_event(1),
                           {.mask = mask});
      });
      s_t = weighted(w, [&] {
        return ppl::sample(addr("s", t), d::Normal(torch::full({n, P, 2}, 0.5, opts), 0.2 * temperature_).to_event(2), {.mask = mask});
      });
    }
    replaying = replaying && t < static_cast<int>(from_guide.o.size()) && o_t.is_same(from_guide.o[t]) &&
                l_t.is_same(from_guide.l[t]) && s_t.is_same(from_guide.s[t]);
    auto rp = render_params(l_t, s_t);
    if (t == 0) omega1 = rp.omega1;
    auto stroke = render(l_t.unsqueeze(1), s_t.unsqueeze(1), rp.sigma.unsqueeze(1), rp.omega0.unsqueeze(1));
    stroke = stroke * o_t.view({n, 1, 1, 1});
    strokes.push_back(stroke);
    sum = sum + stroke.detach();
    o_prev = o_t.unsqueeze(1);
    l_prev = l_t;
    s_prev = s_t.flatten(1);
    alive = o_t;
  }
  guide_canvas_ = {};  // used once: a later run recomputes
  // Only the final canvas carries gradients (C.1).
  auto canvases = ppl::runtime::composite(torch::cat(strokes, 1), omega1);
  return canvases.narrow(1, o.steps - 1, 1);
}

torch::Tensor Dood::model(const torch::Tensor& x) {
  check::min_dim({"DooD model"}, "x", x, 4);
  auto canvas = prior(x.size(0), x.options());
  auto data = ppl::plate("data", x.size(0));
  auto per_pixel = scale_override_.defined() ? scale_override_ : bounded_likelihood_scale(nets_->obs_scale);
  auto scale = per_pixel.unsqueeze(0).expand_as(canvas);
  // Training only: image and canvas blurred alike (likelihood_blur_now;
  // sigma 0 leaves both as they are).
  const double blur = likelihood_blur_now();
  ppl::observe("x", d::Laplace(ppl::runtime::gaussian_blur(canvas, blur), scale).to_event(3),
               ppl::runtime::gaussian_blur(x, blur));
  return canvas;
}

double Dood::likelihood_blur_now() const {
  const auto& o = options_;
  if (!training_ || o.likelihood_blur <= 0 || step_ >= o.likelihood_blur_steps) return 0.0;
  return o.likelihood_blur * (1.0 - static_cast<double>(std::max<int64_t>(step_, 0)) / o.likelihood_blur_steps);
}

torch::Tensor Dood::guide(const torch::Tensor& x) {
  check::min_dim({"DooD guide"}, "x", x, 4);
  const auto& o = options_;
  const int64_t n = x.size(0), P = o.control_points, S = o.image_size;
  const auto opts = x.options();
  ppl::module("dood", nets_);
  auto data = ppl::plate("data", n);
  auto target_feat = features(nets_->image_cnn, x);
  // The target's ink, once per image, for presence_from_residual's ink ratio.
  const auto ink = o.presence_from_residual ? x.sum({1, 2, 3}) : torch::Tensor();
  auto h_l = torch::zeros({n, o.rnn_hidden}, opts), h_s = torch::zeros({n, o.rnn_hidden}, opts);
  auto o_prev = torch::zeros({n, 1}, opts), l_prev = torch::zeros({n, kLayout}, opts);
  auto s_prev = torch::zeros({n, 2 * P}, opts), alive = torch::ones({n}, opts);
  auto sum = torch::zeros({n, 1, S, S}, opts);
  torch::Tensor omega1;
  std::vector<torch::Tensor> on;
  const double w = kl_weight();
  // This draw's canvas features, for the model replayed on it (`prior`).
  guide_canvas_ = {};
  const bool keep = reuse_features_ && o.execution_guidance && o.sequential_prior;
  if (keep) {
    guide_canvas_.versions = canvas_versions();
    guide_canvas_.grad = torch::GradMode::is_enabled();
  }
  for (int t = 0; t < o.steps; ++t) {
    torch::Tensor canvas_feat, residual_feat, ink_left;
    if (o.execution_guidance) {
      // Canvas so far and residual are detached (C.1).
      auto canvas = t == 0 ? sum : torch::tanh(sum / omega1.detach().view({n, 1, 1, 1}));
      auto residual = (x - canvas).detach();
      canvas_feat = t == 0 && reuse_features_ ? blank_features(n, opts) : features(nets_->image_cnn, canvas);
      residual_feat = features(nets_->residual_cnn, residual);
      // Fraction of the target's ink not yet drawn (0 for a blank target).
      if (o.presence_from_residual)
        ink_left = torch::nan_to_num(residual.sum({1, 2, 3}) / ink, 0.0, 0.0, 0.0).unsqueeze(1);
    }
    h_l = nets_->layout_rnn->forward(cat_defined({o_prev, l_prev, s_prev, canvas_feat}), h_l);
    auto q_in = cat_defined({h_l, target_feat, residual_feat});
    auto o_in = o.presence_from_residual ? torch::cat({residual_feat, ink_left}, 1) : q_in;
    auto prob = torch::sigmoid(nets_->q_o->forward(o_in).squeeze(1));
    // The baseline b(z_{<t}, x) reads detached inputs: its loss trains only itself.
    auto baseline = nets_->bl_o->forward(o_in.detach()).squeeze(1) * alive.detach();
    auto o_t = weighted(w, [&] {
      // With pooled_signal_stats, the mask keeps the images that stopped
      // drawing before step t (o_t = 0 there for sure) out of the signal's
      // statistics; their log q is 0 either way.
      return ppl::sample(addr("o", t), d::Bernoulli(alive * prob),
                         {.baseline = baseline, .mask = options_.pooled_signal_stats ? alive > 0.5 : torch::Tensor()});
    });
    auto mask = o_t > 0.5;
    auto l_out = nets_->q_l->forward(q_in);
    auto l_t = weighted(w, [&] {
      if (o.correlated_guide)
        return ppl::sample(addr("l", t), layout_mixture(with_unit_weight(l_out, 1), 1, 1.0, o.squash_layout), {.mask = mask});
      auto [l_loc, l_scale] = layout_params(l_out, o.squash_layout);
      return ppl::sample(addr("l", t), d::Normal(l_loc, l_scale).to_event(1), {.mask = mask});
    });
    auto glimpse = ppl::runtime::stn_crop(x, layout_affine(l_t), o.glimpse_size);
    auto glimpse_feat = features(nets_->glimpse_cnn, glimpse);
    h_s = nets_->stroke_rnn->forward(cat_defined({l_t, s_prev, canvas_feat}), h_s);
    auto s_out = nets_->q_s->forward(cat_defined({h_s, glimpse_feat, residual_feat}));
    auto s_t = weighted(w, [&] {
      if (o.correlated_guide)
        return ppl::sample(addr("s", t), stroke_mixture(with_unit_weight(s_out, P), P, 1, 1.0), {.mask = mask});
      auto [s_loc, s_scale] = stroke_params(s_out, P);
      return ppl::sample(addr("s", t), d::Normal(s_loc, s_scale).to_event(2), {.mask = mask});
    });
    if (o.execution_guidance) {
      torch::NoGradGuard no_grad;
      auto rp = render_params(l_t, s_t);
      if (t == 0) omega1 = rp.omega1;
      auto stroke = render(l_t.unsqueeze(1), s_t.unsqueeze(1), rp.sigma.unsqueeze(1), rp.omega0.unsqueeze(1));
      sum = sum + stroke * o_t.view({n, 1, 1, 1});
    }
    if (keep) {
      guide_canvas_.features.push_back(canvas_feat);
      guide_canvas_.o.push_back(o_t);
      guide_canvas_.l.push_back(l_t);
      guide_canvas_.s.push_back(s_t);
    }
    o_prev = o_t.unsqueeze(1);
    l_prev = l_t;
    s_prev = s_t.flatten(1);
    alive = o_t;
    on.push_back(o_t);
  }
  return torch::stack(on, 1);
}

torch::Tensor Dood::sample(int64_t n) {
  torch::NoGradGuard no_grad;
  auto opts = nets_->obs_scale.options();
  return handlers::block([&] { return prior(n, opts); })().clamp(0, 1);
}

torch::Tensor Dood::sample_tempered(int64_t n, double temperature) {
  if (!(temperature > 0))
    throw ArgumentError(fmt::format("dood: sampling temperature must be positive, got {}", temperature));
  struct Restore {
    double& t;
    ~Restore() { t = 1.0; }
  } restore{temperature_};
  temperature_ = temperature;
  return sample(n);
}

torch::Tensor Dood::step_canvases(const Trace& tr) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> os, ls, ss;
  for (int t = 0; t < options_.steps; ++t) {
    os.push_back(tr.site(addr("o", t)).value);
    ls.push_back(tr.site(addr("l", t)).value);
    ss.push_back(tr.site(addr("s", t)).value);
  }
  auto o = torch::stack(os, 1), l = torch::stack(ls, 1), s = torch::stack(ss, 1);  // [B, T], [B, T, 4], [B, T, P, 2]
  const int64_t b = o.size(0), t = o.size(1);
  auto rp = render_params(l.flatten(0, 1), s.flatten(0, 1));
  auto strokes = render(l, s, rp.sigma.view({b, t}), rp.omega0.view({b, t})) * o.view({b, t, 1, 1});
  auto canvases = ppl::runtime::composite(strokes, rp.omega1.view({b, t}).select(1, 0));
  return canvases.transpose(0, 1).unsqueeze(2);
}

torch::Tensor Dood::infer_strokes(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return handlers::block([this](const torch::Tensor& img) { return guide(img); })(x).sum(1);
}

nlohmann::json Dood::evaluate(const torch::Tensor& x, const torch::Tensor& labels) {
  return {{"mean_strokes", infer_strokes(x).to(torch::kDouble).mean().item<double>()}};
}

// ---------------------------------------------------------------- token model

TokenAffine TokenAffine::identity(int64_t n, const torch::TensorOptions& opts) {
  return {torch::zeros({n, 2}, opts), torch::ones({n, 2}, opts), torch::zeros({n}, opts), torch::zeros({n, 2}, opts)};
}

TokenAffine sample_token_affine(int64_t n, const torch::TensorOptions& opts) {
  auto u = [&](std::vector<int64_t> shape, double lo, double hi) {
    return torch::rand(shape, opts) * (hi - lo) + lo;
  };
  using A = TokenAffine;
  return {u({n, 2}, -A::kShift, A::kShift), u({n, 2}, A::kScaleLow, A::kScaleHigh), u({n}, -A::kAngle, A::kAngle),
          u({n, 2}, -A::kAngle, A::kAngle)};
}

torch::Tensor token_affine_log_prob(const TokenAffine& a) {
  using A = TokenAffine;
  auto inside = [](const torch::Tensor& v, double lo, double hi) { return (v >= lo).logical_and(v <= hi); };
  auto ok = inside(a.shift, -A::kShift, A::kShift).all(1)
                .logical_and(inside(a.scale, A::kScaleLow, A::kScaleHigh).all(1))
                .logical_and(inside(a.rotation, -A::kAngle, A::kAngle))
                .logical_and(inside(a.shear, -A::kAngle, A::kAngle).all(1));
  // Seven independent uniforms: 2 shifts, 2 scales, 1 rotation, 2 shears.
  const double lp =
      -2 * std::log(2 * A::kShift) - 2 * std::log(A::kScaleHigh - A::kScaleLow) - 3 * std::log(2 * A::kAngle);
  return torch::where(ok, torch::full_like(a.rotation, lp), torch::full_like(a.rotation, -INFINITY));
}

torch::Tensor apply_token_affine(const torch::Tensor& points, const TokenAffine& a) {
  const int64_t n = points.size(0);
  auto cr = torch::cos(a.rotation), sr = torch::sin(a.rotation);
  auto rot = torch::stack({cr, -sr, sr, cr}, 1).view({n, 2, 2});
  auto one = torch::ones_like(a.rotation);
  auto shear = torch::stack({one, torch::tan(a.shear.select(1, 0)), torch::tan(a.shear.select(1, 1)), one}, 1).view({n, 2, 2});
  auto m = torch::matmul(torch::matmul(rot, shear), torch::diag_embed(a.scale));  // [B, 2, 2]
  auto flat = points.reshape({n, -1, 2}) - 0.5;
  auto out = torch::matmul(flat, m.transpose(1, 2)) + 0.5 + a.shift.unsqueeze(1);
  return out.view(points.sizes());
}

torch::Tensor token_model(const torch::Tensor& points, double motor_sd) {
  auto a = sample_token_affine(points.size(0), points.options());
  auto mean = apply_token_affine(points, a);
  return motor_sd > 0 ? mean + motor_sd * torch::randn_like(mean) : mean;
}

torch::Tensor token_log_prob(const torch::Tensor& token, const torch::Tensor& type_points, const TokenAffine& a,
                             double motor_sd) {
  auto mean = apply_token_affine(type_points, a);
  auto z = (token - mean) / motor_sd;
  auto lp = -0.5 * z * z - std::log(motor_sd) - 0.5 * std::log(2 * std::numbers::pi);
  return lp.reshape({token.size(0), -1}).sum(1);
}

}  // namespace ppl::programs::dood
