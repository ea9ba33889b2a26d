// One-shot classification with DooD: Eq. 18-21 of seed 000 (Appendix D.2.3).
#include <ppl/programs/dood/one_shot.hpp>

#include <array>
#include <cmath>
#include <numbers>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ppl/core/reflect.hpp>
#include <ppl/runtime/composite.hpp>

namespace ppl::programs::dood {
namespace d = ppl::dist;

namespace {
constexpr std::array<std::pair<OneShotProtocol, const char*>, 3> kProtocols = {
    {{OneShotProtocol::authors, "authors"}, {OneShotProtocol::supplement, "supplement"}, {OneShotProtocol::quick, "quick"}}};
constexpr std::array<std::pair<MotorNoise, const char*>, 2> kMotorNoise = {
    {{MotorNoise::average, "average"}, {MotorNoise::sum, "sum"}}};
constexpr std::array<std::pair<TokenRenderer, const char*>, 2> kRenderers = {
    {{TokenRenderer::fixed, "fixed"}, {TokenRenderer::recomputed, "recomputed"}}};

template <class E, std::size_t N>
std::string name_of(const std::array<std::pair<E, const char*>, N>& table, E value) {
  for (const auto& [v, text] : table)
    if (v == value) return text;
  return "?";
}

template <class E, std::size_t N>
E parse(const std::array<std::pair<E, const char*>, N>& table, const nlohmann::json& j, const char* option) {
  if (j.is_string())
    for (const auto& [v, text] : table)
      if (j.get<std::string>() == text) return v;
  std::vector<std::string> choices;
  for (const auto& [v, text] : table) choices.push_back(fmt::format("\"{}\"", text));
  throw ArgumentError(
      fmt::format("DooD one-shot: {} is {}, but must be one of {}", option, j.dump(), fmt::join(choices, ", ")));
}
}  // namespace

std::string to_string(OneShotProtocol p) { return name_of(kProtocols, p); }
std::string to_string(MotorNoise m) { return name_of(kMotorNoise, m); }
std::string to_string(TokenRenderer r) { return name_of(kRenderers, r); }
void to_json(nlohmann::json& j, OneShotProtocol p) { j = to_string(p); }
void from_json(const nlohmann::json& j, OneShotProtocol& p) { p = parse(kProtocols, j, "protocol"); }
void to_json(nlohmann::json& j, MotorNoise m) { j = to_string(m); }
void from_json(const nlohmann::json& j, MotorNoise& m) { m = parse(kMotorNoise, j, "motor_noise"); }
void to_json(nlohmann::json& j, TokenRenderer r) { j = to_string(r); }
void from_json(const nlohmann::json& j, TokenRenderer& r) { r = parse(kRenderers, j, "renderer"); }

OneShotOptions OneShotOptions::defaults() { return preset(OneShotProtocol::authors); }

OneShotOptions OneShotOptions::preset(OneShotProtocol protocol) {
  OneShotOptions o;
  o.motor_sd = 1e-3;
  o.batch = 200;
  if (protocol == OneShotProtocol::supplement) {
    // The supplement alone: K raw guide draws, B.4's ranges.
    o.particles = 5;
    o.draws = 1;
    o.steps = 30;
    o.learning_rate = 0.05;
    o.motor_noise = MotorNoise::sum;
    o.renderer = TokenRenderer::recomputed;
    o.shift = TokenAffine::kShift;
    o.scale_low = TokenAffine::kScaleLow;
    o.scale_high = TokenAffine::kScaleHigh;
    o.rotation = o.shear = TokenAffine::kAngle;
    return o;
  }
  // The authors' classify.py and evaluate.py: 3 parses in each of 4 runs,
  // each parse the best of 20 guide draws by the joint; Adam at 1e-2 for
  // 100 steps; ClassifyModel.get_affines's ranges in this code's frame.
  o.particles = 12;
  o.draws = 20;
  o.steps = 100;
  o.learning_rate = 1e-2;
  o.motor_noise = MotorNoise::average;
  o.renderer = TokenRenderer::fixed;
  o.shift = 0.1;
  o.scale_low = 0.6;
  o.scale_high = 1.4;
  o.rotation = 0.25 * std::numbers::pi * std::numbers::pi / 180;
  o.shear = std::atan(0.3 * std::numbers::pi);
  if (protocol == OneShotProtocol::quick) {
    o.particles = 2;
    o.draws = 5;
    o.steps = 10;
    o.learning_rate = 0.05;
  }
  return o;
}

void OneShotOptions::check() const {
  auto fail = [](const char* field, auto value, const char* requirement) {
    throw ArgumentError(fmt::format("DooD one-shot: {} is {}, but must be {}", field, value, requirement));
  };
  if (particles < 1) fail("particles", particles, "at least 1");
  if (draws < 1) fail("draws", draws, "at least 1");
  if (steps < 0) fail("steps", steps, "at least 0");
  if (!(learning_rate > 0)) fail("learning_rate", learning_rate, "positive");
  if (!(motor_sd > 0)) fail("motor_sd", motor_sd, "positive");
  if (!(shift > 0)) fail("shift", shift, "positive");
  if (!(scale_low > 0 && scale_low < 1)) fail("scale_low", scale_low, "in (0, 1)");
  if (!(scale_high > 1)) fail("scale_high", scale_high, "above 1");
  if (!(rotation > 0)) fail("rotation", rotation, "positive");
  if (!(shear > 0 && shear < std::numbers::pi / 2)) fail("shear", shear, "in (0, pi/2)");
  if (batch < 1) fail("batch", batch, "at least 1");
}

double OneShotOptions::affine_log_density() const {
  // Seven independent uniforms: 2 shifts, 2 scales, 1 rotation, 2 shears.
  return -2 * std::log(2 * shift) - 2 * std::log(scale_high - scale_low) - std::log(2 * rotation) -
         2 * std::log(2 * shear);
}

namespace {
torch::Tensor in_range(const torch::Tensor& raw, double lo, double hi) { return lo + (hi - lo) * torch::sigmoid(raw); }

// Images [N, H, W] or [N, 1, H, W] of the program's size as [N, 1, H, W] on its device.
torch::Tensor as_images(Dood& program, const torch::Tensor& images, const char* name) {
  const int64_t size = program.image_size();
  const bool ok = images.defined() && (images.dim() == 3 || (images.dim() == 4 && images.size(1) == 1)) &&
                  images.size(0) >= 1 && images.size(-1) == size && images.size(-2) == size;
  if (!ok)
    throw ArgumentError(fmt::format("DooD one-shot: {} has shape {}, but must be [N, {}, {}] or [N, 1, {}, {}] with N >= 1 "
                                    "(the program's image_size)",
                                    name, images.defined() ? shape_string(images.sizes()) : std::string("undefined"),
                                    size, size, size, size));
  auto x = images.dim() == 3 ? images.unsqueeze(1) : images;
  return x.to(program.nets()->obs_scale.options());
}
}  // namespace

CharacterTypes CharacterTypes::select(const torch::Tensor& index) const {
  return {on.index_select(0, index),     layout.index_select(0, index), strokes.index_select(0, index),
          sigma.index_select(0, index),  omega0.index_select(0, index), omega1.index_select(0, index),
          log_joint.index_select(0, index), obs_scale};
}

CharacterTypes best_of(const CharacterTypes& types, int64_t draws) {
  if (draws < 1 || types.size() % draws != 0)
    throw ArgumentError(
        fmt::format("DooD one-shot: draws is {}, but must be at least 1 and divide the {} types", draws, types.size()));
  if (draws == 1) return types;
  const int64_t m = types.size() / draws;
  auto best = types.log_joint.view({m, draws}).argmax(1);
  return types.select(torch::arange(m, best.options()) * draws + best);
}

namespace {
// One guide draw per row of x [N, 1, H, W] and the model replayed there: the
// types with log p(psi, x) of the unweighted model.
CharacterTypes guide_types(Dood& program, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  // Eq. 21's p(psi, x_c) is the model's joint, not its beta-weighted training objective.
  const bool training = program.training();
  program.set_training(false);
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto guide_trace = ppl::trace(guide, x);
  auto model_trace = ppl::trace(handlers::replay(model, guide_trace), x);
  program.set_training(training);

  std::vector<torch::Tensor> os, ls, ss;
  for (int t = 0; t < program.dood_options().steps; ++t) {
    os.push_back(guide_trace.site(addr("o", t)).value);
    ls.push_back(guide_trace.site(addr("l", t)).value);
    ss.push_back(guide_trace.site(addr("s", t)).value);
  }
  CharacterTypes types;
  types.on = torch::stack(os, 1);
  types.layout = torch::stack(ls, 1);
  types.strokes = torch::stack(ss, 1);
  const int64_t n = types.size(), t = types.on.size(1);
  auto rp = program.render_params(types.layout.flatten(0, 1), types.strokes.flatten(0, 1));
  types.sigma = rp.sigma.view({n, t});
  types.omega0 = rp.omega0.view({n, t});
  types.omega1 = rp.omega1.view({n, t}).select(1, 0).contiguous();
  types.log_joint = torch::zeros({n}, x.options());
  for (const auto& site : model_trace)
    if (site.is_random()) types.log_joint = types.log_joint + site.log_prob();
  for (const auto& [name, value] : model_trace.site("x").dist->named_params())
    if (name == "scale") types.obs_scale = value.expand_as(x)[0].contiguous();
  PPL_ASSERT(types.obs_scale.defined());
  return types;
}

CharacterTypes concat(const std::vector<CharacterTypes>& parts) {
  auto cat = [&](auto member) {
    std::vector<torch::Tensor> v;
    for (const auto& p : parts) v.push_back(p.*member);
    return torch::cat(v, 0);
  };
  return {cat(&CharacterTypes::on),     cat(&CharacterTypes::layout), cat(&CharacterTypes::strokes),
          cat(&CharacterTypes::sigma),  cat(&CharacterTypes::omega0), cat(&CharacterTypes::omega1),
          cat(&CharacterTypes::log_joint), parts.front().obs_scale};
}
}  // namespace

CharacterTypes sample_types(Dood& program, const torch::Tensor& supports, int particles, int draws) {
  if (particles < 1)
    throw ArgumentError(fmt::format("DooD one-shot: particles is {}, but must be at least 1", particles));
  if (draws < 1) throw ArgumentError(fmt::format("DooD one-shot: draws is {}, but must be at least 1", draws));
  auto x = as_images(program, supports, "supports");
  // Row c * K D + k D + d: draw d of particle k of support c.
  std::vector<CharacterTypes> per_support;
  for (int64_t c = 0; c < x.size(0); ++c)
    per_support.push_back(best_of(guide_types(program, x.narrow(0, c, 1).repeat_interleave(particles * draws, 0)), draws));
  return concat(per_support);
}

TokenVariables TokenVariables::identity(const CharacterTypes& types, const OneShotOptions& options) {
  const auto opts = types.strokes.options();
  auto raw = torch::zeros({types.size(), 7}, opts);
  // The scale's sigmoid at 1 (0 where its range is symmetric about 1).
  const double at_one = (1 - options.scale_low) / (options.scale_high - options.scale_low);
  raw.narrow(1, 2, 2).fill_(std::log(at_one / (1 - at_one)));
  return {raw, torch::zeros_like(types.strokes)};
}

TokenAffine TokenVariables::affine(const OneShotOptions& o) const {
  return {in_range(raw.narrow(1, 0, 2), -o.shift, o.shift), in_range(raw.narrow(1, 2, 2), o.scale_low, o.scale_high),
          in_range(raw.select(1, 4), -o.rotation, o.rotation), in_range(raw.narrow(1, 5, 2), -o.shear, o.shear)};
}

torch::Tensor image_to_glimpse(const torch::Tensor& points, const torch::Tensor& l, int64_t image_size) {
  // glimpse_to_image is affine in the points: read it off at (0, 0), (1, 0), (0, 1) and invert it.
  const int64_t n = points.size(0);
  auto basis = torch::tensor({0.0, 0.0, 1.0, 0.0, 0.0, 1.0}, points.options()).view({1, 3, 2}).expand({n, 3, 2});
  auto g = glimpse_to_image(basis, l, image_size);
  auto origin = g.select(1, 0);
  auto m = torch::stack({g.select(1, 1) - origin, g.select(1, 2) - origin}, 2);  // columns: images of the axes
  return torch::matmul(points - origin.unsqueeze(1), torch::inverse(m).transpose(1, 2));
}

torch::Tensor token_points(const CharacterTypes& types, const TokenVariables& token, int64_t image_size,
                           const OneShotOptions& options) {
  const int64_t n = types.size(), t = types.strokes.size(1), p = types.strokes.size(2);
  auto type_points = glimpse_to_image(types.strokes.flatten(0, 1), types.layout.flatten(0, 1), image_size);
  return apply_token_affine(type_points.view({n, t, p, 2}), token.affine(options)) + options.motor_sd * token.noise;
}

torch::Tensor motor_log_density(const torch::Tensor& per_stroke, const torch::Tensor& on, MotorNoise how) {
  auto drawn = per_stroke * on;
  if (how == MotorNoise::sum) return drawn.sum(1);
  // The authors' token score: the strokes' mean, so that a type parsed into
  // more strokes gains nothing from the density's peak.
  return drawn.sum(1) / on.sum(1).clamp_min(1);
}

namespace {
// The model's canvas at the tokens whose control points (image coordinates)
// are `points` [N, T, P, 2]: token_canvas once the points are known.
torch::Tensor canvas_at_points(Dood& program, const CharacterTypes& types, const torch::Tensor& points,
                               const OneShotOptions& options) {
  const int64_t n = types.size(), t = types.strokes.size(1), p = types.strokes.size(2);
  auto l = types.layout.flatten(0, 1);  // [N T, 4]
  // s' taken back to the glimpse frame of the type's layout.
  auto s_token = image_to_glimpse(points.flatten(0, 1), l, program.image_size()).view({n, t, p, 2});
  torch::Tensor sigma = types.sigma, omega0 = types.omega0, omega1 = types.omega1;
  if (options.renderer == TokenRenderer::recomputed) {
    auto rp = program.render_params(l, s_token.flatten(0, 1));
    sigma = rp.sigma.view({n, t});
    omega0 = rp.omega0.view({n, t});
    omega1 = rp.omega1.view({n, t}).select(1, 0);
  }
  auto strokes = program.render(types.layout, s_token, sigma, omega0) * types.on.view({n, t, 1, 1});
  return ppl::runtime::composite(strokes, omega1).narrow(1, t - 1, 1);
}
}  // namespace

torch::Tensor token_canvas(Dood& program, const CharacterTypes& types, const TokenVariables& token,
                           const OneShotOptions& options) {
  return canvas_at_points(program, types, token_points(types, token, program.image_size(), options), options);
}

TokenVariables sample_token_variables(const CharacterTypes& types, const OneShotOptions& options) {
  options.check();
  const auto opts = types.strokes.options();
  // in_range(logit(u)) = lo + (hi - lo) u: uniform in every range.
  auto u = torch::rand({types.size(), 7}, opts).clamp(1e-6, 1 - 1e-6);
  return {torch::log(u) - torch::log1p(-u), torch::randn_like(types.strokes)};
}

torch::Tensor generate_tokens(Dood& program, const torch::Tensor& supports, int tokens,
                              const OneShotOptions& options) {
  options.check();
  if (tokens < 1) throw ArgumentError(fmt::format("DooD tokens: tokens is {}, but must be at least 1", tokens));
  torch::NoGradGuard no_grad;
  auto types = sample_types(program, supports, 1, options.draws);
  auto each = types.select(torch::arange(types.size(), torch::kLong).repeat_interleave(tokens).to(types.on.device()));
  auto canvas = token_canvas(program, each, sample_token_variables(each, options), options);
  return canvas.view({types.size(), tokens, 1, canvas.size(-2), canvas.size(-1)});
}

torch::Tensor token_objective(Dood& program, const torch::Tensor& queries, const CharacterTypes& types,
                              const TokenVariables& token, const OneShotOptions& options) {
  const int64_t n = types.size(), t = types.strokes.size(1);
  const int64_t size = program.image_size();
  auto l = types.layout.flatten(0, 1);  // [N T, 4]
  // log p(x | z): the model's canvas at z = (o, l, s').
  auto points = token_points(types, token, size, options);
  auto canvas = canvas_at_points(program, types, points, options);
  auto log_lik = d::Laplace(canvas, types.obs_scale.expand_as(canvas)).to_event(3).log_prob(queries);
  // log p(z | psi): the uniform affine (inside its ranges by construction),
  // and the motor noise of the strokes drawn (B.4). o and l are the type's
  // own (a point mass), so they add nothing.
  auto a = token.affine(options);
  auto per_stroke = [t](const torch::Tensor& v) { return v.repeat_interleave(t, 0); };
  TokenAffine stroke_affine{per_stroke(a.shift), per_stroke(a.scale), per_stroke(a.rotation), per_stroke(a.shear)};
  auto type_points = glimpse_to_image(types.strokes.flatten(0, 1), l, size);
  auto motor = token_log_prob(points.flatten(0, 1), type_points, stroke_affine, options.motor_sd).view({n, t});
  return log_lik + options.affine_log_density() + motor_log_density(motor, types.on, options.motor_noise);
}

TokenFit fit_tokens(Dood& program, const torch::Tensor& queries, const CharacterTypes& types,
                    const OneShotOptions& options) {
  options.check();
  auto x = as_images(program, queries, "queries");
  if (x.size(0) != types.size())
    throw ArgumentError(fmt::format("DooD one-shot: queries has {} images, but types has {}", x.size(0), types.size()));
  torch::AutoGradMode grad_on(true);
  auto token = TokenVariables::identity(types, options);
  token.raw.requires_grad_(true);
  token.noise.requires_grad_(true);
  torch::optim::Adam adam({token.raw, token.noise}, torch::optim::AdamOptions(options.learning_rate));
  TokenFit fit;
  for (int step = 0; step <= options.steps; ++step) {
    auto objective = token_objective(program, x, types, token, options);
    {
      torch::NoGradGuard no_grad;
      auto value = objective.detach();
      if (step == 0) {
        fit.initial = value.clone();
        fit.best = value.clone();
        fit.token = {token.raw.detach().clone(), token.noise.detach().clone()};
      } else {
        auto better = value > fit.best;  // NaN never replaces the best
        fit.best = torch::where(better, value, fit.best);
        fit.token.raw = torch::where(better.view({-1, 1}), token.raw.detach(), fit.token.raw);
        fit.token.noise = torch::where(better.view({-1, 1, 1, 1}), token.noise.detach(), fit.token.noise);
      }
    }
    if (step == options.steps) break;
    // Gradients of the token variables only: the program's parameters keep theirs.
    auto grads = torch::autograd::grad({-objective.sum()}, {token.raw, token.noise});
    token.raw.mutable_grad() = grads[0];
    token.noise.mutable_grad() = grads[1];
    adam.step();
  }
  return fit;
}

torch::Tensor score_types(Dood& program, const torch::Tensor& queries, const CharacterTypes& types,
                          const OneShotOptions& options, const std::function<void(int64_t, int64_t)>& progress) {
  options.check();
  auto x = as_images(program, queries, "queries");
  const int64_t k = options.particles, n = types.size(), q = x.size(0);
  if (n % k != 0)
    throw ArgumentError(fmt::format("DooD one-shot: types has {} rows, but must hold particles = {} per class", n, k));
  const int64_t c = n / k, pairs = q * n;
  auto best = torch::empty({pairs}, x.options());
  for (int64_t start = 0; start < pairs; start += options.batch) {
    auto index = torch::arange(start, std::min(pairs, start + options.batch), torch::kLong);
    auto fit = fit_tokens(program, x.index_select(0, index.div(n, "floor").to(x.device())),
                          types.select(index.remainder(n).to(x.device())), options);
    best.narrow(0, start, index.size(0)).copy_(fit.best);
    if (progress) progress(start + index.size(0), pairs);
  }
  // Eq. 20 with Eq. 21's weights: log sum_k pi_k exp(max_z ...), pi_k = softmax_k log p(psi_k, x_c).
  auto log_pi = torch::log_softmax(types.log_joint.view({c, k}), 1);
  return torch::logsumexp(best.view({q, c, k}) + log_pi.unsqueeze(0), 2);
}

torch::Tensor one_shot_scores(Dood& program, const torch::Tensor& supports, const torch::Tensor& queries,
                              const OneShotOptions& options, const std::function<void(int64_t, int64_t)>& progress) {
  options.check();
  as_images(program, queries, "queries");
  auto types = sample_types(program, supports, options.particles, options.draws);
  return score_types(program, queries, types, options, progress);
}

torch::Tensor classify(const torch::Tensor& scores) {
  if (!scores.defined() || scores.dim() != 2 || scores.size(1) < 1)
    throw ArgumentError(fmt::format("DooD one-shot: scores has shape {}, but must be [Q, C] with C >= 1",
                                    scores.defined() ? shape_string(scores.sizes()) : std::string("undefined")));
  return scores.argmax(1);
}

double Accuracy::value() const { return queries > 0 ? static_cast<double>(correct) / queries : 0.0; }

double Accuracy::standard_error() const {
  const double a = value();
  return queries > 0 ? std::sqrt(a * (1 - a) / queries) : 0.0;
}

}  // namespace ppl::programs::dood
