// One-shot classification with DooD: Eq. 18-21 of seed 000 (Appendix D.2.3).
#include <ppl/programs/dood/one_shot.hpp>

#include <cmath>

#include <fmt/format.h>

#include <ppl/core/reflect.hpp>
#include <ppl/runtime/composite.hpp>

namespace ppl::programs::dood {
namespace d = ppl::dist;

OneShotOptions OneShotOptions::defaults() {
  OneShotOptions o;
  o.particles = 5;
  o.steps = 30;
  o.learning_rate = 0.05;
  o.motor_sd = 1e-3;
  o.batch = 200;
  return o;
}

void OneShotOptions::check() const {
  auto fail = [](const char* field, auto value, const char* requirement) {
    throw ArgumentError(fmt::format("DooD one-shot: {} is {}, but must be {}", field, value, requirement));
  };
  if (particles < 1) fail("particles", particles, "at least 1");
  if (steps < 0) fail("steps", steps, "at least 0");
  if (!(learning_rate > 0)) fail("learning_rate", learning_rate, "positive");
  if (!(motor_sd > 0)) fail("motor_sd", motor_sd, "positive");
  if (batch < 1) fail("batch", batch, "at least 1");
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
  return {on.index_select(0, index), layout.index_select(0, index), strokes.index_select(0, index),
          log_joint.index_select(0, index), obs_scale};
}

CharacterTypes sample_types(Dood& program, const torch::Tensor& supports, int particles) {
  if (particles < 1)
    throw ArgumentError(fmt::format("DooD one-shot: particles is {}, but must be at least 1", particles));
  auto x = as_images(program, supports, "supports").repeat_interleave(particles, 0);  // row c * K + k
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
  types.log_joint = torch::zeros({x.size(0)}, x.options());
  for (const auto& site : model_trace)
    if (site.is_random()) types.log_joint = types.log_joint + site.log_prob();
  for (const auto& [name, value] : model_trace.site("x").dist->named_params())
    if (name == "scale") types.obs_scale = value.expand_as(x)[0].contiguous();
  PPL_ASSERT(types.obs_scale.defined());
  return types;
}

TokenVariables TokenVariables::identity(const CharacterTypes& types) {
  const auto opts = types.strokes.options();
  return {torch::zeros({types.size(), 7}, opts), torch::zeros_like(types.strokes)};
}

TokenAffine TokenVariables::affine() const {
  // B.4's ranges.
  using A = TokenAffine;
  return {in_range(raw.narrow(1, 0, 2), -A::kShift, A::kShift),
          in_range(raw.narrow(1, 2, 2), A::kScaleLow, A::kScaleHigh),
          in_range(raw.select(1, 4), -A::kAngle, A::kAngle), in_range(raw.narrow(1, 5, 2), -A::kAngle, A::kAngle)};
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
                           double motor_sd) {
  const int64_t n = types.size(), t = types.strokes.size(1), p = types.strokes.size(2);
  auto type_points = glimpse_to_image(types.strokes.flatten(0, 1), types.layout.flatten(0, 1), image_size);
  return apply_token_affine(type_points.view({n, t, p, 2}), token.affine()) + motor_sd * token.noise;
}

torch::Tensor token_objective(Dood& program, const torch::Tensor& queries, const CharacterTypes& types,
                              const TokenVariables& token, double motor_sd) {
  const int64_t n = types.size(), t = types.strokes.size(1), p = types.strokes.size(2);
  const int64_t size = program.image_size();
  auto l = types.layout.flatten(0, 1);  // [N T, 4]
  // log p(x | z): the model's canvas at z = (o, l, s'), s' taken back to the glimpse frame.
  auto points = token_points(types, token, size, motor_sd);
  auto s_token = image_to_glimpse(points.flatten(0, 1), l, size);  // [N T, P, 2]
  auto rp = program.render_params(l, s_token);
  auto strokes = program.render(types.layout, s_token.view({n, t, p, 2}), rp.sigma.view({n, t}), rp.omega0.view({n, t})) *
                 types.on.view({n, t, 1, 1});
  auto canvas = ppl::runtime::composite(strokes, rp.omega1.view({n, t}).select(1, 0)).narrow(1, t - 1, 1);
  auto log_lik = d::Laplace(canvas, types.obs_scale.expand_as(canvas)).to_event(3).log_prob(queries);
  // log p(z | psi): the uniform affine, and the motor noise of the strokes drawn (B.4).
  // o and l are the type's own (a point mass), so they add nothing.
  auto a = token.affine();
  auto per_stroke = [t](const torch::Tensor& v) { return v.repeat_interleave(t, 0); };
  TokenAffine stroke_affine{per_stroke(a.shift), per_stroke(a.scale), per_stroke(a.rotation), per_stroke(a.shear)};
  auto type_points = glimpse_to_image(types.strokes.flatten(0, 1), l, size);
  auto motor = token_log_prob(points.flatten(0, 1), type_points, stroke_affine, motor_sd).view({n, t});
  return log_lik + token_affine_log_prob(a) + (motor * types.on).sum(1);
}

TokenFit fit_tokens(Dood& program, const torch::Tensor& queries, const CharacterTypes& types,
                    const OneShotOptions& options) {
  options.check();
  auto x = as_images(program, queries, "queries");
  if (x.size(0) != types.size())
    throw ArgumentError(fmt::format("DooD one-shot: queries has {} images, but types has {}", x.size(0), types.size()));
  torch::AutoGradMode grad_on(true);
  auto token = TokenVariables::identity(types);
  token.raw.requires_grad_(true);
  token.noise.requires_grad_(true);
  torch::optim::Adam adam({token.raw, token.noise}, torch::optim::AdamOptions(options.learning_rate));
  TokenFit fit;
  for (int step = 0; step <= options.steps; ++step) {
    auto objective = token_objective(program, x, types, token, options.motor_sd);
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
  auto types = sample_types(program, supports, options.particles);
  return score_types(program, queries, types, options, progress);
}

torch::Tensor classify(const torch::Tensor& scores) {
  if (!scores.defined() || scores.dim() != 2 || scores.size(1) < 1)
    throw ArgumentError(fmt::format("DooD one-shot: scores has shape {}, but must be [Q, C] with C >= 1",
                                    scores.defined() ? shape_string(scores.sizes()) : std::string("undefined")));
  return scores.argmax(1);
}

}  // namespace ppl::programs::dood
