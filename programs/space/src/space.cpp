// SPACE: a parallel foreground over a background mixture.
#include <ppl/programs/space/space.hpp>

#include <stdexcept>

#include <fmt/format.h>

#include <ppl/core/reflect.hpp>
#include <ppl/dist/normal.hpp>
#include <ppl/dist/relaxed_bernoulli.hpp>
#include <ppl/runtime/stn.hpp>

namespace ppl::programs::space {
namespace d = ppl::dist;
namespace nn = torch::nn;

namespace {
const MixtureSites kBackground{"z_bg_m", "z_bg_c"};
/// Per cell: pres logit, where loc and raw scale (4 + 4), depth loc and raw scale (1 + 1).
constexpr int64_t kHeadChannels = 11;

void require(bool ok, const std::string& message) {
  if (!ok) throw ArgumentError("SPACE: " + message);
}

bool power_of_two(int64_t v, int64_t low, int64_t high) {
  for (int64_t s = low; s <= high; s *= 2)
    if (v == s) return true;
  return false;
}

MixtureSizes background_sizes(const SpaceOptions& o) {
  return {o.image_size,          o.bg_components,       o.z_bg_mask_size,      o.z_bg_comp_size,
          o.bg_encoder_channels, o.bg_lstm_hidden,      o.bg_decoder_channels, o.bg_decoder_layers};
}

/// The per-cell parameters of q(z_pres), q(z_where), q(z_depth).
struct CellParams {
  torch::Tensor pres_logits, where_loc, where_scale, depth_loc, depth_scale;
};
}  // namespace

SpaceOptions SpaceOptions::defaults() {
  SpaceOptions o;
  o.image_size = 64;
  o.num_cells = 4;
  o.channels = 128;
  o.z_what_size = 32;
  o.glimpse_size = 32;
  o.bg_components = 3;
  o.z_bg_mask_size = 32;
  o.z_bg_comp_size = 16;
  o.bg_encoder_channels = 32;
  o.bg_lstm_hidden = 64;
  o.bg_decoder_channels = 16;
  o.bg_decoder_layers = 3;
  o.fg_sd = 0.15;
  o.bg_sd = 0.15;
  o.z_pres_prior = 0.1;
  o.z_pres_prior_end = 0.01;
  o.z_pres_prior_anneal_steps = 5000;
  o.z_pres_temperature = 2.5;
  o.z_pres_temperature_end = 0.5;
  o.temperature_anneal_steps = 20000;
  o.scale_prior_mean = -1.6;
  o.scale_prior_sd = 0.3;
  o.shift_prior_sd = 1.0;
  o.learning_rate = 1e-4;
  o.bg_learning_rate = 1e-3;
  o.clip_norm = 1.0;
  o.batch_size = 32;
  return o;
}

SpaceNetsImpl::SpaceNetsImpl(const SpaceOptions& o) {
  encoder = register_module("encoder", image_encoder(o.image_size, o.num_cells, o.channels));
  head = register_module("head", cell_head(o.channels, kHeadChannels));
  auto genc = image_encoder(o.glimpse_size, 1, 128);
  genc->push_back(nn::Flatten());
  genc->push_back(nn::Linear(128, 2 * int64_t{o.z_what_size}));
  glimpse_enc = register_module("glimpse_enc", genc);
  glimpse_dec = register_module("glimpse_dec", glimpse_decoder(o.z_what_size, o.glimpse_size, 2, "SPACE glimpse decoder"));
  bg = register_module("bg", ComponentMixture(background_sizes(o)));
}

Space::Space(SpaceOptions options) : options_(std::move(options)), nets_(nullptr) {
  const auto& o = options_;
  require(o.num_cells >= 1, fmt::format("num_cells is {}, but must be at least 1", o.num_cells));
  require(power_of_two(o.image_size, 8, 128) && o.image_size % o.num_cells == 0 &&
              power_of_two(o.image_size / o.num_cells, 2, 32),
          fmt::format("image_size is {}, but must be 8, 16, 32, 64 or 128 and num_cells ({}) times 2, 4, 8, 16 or 32",
                      o.image_size, o.num_cells));
  require(power_of_two(o.glimpse_size, 2, 32),
          fmt::format("glimpse_size is {}, but must be 2, 4, 8, 16 or 32", o.glimpse_size));
  require(o.bg_components >= 1, fmt::format("bg_components is {}, but must be at least 1", o.bg_components));
  for (const auto& [name, value] :
       {std::pair<const char*, int>{"channels", o.channels}, {"z_what_size", o.z_what_size},
        {"z_bg_mask_size", o.z_bg_mask_size}, {"z_bg_comp_size", o.z_bg_comp_size},
        {"bg_encoder_channels", o.bg_encoder_channels}, {"bg_lstm_hidden", o.bg_lstm_hidden},
        {"bg_decoder_channels", o.bg_decoder_channels}, {"batch_size", o.batch_size}})
    require(value >= 1, fmt::format("{} is {}, but must be at least 1", name, value));
  require(o.bg_decoder_layers >= 0, fmt::format("bg_decoder_layers is {}, but must be at least 0", o.bg_decoder_layers));
  require(o.fg_sd > 0, fmt::format("fg_sd is {}, but must be positive", o.fg_sd));
  require(o.bg_sd > 0, fmt::format("bg_sd is {}, but must be positive", o.bg_sd));
  require(o.z_pres_prior > 0 && o.z_pres_prior < 1,
          fmt::format("z_pres_prior is {}, but must be in (0, 1)", o.z_pres_prior));
  require(o.z_pres_prior_end > 0 && o.z_pres_prior_end < 1,
          fmt::format("z_pres_prior_end is {}, but must be in (0, 1)", o.z_pres_prior_end));
  require(o.z_pres_temperature > 0, fmt::format("z_pres_temperature is {}, but must be positive", o.z_pres_temperature));
  require(o.z_pres_temperature_end > 0,
          fmt::format("z_pres_temperature_end is {}, but must be positive", o.z_pres_temperature_end));
  require(o.scale_prior_sd > 0, fmt::format("scale_prior_sd is {}, but must be positive", o.scale_prior_sd));
  require(o.shift_prior_sd > 0, fmt::format("shift_prior_sd is {}, but must be positive", o.shift_prior_sd));
  require(o.learning_rate > 0, fmt::format("learning_rate is {}, but must be positive", o.learning_rate));
  require(o.bg_learning_rate > 0, fmt::format("bg_learning_rate is {}, but must be positive", o.bg_learning_rate));
  require(o.clip_norm >= 0, fmt::format("clip_norm is {}, but must be nonnegative", o.clip_norm));
  nets_ = SpaceNets(options_);
  set_step(0);
}

nlohmann::json Space::options() const { return options_to_json(options_); }

void Space::set_step(int64_t step) {
  const auto& o = options_;
  tau_ = linear_schedule(step, 0, o.temperature_anneal_steps, o.z_pres_temperature, o.z_pres_temperature_end);
  rho_ = linear_schedule(step, 0, o.z_pres_prior_anneal_steps, o.z_pres_prior, o.z_pres_prior_end);
}

namespace {
CellParams cell_params(SpaceNets& nets, const SpaceOptions& o, const torch::Tensor& x) {
  const int64_t b = x.size(0), n = int64_t{o.num_cells} * o.num_cells;
  auto out = nets->head->forward(nets->encoder->forward(x)).permute({0, 2, 3, 1}).reshape({b, n, kHeadChannels});
  CellParams p;
  // Bounded logits keep the relaxed draws inside (0, 1), as GNM's.
  p.pres_logits = 8.8 * torch::tanh(out.select(2, 0));
  auto offset = torch::tensor({o.scale_prior_mean, o.scale_prior_mean, 0.0, 0.0}, out.options());
  p.where_loc = out.narrow(2, 1, 4) + offset;
  p.where_scale = positive_scale(out.narrow(2, 5, 4));
  p.depth_loc = out.narrow(2, 9, 1);
  p.depth_scale = positive_scale(out.narrow(2, 10, 1));
  return p;
}
}  // namespace

std::pair<torch::Tensor, torch::Tensor> Space::what_params(const torch::Tensor& x, const torch::Tensor& z_where) {
  const int64_t b = x.size(0), n = z_where.size(1), h = options_.image_size, w = options_.z_what_size;
  auto images = x.unsqueeze(1).expand({b, n, 1, h, h}).reshape({b * n, 1, h, h});
  auto glimpses = runtime::stn_crop(images, where_to_runtime(z_where, options_.num_cells), options_.glimpse_size);
  auto raw = nets_->glimpse_enc->forward(glimpses).view({b, n, 2 * w});
  return {raw.narrow(2, 0, w), positive_scale(raw.narrow(2, w, w))};
}

Foreground Space::render_foreground(const SpaceLatents& z) {
  const int64_t b = z.z_what.size(0), n = z.z_what.size(1);
  auto patches = torch::sigmoid(nets_->glimpse_dec->forward(z.z_what.reshape({b * n, -1, 1, 1})));
  return composite_objects(patches, z.z_pres, z.z_where, z.z_depth, options_.num_cells, options_.image_size);
}

std::pair<torch::Tensor, d::MixtureSameFamily> Space::likelihood(const SpaceLatents& z, const MixtureDraw& bg) {
  auto fg = render_foreground(z);
  // Weights of the pixel's K + 1 components: alpha for the foreground, (1 - alpha) m_k for the background's.
  auto alpha = fg.alpha.clamp(1e-5, 1 - 1e-5);
  auto log_weights = torch::cat({torch::log(alpha), torch::log1p(-alpha) + bg.log_masks}, 1);
  auto means = torch::cat({fg.colour, bg.means}, 1);
  const int64_t k = bg.means.size(1);
  auto sd = torch::full({k + 1}, options_.bg_sd, means.options());
  sd[0] = options_.fg_sd;
  auto mean = fg.alpha * fg.colour + (1 - fg.alpha) * (bg.log_masks.exp() * bg.means).sum(1, true);
  return {mean, pixel_mixture(log_weights, means, sd)};
}

SpaceLatents Space::prior(int64_t n, const torch::TensorOptions& opts) {
  const auto& o = options_;
  const int64_t cells = int64_t{o.num_cells} * o.num_cells;
  SpaceLatents z;
  z.z_pres = ppl::sample("z_pres", d::RelaxedBernoulli(tau_, d::probs(torch::full({n, cells}, rho_, opts))).to_event(1));
  auto where_loc = torch::tensor({o.scale_prior_mean, o.scale_prior_mean, 0.0, 0.0}, opts).expand({n, cells, 4});
  auto where_sd = torch::tensor({o.scale_prior_sd, o.scale_prior_sd, o.shift_prior_sd, o.shift_prior_sd}, opts)
                      .expand({n, cells, 4});
  z.z_where = ppl::sample("z_where", d::Normal(where_loc, where_sd).to_event(2));
  z.z_depth = ppl::sample("z_depth", d::Normal(torch::zeros({n, cells, 1}, opts), 1.0).to_event(2));
  z.z_what = ppl::sample("z_what", d::Normal(torch::zeros({n, cells, int64_t{o.z_what_size}}, opts), 1.0).to_event(2));
  return z;
}

torch::Tensor Space::model(const torch::Tensor& x) {
  check::min_dim({"SPACE model"}, "x", x, 4);
  ppl::module("space", nets_);
  const int64_t n = x.size(0);
  auto data = ppl::plate("data", n);
  auto z = prior(n, x.options());
  auto bg = mixture_prior(nets_->bg, kBackground, n, x.options());
  auto [mean, lik] = likelihood(z, bg);
  ppl::observe("x", lik, x);
  return mean;
}

torch::Tensor Space::guide(const torch::Tensor& x) {
  check::min_dim({"SPACE guide"}, "x", x, 4);
  ppl::module("space", nets_);
  auto data = ppl::plate("data", x.size(0));
  auto p = cell_params(nets_, options_, x);
  auto z_pres = ppl::sample("z_pres", d::RelaxedBernoulli(tau_, d::logits(p.pres_logits)).to_event(1));
  auto z_where = ppl::sample("z_where", d::Normal(p.where_loc, p.where_scale).to_event(2));
  ppl::sample("z_depth", d::Normal(p.depth_loc, p.depth_scale).to_event(2));
  auto [what_loc, what_scale] = what_params(x, z_where);
  ppl::sample("z_what", d::Normal(what_loc, what_scale).to_event(2));
  mixture_posterior(nets_->bg, kBackground, x);
  return z_pres;
}

torch::Tensor Space::sample(int64_t n) {
  torch::NoGradGuard no_grad;
  auto opts = nets_->parameters().front().options();
  auto [z, bg] = handlers::block([&] {
    auto data = ppl::plate("data", n);
    auto latents = prior(n, opts);
    return std::make_pair(latents, mixture_prior(nets_->bg, kBackground, n, opts));
  })();
  z.z_pres = (z.z_pres > 0.5).to(z.z_pres.scalar_type());
  return likelihood(z, bg).first.clamp(0, 1);
}

InferredObjects Space::infer_objects(const torch::Tensor& x) {
  const auto& o = options_;
  if (x.dim() != 4 || x.size(1) != 1 || x.size(2) != o.image_size || x.size(3) != o.image_size)
    throw std::invalid_argument(fmt::format("SPACE: images are [{}], but must be [B, 1, {}, {}]",
                                            fmt::join(x.sizes(), ", "), o.image_size, o.image_size));
  torch::NoGradGuard no_grad;
  auto p = cell_params(nets_, options_, x);
  auto what = what_params(x, p.where_loc).first;
  return {structure_boxes(p.where_loc, torch::sigmoid(p.pres_logits), o.num_cells, o.image_size),
          what.detach().to(torch::kFloat32).cpu()};
}

nlohmann::json Space::evaluate(const torch::Tensor& x, const torch::Tensor& counts) {
  torch::NoGradGuard no_grad;
  auto inferred = (cell_params(nets_, options_, x).pres_logits > 0).sum(1).to(torch::kLong).cpu();
  nlohmann::json j;
  j["mean_inferred_count"] = inferred.to(torch::kDouble).mean().item<double>();
  if (counts.defined())
    j["count_accuracy"] = (inferred == counts.to(torch::kLong).cpu()).to(torch::kDouble).mean().item<double>();
  return j;
}

}  // namespace ppl::programs::space
