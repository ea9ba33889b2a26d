// GENESIS: model, guide, GECO and the boxes of its masks.
#include <ppl/programs/genesis/genesis.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include <ppl/core/reflect.hpp>

namespace ppl::programs::genesis {

namespace {
constexpr std::array<std::pair<Objective, const char*>, 2> kObjectives = {
    {{Objective::elbo, "elbo"}, {Objective::geco, "geco"}}};

const MixtureSites kSites{"z_m", "z_c"};

void require(bool ok, const std::string& message) {
  if (!ok) throw ArgumentError("GENESIS: " + message);
}

MixtureSizes mixture_sizes(const GenesisOptions& o) {
  return {o.image_size, o.components, o.z_mask_size, o.z_comp_size, o.encoder_channels, o.lstm_hidden,
          o.decoder_channels, o.decoder_layers};
}

/// fn() with its sites' log-densities weighted by `weight` (unwrapped at 1).
template <class F>
auto weighted(F fn, double weight) {
  if (weight == 1.0) return fn();
  return handlers::scale(fn, weight)();
}
}  // namespace

std::string to_string(Objective o) {
  for (const auto& [value, text] : kObjectives)
    if (value == o) return text;
  return "?";
}

void to_json(nlohmann::json& j, Objective o) { j = to_string(o); }

void from_json(const nlohmann::json& j, Objective& o) {
  if (j.is_string())
    for (const auto& [value, text] : kObjectives)
      if (j.get<std::string>() == text) {
        o = value;
        return;
      }
  throw ArgumentError(fmt::format("GENESIS: objective is {}, but must be \"elbo\" or \"geco\"", j.dump()));
}

GenesisOptions GenesisOptions::defaults() {
  GenesisOptions o;
  o.image_size = 64;
  o.components = 5;
  o.z_mask_size = 64;
  o.z_comp_size = 16;
  o.encoder_channels = 64;
  o.lstm_hidden = 256;
  o.decoder_channels = 32;
  o.decoder_layers = 4;
  o.likelihood_sd = 0.7;
  o.objective = Objective::geco;
  // A perfect reconstruction costs log(0.7 sqrt(2 pi)) = 0.5623 per pixel.
  o.geco_goal = 0.5655;
  o.geco_step_size = 1e-5;
  o.geco_alpha = 0.99;
  o.geco_beta_init = 1.0;
  o.geco_beta_min = 1e-10;
  o.learning_rate = 1e-4;
  o.clip_norm = 1.0;
  o.batch_size = 32;
  return o;
}

GenesisNetsImpl::GenesisNetsImpl(const GenesisOptions& o) {
  mixture = register_module("mixture", ComponentMixture(mixture_sizes(o)));
  geco = register_parameter("geco", torch::tensor({o.geco_beta_init, 0.0, 0.0}, torch::kFloat), false);
}

Genesis::Genesis(GenesisOptions options) : options_(std::move(options)), nets_(nullptr) {
  const auto& o = options_;
  bool size_ok = false;
  for (int s = 8; s <= 128; s *= 2) size_ok = size_ok || o.image_size == s;
  require(size_ok, fmt::format("image_size is {}, but must be 8, 16, 32, 64 or 128", o.image_size));
  require(o.components >= 2, fmt::format("components is {}, but must be at least 2", o.components));
  for (const auto& [name, value] :
       {std::pair<const char*, int>{"z_mask_size", o.z_mask_size}, {"z_comp_size", o.z_comp_size},
        {"encoder_channels", o.encoder_channels}, {"lstm_hidden", o.lstm_hidden},
        {"decoder_channels", o.decoder_channels}, {"batch_size", o.batch_size}})
    require(value >= 1, fmt::format("{} is {}, but must be at least 1", name, value));
  require(o.decoder_layers >= 0, fmt::format("decoder_layers is {}, but must be at least 0", o.decoder_layers));
  require(o.likelihood_sd > 0, fmt::format("likelihood_sd is {}, but must be positive", o.likelihood_sd));
  require(o.geco_step_size >= 0, fmt::format("geco_step_size is {}, but must be nonnegative", o.geco_step_size));
  require(o.geco_alpha >= 0 && o.geco_alpha < 1, fmt::format("geco_alpha is {}, but must be in [0, 1)", o.geco_alpha));
  require(o.geco_beta_init > 0, fmt::format("geco_beta_init is {}, but must be positive", o.geco_beta_init));
  require(o.geco_beta_min > 0 && o.geco_beta_min <= o.geco_beta_init,
          fmt::format("geco_beta_min is {}, but must be positive and at most geco_beta_init ({})", o.geco_beta_min,
                      o.geco_beta_init));
  require(o.learning_rate > 0, fmt::format("learning_rate is {}, but must be positive", o.learning_rate));
  require(o.clip_norm >= 0, fmt::format("clip_norm is {}, but must be nonnegative", o.clip_norm));
  nets_ = GenesisNets(options_);
}

nlohmann::json Genesis::options() const { return options_to_json(options_); }

double Genesis::geco_beta() const {
  return options_.objective == Objective::geco ? nets_->geco[0].item<double>() : 1.0;
}

double Genesis::kl_weight() const { return training_ ? geco_beta() : 1.0; }

void Genesis::set_step(int64_t step) {
  if (!pending_error_ || options_.objective != Objective::geco) return;
  torch::NoGradGuard no_grad;
  const auto& o = options_;
  auto state = nets_->geco.to(torch::kDouble).cpu();
  double beta = state[0].item<double>(), ema = state[1].item<double>();
  const double updates = state[2].item<double>();
  ema = updates == 0 ? *pending_error_ : o.geco_alpha * ema + (1 - o.geco_alpha) * *pending_error_;
  const double pixels = static_cast<double>(o.image_size) * o.image_size;
  beta = std::max(beta * std::exp(o.geco_step_size * (o.geco_goal - ema) * pixels), o.geco_beta_min);
  nets_->geco.copy_(torch::tensor({beta, ema, updates + 1}, torch::kDouble).to(nets_->geco.options()));
  pending_error_.reset();
}

torch::Tensor Genesis::model(const torch::Tensor& x) {
  check::min_dim({"GENESIS model"}, "x", x, 4);
  ppl::module("genesis", nets_);
  const int64_t n = x.size(0);
  auto data = ppl::plate("data", n);
  auto mix = weighted([&] { return mixture_prior(nets_->mixture, kSites, n, x.options()); }, kl_weight());
  auto likelihood = pixel_mixture(mix.log_masks, mix.means, torch::full({1}, options_.likelihood_sd, x.options()));
  ppl::observe("x", likelihood, x);
  if (training_ && options_.objective == Objective::geco && torch::GradMode::is_enabled()) {
    torch::NoGradGuard no_grad;
    const double pixels = static_cast<double>(x.size(-1)) * x.size(-2);
    pending_error_ = -likelihood.log_prob(x).mean().item<double>() / pixels;
  }
  return (mix.log_masks.exp() * mix.means).sum(1, true);
}

torch::Tensor Genesis::guide(const torch::Tensor& x) {
  check::min_dim({"GENESIS guide"}, "x", x, 4);
  ppl::module("genesis", nets_);
  auto data = ppl::plate("data", x.size(0));
  auto mix = weighted([&] { return mixture_posterior(nets_->mixture, kSites, x); }, kl_weight());
  return mix.log_masks.exp();
}

torch::Tensor Genesis::sample(int64_t n) {
  torch::NoGradGuard no_grad;
  auto opts = nets_->parameters().front().options();
  auto mix = handlers::block([&] {
    auto data = ppl::plate("data", n);
    return mixture_prior(nets_->mixture, kSites, n, opts);
  })();
  return (mix.log_masks.exp() * mix.means).sum(1, true).clamp(0, 1);
}

MixtureDraw Genesis::posterior_mode(const torch::Tensor& x) {
  const auto& o = options_;
  if (x.dim() != 4 || x.size(1) != 1 || x.size(2) != o.image_size || x.size(3) != o.image_size)
    throw std::invalid_argument(fmt::format("GENESIS: images are [{}], but must be [B, 1, {}, {}]",
                                            fmt::join(x.sizes(), ", "), o.image_size, o.image_size));
  torch::NoGradGuard no_grad;
  return mixture_posterior(nets_->mixture, kSites, x, /*mode=*/true);
}

std::pair<torch::Tensor, torch::Tensor> Genesis::decompose(const torch::Tensor& x) {
  auto mix = posterior_mode(x);
  return {mix.log_masks.exp(), mix.means};
}

InferredObjects Genesis::infer_objects(const torch::Tensor& x) {
  auto mix = posterior_mode(x);
  auto masks = mix.log_masks.exp();
  InferredObjects out;
  out.boxes = mask_boxes(masks, 0.5);
  const double half = 0.5 * options_.image_size * options_.image_size;
  for (auto& image : out.boxes)
    for (auto& box : image)
      if (box.width * box.height > half) box.score = 0;
  out.what = mix.z_c_loc.detach().to(torch::kFloat32).cpu();
  return out;
}

nlohmann::json Genesis::evaluate(const torch::Tensor& x, const torch::Tensor& counts) {
  const auto objects = infer_objects(x);
  std::vector<int64_t> inferred;
  for (const auto& image : objects.boxes)
    inferred.push_back(std::count_if(image.begin(), image.end(), [](const ScoredBox& b) { return b.score > 0.5; }));
  auto found = torch::tensor(inferred, torch::kLong);
  nlohmann::json j;
  j["mean_inferred_count"] = found.to(torch::kDouble).mean().item<double>();
  if (counts.defined())
    j["count_accuracy"] = (found == counts.to(torch::kLong).cpu()).to(torch::kDouble).mean().item<double>();
  if (options_.objective == Objective::geco) j["geco_beta"] = geco_beta();
  return j;
}

}  // namespace ppl::programs::genesis
