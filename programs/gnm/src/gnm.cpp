// Generative Neurosymbolic Machines: model, guide, rendering and schedules.
#include <ppl/programs/gnm/gnm.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include <ppl/core/reflect.hpp>
#include <ppl/programs/structure_map.hpp>

namespace ppl::programs::gnm {
namespace d = ppl::dist;
namespace nn = torch::nn;

namespace {
// Table 8 (background decoder, 1 x 1 to 128 x 128).
const std::vector<ConvRow> kBackgroundDecoder = {{1, 128, 4}, {1, 64, 2}, {1, 32, 4}, {1, 16, 2}, {1, 8, 2}, {3, 4, 1}};

/// Channels of the structure head per cell: pres logit, where loc and scale
/// (4 + 4), depth loc and scale (1 + 1), what loc and scale.
int64_t head_channels(const GnmOptions& o) { return 1 + 8 + 2 + 2 * int64_t{o.z_what_size}; }

/// fn() with its sites' log-densities weighted by `weight`, in model and
/// guide alike (for beta_g and the z_what warm-up); unwrapped at weight 1.
template <class F>
auto weighted(F fn, double weight) {
  if (weight == 1.0) return fn();
  return handlers::scale(fn, weight)();
}

int64_t global_size(const GnmOptions& o) {
  // StructDRAW: z_g = CAT[z_g/l]; the Gaussian ablation gets the same total size.
  if (o.global_prior == "gaussian" || o.mlp_interaction) return int64_t{o.draw_steps} * o.z_global_size;
  return int64_t{o.draw_steps} * o.z_global_size * o.num_cells * o.num_cells;
}

void require(bool ok, const std::string& message) {
  if (!ok) throw ArgumentError("GNM: " + message);
}

/// The mean and sd of the auxiliary prior N(mu_where, sd_where) of z_where.
std::pair<torch::Tensor, torch::Tensor> where_prior(const GnmOptions& o, const torch::TensorOptions& opts) {
  if (o.z_where_form == "scales")
    return {torch::tensor({o.scale_prior_mean, o.scale_prior_mean, 0.0, 0.0}, opts),
            torch::tensor({o.scale_prior_sd, o.scale_prior_sd, o.shift_prior_sd, o.shift_prior_sd}, opts)};
  return {torch::tensor({o.scale_prior_mean, 0.0, 0.0, 0.0}, opts),
          torch::tensor({o.scale_prior_sd, o.aspect_prior_sd, o.shift_prior_sd, o.shift_prior_sd}, opts)};
}
}  // namespace

GnmOptions GnmOptions::defaults() {
  GnmOptions o;
  o.image_size = 64;
  o.num_cells = 4;
  o.channels = 128;
  o.encoder_width = 64;
  o.global_prior = "structdraw";
  o.draw_steps = 4;
  o.draw_kernel = 3;
  o.z_global_size = 32;
  o.mlp_interaction = true;
  o.interaction_hidden = 512;
  o.z_decoder_hidden = 512;
  o.z_what_size = 20;
  o.z_bg_size = 10;
  o.glimpse_size = 16;
  o.composition = "additive";
  o.likelihood_sd = 0.1;
  o.z_pres_temperature = 1.0;
  o.z_pres_temperature_end = 0.5;
  o.temperature_anneal_begin = 1000;
  o.temperature_anneal_end = 20000;
  o.z_pres_prior = 0.1;
  o.z_pres_prior_end = 1e-3;
  o.z_pres_prior_anneal_steps = 4000;
  o.z_where_form = "scale_aspect";
  o.scale_prior_mean = -1.53;
  o.scale_prior_sd = 0.1;
  o.aspect_prior_sd = 0.3;
  o.shift_prior_sd = 1.0;
  o.presence_kl = "bernoulli";
  o.mask_curriculum_value = 0.9;
  o.mask_curriculum_steps = 1000;
  o.beta_b_start = 50.0;
  o.beta_b_end = 1.0;
  o.beta_b_anneal_steps = 50000;
  o.beta_g_start = 0.0;
  o.beta_g_end = 1.0;
  o.beta_g_warmup_begin = 0;
  o.beta_g_warmup_steps = 100000;
  o.z_what_kl_warmup_steps = 0;
  o.auxiliary_losses = true;
  o.analytic_kl = false;
  o.optimiser = "rmsprop";
  o.learning_rate = 1e-4;
  o.clip_norm = 1.0;
  o.clip_mean_loss = true;
  o.batch_size = 32;
  return o;
}

GnmOptions GnmOptions::legacy() {
  auto o = defaults();
  // Before the authors' sizes were the defaults: Table 6's 128-wide encoder,
  // Table 9's z_g decoder, Table 7's 32-pixel glimpse.
  o.encoder_width = 128;
  o.z_decoder_hidden = 1024;
  o.glimpse_size = 32;
  // Before the authors' objective: the 128-pixel likelihood at 64 pixels,
  // two free box scales at their MNIST-4 prior, the sampled z_pres term.
  o.likelihood_sd = 0.2;
  o.z_where_form = "scales";
  o.scale_prior_mean = -1.6;
  o.presence_kl = "relaxed";
  // Before the clip matched the authors': 1.0 on the gradient of the summed loss.
  o.clip_mean_loss = false;
  // Before RMSprop was offered.
  o.optimiser = "adam";
  return o;
}

GnmNetsImpl::GnmNetsImpl(const GnmOptions& o) {
  const int64_t c = o.channels, s = o.num_cells, flat = c * s * s;
  encoder = register_module("encoder", image_encoder(o.image_size, s, c, 1, o.encoder_width));
  if (o.global_prior == "structdraw") {
    draw = register_module("draw", DrawCore(c, s, o.z_global_size, o.mlp_interaction, o.interaction_hidden,
                                            o.draw_kernel, o.z_decoder_hidden));
  } else {
    const int64_t g = global_size(o);
    g_enc = register_module("g_enc", mlp(flat, {512, 512, 2 * g}));
    g_dec = register_module("g_dec", mlp(g, {512, int64_t{o.z_decoder_hidden}, flat}));
  }
  head = register_module("head", cell_head(c, head_channels(o)));
  // Two output channels (appearance, mask) for Algorithm 2; one for the sum.
  const int64_t patch_channels = o.composition == "overlap" ? 2 : 1;
  glimpse_dec = register_module("glimpse_dec",
                                glimpse_decoder(o.z_what_size, o.glimpse_size, patch_channels, "GNM glimpse decoder"));
  if (o.composition != "overlap") return;
  bg_enc = register_module("bg_enc", mlp(flat, {512, 256, 2 * int64_t{o.z_bg_size}}));
  bg_prior = register_module("bg_prior", mlp(global_size(o), {128, 64, 2 * int64_t{o.z_bg_size}}));
  bg_dec = register_module(
      "bg_dec",
      subpixel_stack(o.z_bg_size, fit_strides(kBackgroundDecoder, o.image_size, "GNM background decoder"), 1, "celu"));
}

Gnm::Gnm(GnmOptions options) : options_(std::move(options)), nets_(nullptr) {
  const auto& o = options_;
  require(o.global_prior == "structdraw" || o.global_prior == "gaussian",
          fmt::format("global_prior is \"{}\", but must be \"structdraw\" or \"gaussian\"", o.global_prior));
  require(o.draw_steps >= 1, fmt::format("draw_steps is {}, but must be at least 1", o.draw_steps));
  require(o.draw_kernel >= 1 && o.draw_kernel % 2 == 1,
          fmt::format("draw_kernel is {}, but must be odd and positive", o.draw_kernel));
  require(o.composition == "additive" || o.composition == "overlap",
          fmt::format("composition is \"{}\", but must be \"additive\" or \"overlap\"", o.composition));
  require(o.num_cells >= 1, fmt::format("num_cells is {}, but must be at least 1", o.num_cells));
  require(o.beta_g_warmup_begin >= 0 && o.beta_g_warmup_steps >= 0,
          fmt::format("beta_g_warmup_begin and beta_g_warmup_steps are {} and {}, but must not be negative",
                      o.beta_g_warmup_begin, o.beta_g_warmup_steps));
  require(o.encoder_width >= 1, fmt::format("encoder_width is {}, but must be at least 1", o.encoder_width));
  require(o.z_decoder_hidden >= 1, fmt::format("z_decoder_hidden is {}, but must be at least 1", o.z_decoder_hidden));
  require(o.likelihood_sd > 0, fmt::format("likelihood_sd is {}, but must be positive", o.likelihood_sd));
  require(o.z_where_form == "scale_aspect" || o.z_where_form == "scales",
          fmt::format("z_where_form is \"{}\", but must be \"scale_aspect\" or \"scales\"", o.z_where_form));
  require(o.optimiser == "rmsprop" || o.optimiser == "adam",
          fmt::format("optimiser is \"{}\", but must be \"rmsprop\" or \"adam\"", o.optimiser));
  require(o.presence_kl == "bernoulli" || o.presence_kl == "relaxed",
          fmt::format("presence_kl is \"{}\", but must be \"bernoulli\" or \"relaxed\"", o.presence_kl));
  for (auto [name, sd] : {std::pair{"scale_prior_sd", o.scale_prior_sd},
                          std::pair{"aspect_prior_sd", o.aspect_prior_sd},
                          std::pair{"shift_prior_sd", o.shift_prior_sd}})
    require(sd > 0, fmt::format("{} is {}, but must be positive", name, sd));
  require(o.z_pres_temperature > 0 && o.z_pres_temperature_end > 0, "z_pres temperatures must be positive");
  for (double rho : {o.z_pres_prior, o.z_pres_prior_end})
    require(rho > 0 && rho < 1, fmt::format("z_pres prior {} must be in (0, 1)", rho));
  require(o.mask_curriculum_value > 0 && o.mask_curriculum_value <= 1,
          fmt::format("mask_curriculum_value is {}, but must be in (0, 1]", o.mask_curriculum_value));
  nets_ = GnmNets(options_);
  set_step(0);
}

nlohmann::json Gnm::options() const { return options_to_json(options_); }

void Gnm::set_step(int64_t step) {
  const auto& o = options_;
  tau_ = linear_schedule(step, o.temperature_anneal_begin, o.temperature_anneal_end, o.z_pres_temperature,
                         o.z_pres_temperature_end);
  rho_ = linear_schedule(step, 0, o.z_pres_prior_anneal_steps, o.z_pres_prior, o.z_pres_prior_end);
  beta_b_ = linear_schedule(step, 0, o.beta_b_anneal_steps, o.beta_b_start, o.beta_b_end);
  beta_g_ = linear_schedule(step, o.beta_g_warmup_begin, int64_t{o.beta_g_warmup_begin} + o.beta_g_warmup_steps,
                            o.beta_g_start, o.beta_g_end);
  what_kl_ = o.z_what_kl_warmup_steps > 0 ? linear_schedule(step, 0, o.z_what_kl_warmup_steps, 0.0, 1.0) : 1.0;
  curriculum_ = step < o.mask_curriculum_steps;
}

StructureParams Gnm::structure_params(const torch::Tensor& f) {
  const int64_t b = f.size(0), n = int64_t{options_.num_cells} * options_.num_cells, w = options_.z_what_size;
  auto out = nets_->head->forward(f).permute({0, 2, 3, 1}).reshape({b, n, -1});
  StructureParams p;
  // Logits bounded as in the authors' code (8.8 tanh), keeping the relaxed draws away from 0 and 1.
  p.pres_logits = 8.8 * torch::tanh(out.select(2, 0));
  p.where_loc = out.narrow(2, 1, 4) + where_prior(options_, out.options()).first;
  p.where_scale = positive_scale(out.narrow(2, 5, 4));
  p.depth_loc = out.narrow(2, 9, 1);
  p.depth_scale = positive_scale(out.narrow(2, 10, 1));
  p.what_loc = out.narrow(2, 11, w);
  p.what_scale = positive_scale(out.narrow(2, 11 + w, w));
  return p;
}

std::pair<torch::Tensor, torch::Tensor> Gnm::global_prior(int64_t n, const torch::TensorOptions& opts) {
  auto draw = [&]() -> std::pair<torch::Tensor, torch::Tensor> {
    if (options_.global_prior == "structdraw") {
      auto r = run_draw(nets_->draw, "z_g", options_.draw_steps, n, opts, {});
      std::vector<torch::Tensor> flat;
      for (const auto& z : r.z) flat.push_back(z.flatten(1));
      return {r.f, torch::cat(flat, 1)};
    }
    auto z = ppl::sample("z_g", d::Normal(torch::zeros({n, global_size(options_)}, opts), 1.0).to_event(1));
    const int64_t s = options_.num_cells;
    return {nets_->g_dec->forward(z).view({n, options_.channels, s, s}), z};
  };
  return weighted(draw, global_kl_weight());
}

torch::Tensor Gnm::sample_what(const d::Normal& dist) {
  return weighted([&] { return ppl::sample("z_what", dist); }, z_what_kl_weight());
}

StructureLatents Gnm::mode_of(const torch::Tensor& f, const torch::Tensor& z_b) {
  auto p = structure_params(f);
  StructureLatents z;
  z.z_b = z_b;
  z.z_pres = (p.pres_logits > 0).to(p.pres_logits.scalar_type());
  z.z_where = p.where_loc;
  z.z_depth = p.depth_loc;
  z.z_what = p.what_loc;
  return z;
}

StructureLatents Gnm::prior(int64_t n, const torch::TensorOptions& opts, bool mode, const StructureParams* q) {
  ppl::module("gnm", nets_);
  auto data = ppl::plate("data", n);
  auto [f, z_g] = global_prior(n, opts);
  torch::Tensor bg_loc, bg_scale;
  if (has_background()) {
    auto bg = nets_->bg_prior->forward(z_g);
    const int64_t zb = options_.z_bg_size;
    bg_loc = bg.narrow(1, 0, zb);
    bg_scale = positive_scale(bg.narrow(1, zb, zb));
  }
  // D.1: generations take the mode of z_s given z_g.
  if (mode) return mode_of(f, bg_loc);
  auto p = structure_params(f);
  StructureLatents z;
  if (has_background()) z.z_b = ppl::sample("z_b", d::Normal(bg_loc, bg_scale).to_event(1));
  const d::RelaxedBernoulli pres(tau_, d::logits(p.pres_logits));
  z.z_pres = weighted([&] { return ppl::sample("z_pres", pres.to_event(1)); }, q ? 0.0 : 1.0);
  if (q) {
    // The authors' z_pres term: KL(Ber(q) || Ber(p)) per cell, in closed form.
    auto kl = d::kl(d::Bernoulli(d::logits(q->pres_logits)), d::Bernoulli(d::logits(p.pres_logits))).sum(-1);
    auto zero = torch::zeros_like(kl);
    ppl::observe("kl_pres", d::Delta(zero, -kl), zero);
  }
  z.z_where = ppl::sample("z_where", d::Normal(p.where_loc, p.where_scale).to_event(2));
  z.z_depth = ppl::sample("z_depth", d::Normal(p.depth_loc, p.depth_scale).to_event(2));
  z.z_what = sample_what(d::Normal(p.what_loc, p.what_scale).to_event(2));
  return z;
}

torch::Tensor Gnm::render(const StructureLatents& z) {
  const int64_t b = z.z_what.size(0), n = z.z_what.size(1), h = options_.image_size, s = options_.num_cells;
  auto patch = torch::sigmoid(nets_->glimpse_dec->forward(z.z_what.reshape({b * n, -1, 1, 1})));
  // The authors' MNIST renderer: present objects summed on a black canvas.
  if (!has_background()) return sum_objects(patch, z.z_pres, z.z_where, s, h, box_form());
  auto appearance = patch.narrow(1, 0, 1);
  // Curriculum (Appendix C): the mask fills the box at a fixed value.
  auto mask = curriculum_ ? torch::full_like(appearance, options_.mask_curriculum_value) : patch.narrow(1, 1, 1);
  auto fg = composite_objects(torch::cat({appearance, mask}, 1), z.z_pres, z.z_where, z.z_depth, s, h, box_form());
  auto background = torch::sigmoid(nets_->bg_dec->forward(z.z_b.view({b, -1, 1, 1})));
  return fg.alpha * fg.colour + (1 - fg.alpha) * background;
}

bool Gnm::adds_auxiliary() const {
  return options_.auxiliary_losses && training_ && torch::GradMode::is_enabled();
}

bool Gnm::closed_form_presence() const {
  return options_.presence_kl == "bernoulli" && training_ && torch::GradMode::is_enabled();
}

Gnm::GuidePass Gnm::guide_pass(const torch::Tensor& x) {
  GuidePass pass;
  if (guide_pass_ && guide_pass_->x.is_same(x)) {
    pass = std::move(*guide_pass_);
  } else {
    auto fx = nets_->encoder->forward(x);
    pass = {x, structure_params(fx), has_background() ? nets_->bg_enc->forward(fx.flatten(1)) : torch::Tensor()};
  }
  guide_pass_.reset();
  return pass;
}

torch::Tensor Gnm::auxiliary_kl(const GuidePass& pass) {
  const auto& q = pass.q;
  const auto& bg = pass.bg;
  const int64_t b = q.pres_logits.size(0);
  const auto opts = q.pres_logits.options();
  // KL(Ber(q) || Ber(rho)) per cell.
  const auto& l = q.pres_logits;
  auto p = torch::sigmoid(l);
  auto kl_pres = (p * (torch::log_sigmoid(l) - std::log(rho_)) +
                  (1 - p) * (torch::log_sigmoid(-l) - std::log1p(-rho_)))
                     .sum(1);
  auto [where_loc, where_sd] = where_prior(options_, opts);
  // KL(q || N(loc, sd)) per cell, weighted by the cell's presence probability.
  auto per_cell_kl = [&](const torch::Tensor& q_loc, const torch::Tensor& q_scale, const torch::Tensor& loc,
                         const torch::Tensor& sd) {
    auto kl = d::kl(d::Normal(q_loc, q_scale).to_event(1),
                    d::Normal(loc.expand_as(q_loc), sd.expand_as(q_loc)).to_event(1));
    return (kl * p).sum(1);
  };
  auto kl_where = per_cell_kl(q.where_loc, q.where_scale, where_loc, where_sd);
  auto kl_what = z_what_kl_weight() * per_cell_kl(q.what_loc, q.what_scale, torch::zeros({1}, opts),
                                                 torch::ones({1}, opts));
  if (!has_background()) return (kl_pres + kl_where + kl_what).view({b});
  const int64_t zb = options_.z_bg_size;
  auto bg_loc = bg.narrow(1, 0, zb);
  auto kl_b = d::kl(d::Normal(bg_loc, positive_scale(bg.narrow(1, zb, zb))).to_event(1),
                    d::Normal(torch::zeros_like(bg_loc), torch::ones_like(bg_loc)).to_event(1));
  return (kl_pres + kl_where + kl_what + beta_b_ * kl_b).view({b});
}

torch::Tensor Gnm::model(const torch::Tensor& x) {
  check::min_dim({"GNM model"}, "x", x, 4);
  const int64_t n = x.size(0);
  std::optional<GuidePass> pass;
  if (adds_auxiliary() || closed_form_presence()) pass = guide_pass(x);
  auto mean = render(prior(n, x.options(), false, closed_form_presence() ? &pass->q : nullptr));
  auto data = ppl::plate("data", n);
  ppl::observe("x", d::Normal(mean, options_.likelihood_sd).to_event(3), x);
  if (adds_auxiliary()) {
    auto zero = torch::zeros({n}, x.options());
    ppl::observe("aux", d::Delta(zero, -auxiliary_kl(*pass)), zero);
  }
  return mean;
}

torch::Tensor Gnm::guide(const torch::Tensor& x) {
  check::min_dim({"GNM guide"}, "x", x, 4);
  ppl::module("gnm", nets_);
  const int64_t n = x.size(0);
  auto data = ppl::plate("data", n);
  auto fx = nets_->encoder->forward(x);
  auto global = [&] {
    if (options_.global_prior == "structdraw") {
      run_draw(nets_->draw, "z_g", options_.draw_steps, n, x.options(), fx);
      return;
    }
    auto out = nets_->g_enc->forward(fx.flatten(1));
    const int64_t g = global_size(options_);
    ppl::sample("z_g", d::Normal(out.narrow(1, 0, g), positive_scale(out.narrow(1, g, g))).to_event(1));
  };
  weighted(global, global_kl_weight());
  torch::Tensor bg;
  if (has_background()) {
    bg = nets_->bg_enc->forward(fx.flatten(1));
    const int64_t zb = options_.z_bg_size;
    ppl::sample("z_b", d::Normal(bg.narrow(1, 0, zb), positive_scale(bg.narrow(1, zb, zb))).to_event(1));
  }
  auto q = structure_params(fx);
  guide_pass_.reset();
  if (adds_auxiliary() || closed_form_presence()) guide_pass_ = GuidePass{x, q, bg};
  // With the closed-form presence KL, the model's kl_pres site carries z_pres's term.
  const d::RelaxedBernoulli pres(tau_, d::logits(q.pres_logits));
  auto z_pres = weighted([&] { return ppl::sample("z_pres", pres.to_event(1)); }, closed_form_presence() ? 0.0 : 1.0);
  ppl::sample("z_where", d::Normal(q.where_loc, q.where_scale).to_event(2));
  ppl::sample("z_depth", d::Normal(q.depth_loc, q.depth_scale).to_event(2));
  sample_what(d::Normal(q.what_loc, q.what_scale).to_event(2));
  return z_pres;
}

torch::Tensor Gnm::sample(int64_t n) { return sample_structured(n).first; }

std::pair<torch::Tensor, StructureLatents> Gnm::sample_structured(int64_t n) {
  torch::NoGradGuard no_grad;
  auto opts = nets_->parameters().front().options();
  auto z = handlers::block([&] { return prior(n, opts, true); })();
  return {render(z).clamp(0, 1), z};
}

torch::Tensor Gnm::sample_given(const std::map<std::string, torch::Tensor>& z_g) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> names;
  if (options_.global_prior == "structdraw")
    for (int l = 0; l < options_.draw_steps; ++l) names.push_back(addr("z_g", l));
  else
    names.push_back("z_g");
  for (const auto& name : names)
    if (!z_g.count(name))
      throw ArgumentError(fmt::format("GNM sample_given: no value for the global site \"{}\"", name));
  const auto& first = z_g.at(names.front());
  auto z = handlers::block(handlers::condition([&] { return prior(first.size(0), first.options(), true); }, z_g))();
  return render(z).clamp(0, 1);
}

torch::Tensor Gnm::step_canvases(const Trace& model_trace) {
  if (options_.global_prior != "structdraw") return {};
  torch::NoGradGuard no_grad;
  const auto z_b = has_background() ? model_trace.site("z_b").value : torch::Tensor();
  const auto& first = model_trace.site(addr("z_g", 0)).value;
  const int64_t n = first.size(0);
  auto draw = handlers::block(handlers::replay(
      [&] {
        auto data = ppl::plate("data", n);
        return run_draw(nets_->draw, "z_g", options_.draw_steps, n, first.options(), {});
      },
      model_trace))();
  std::vector<torch::Tensor> out;
  for (const auto& f : draw.f_steps) out.push_back(render(mode_of(f, z_b)).clamp(0, 1));
  return torch::stack(out);
}

torch::Tensor Gnm::infer_counts(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return (structure_params(nets_->encoder->forward(x)).pres_logits > 0).sum(1);
}

InferredObjects Gnm::infer_objects(const torch::Tensor& x) {
  const auto& o = options_;
  if (x.dim() != 4 || x.size(1) != 1 || x.size(2) != o.image_size || x.size(3) != o.image_size)
    throw std::invalid_argument(fmt::format("gnm_boxes: images are [{}], but must be [B, 1, {}, {}]",
                                            fmt::join(x.sizes(), ", "), o.image_size, o.image_size));
  torch::NoGradGuard no_grad;
  const auto p = structure_params(nets_->encoder->forward(x));
  return {structure_boxes(p.where_loc, torch::sigmoid(p.pres_logits), o.num_cells, o.image_size, box_form()),
          p.what_loc.detach().to(torch::kFloat32).cpu()};
}

nlohmann::json Gnm::evaluate(const torch::Tensor& x, const torch::Tensor& counts) {
  auto inferred = infer_counts(x).to(torch::kLong).cpu();
  nlohmann::json j;
  j["mean_inferred_count"] = inferred.to(torch::kDouble).mean().item<double>();
  if (counts.defined())
    j["count_accuracy"] = (inferred == counts.to(torch::kLong).cpu()).to(torch::kDouble).mean().item<double>();
  return j;
}

}  // namespace ppl::programs::gnm
