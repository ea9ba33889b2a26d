// Attend-Infer-Repeat, model and guide.
#include <ppl/programs/air/air.hpp>

#include <cmath>

#include <fmt/format.h>

#include <ppl/core/reflect.hpp>
#include <ppl/runtime/stn.hpp>

namespace ppl::programs::air {
namespace d = ppl::dist;
namespace nn = torch::nn;

AirOptions AirOptions::defaults() {
  AirOptions o;
  o.image_size = 50;
  o.max_steps = 3;
  o.window_size = 28;
  o.z_what_size = 50;
  o.rnn_hidden = 256;
  o.encoder_hidden = 200;
  o.decoder_hidden = 200;
  o.predict_hidden = 200;
  o.baseline_hidden = 200;
  o.z_pres_prior = 0.01;
  o.anneal_prior = "none";
  o.anneal_prior_to = 1e-7;
  o.anneal_prior_begin = 0;
  o.anneal_prior_duration = 100000;
  o.scale_prior_mean = 3.0;
  o.scale_prior_sd = 0.2;
  o.pos_prior_mean = 0.0;
  o.pos_prior_sd = 1.0;
  o.likelihood = "normal";
  o.likelihood_sd = 0.3;
  o.decoder_output_bias = -2.0;
  o.use_baselines = true;
  o.analytic_kl = false;
  o.z_pres_warmup = 3000;
  o.learning_rate = 1e-4;
  o.baseline_learning_rate = 1e-1;
  o.batch_size = 64;
  return o;
}

std::vector<double> count_prior_trials(double k, int max_steps) {
  if (!(k > 0 && k <= 1)) throw ArgumentError(fmt::format("AIR: z_pres_prior is {}, but must be in (0, 1]", k));
  // p(n) = k^n / Z for n = 0..N; rho_t = P(n > t) / P(n > t - 1).
  std::vector<double> tail(max_steps + 2, 0.0);
  for (int n = max_steps; n >= 0; --n) tail[n] = tail[n + 1] + std::pow(k, n);
  std::vector<double> rho(max_steps);
  for (int t = 0; t < max_steps; ++t) rho[t] = tail[t + 1] / tail[t];
  return rho;
}

torch::Tensor to_runtime_where(const torch::Tensor& z_where) {
  // AIR scales are about 3; a guide draw at or below 0 would flip the window,
  // which the runtime rejects, so the scale is kept positive.
  auto s = z_where.narrow(1, 0, 1).clamp_min(1e-2);
  return torch::cat({1.0 / s, -z_where.narrow(1, 1, 2) / s}, 1);
}

ScoredBox window_box(double s, double x, double y, int64_t image_size, double score) {
  s = std::max(s, 1e-2);
  const double side = static_cast<double>(image_size), size = side / s;
  const double cx = (1 - x / s) * side / 2, cy = (1 - y / s) * side / 2;
  return {.x = cx - size / 2, .y = cy - size / 2, .width = size, .height = size, .score = score};
}

namespace {
nn::Sequential mlp(int64_t in, int64_t hidden, int64_t out) {
  return nn::Sequential(nn::Linear(in, hidden), nn::ReLU(), nn::Linear(hidden, out));
}
}  // namespace

AirNetsImpl::AirNetsImpl(const AirOptions& o) {
  const int64_t pixels = int64_t{o.image_size} * o.image_size;
  const int64_t window = int64_t{o.window_size} * o.window_size;
  // The LSTMs read [image, z_where, z_what, z_pres]; the image part of their
  // input is projected once per pass (SplitLSTMCell).
  const int64_t varying = 3 + o.z_what_size + 1;
  rnn = register_module("rnn", SplitLSTMCell(pixels, varying, o.rnn_hidden));
  predict = register_module("predict", mlp(o.rnn_hidden, o.predict_hidden, 1 + 3 + 3));
  encode = register_module("encode", mlp(window, o.encoder_hidden, 2 * o.z_what_size));
  decode = register_module("decode", mlp(o.z_what_size, o.decoder_hidden, window));
  bl_rnn = register_module("bl_rnn", SplitLSTMCell(pixels, varying, o.rnn_hidden));
  bl_predict = register_module("bl_predict", mlp(o.rnn_hidden, o.baseline_hidden, 1));
  h_init = register_parameter("h_init", torch::zeros({1, o.rnn_hidden}));
  c_init = register_parameter("c_init", torch::zeros({1, o.rnn_hidden}));
  bl_h_init = register_parameter("bl_h_init", torch::zeros({1, o.rnn_hidden}));
  bl_c_init = register_parameter("bl_c_init", torch::zeros({1, o.rnn_hidden}));
  z_where_init = register_parameter("z_where_init", torch::zeros({1, 3}));
  z_what_init = register_parameter("z_what_init", torch::zeros({1, o.z_what_size}));
  // Registered only for the Laplace likelihood, so runs with the Normal one
  // keep their checkpoints. Starts at b = 0.01 + 0.99 sigmoid(0), about 0.5.
  if (o.likelihood == "laplace")
    obs_scale = register_parameter("obs_scale", torch::zeros({1, o.image_size, o.image_size}));
}

Air::Air(AirOptions options) : options_(std::move(options)), nets_(options_) {
  if (options_.max_steps < 1) throw ArgumentError(fmt::format("AIR: max_steps is {}, but must be at least 1", options_.max_steps));
  if (options_.window_size < 2 || options_.image_size < 2)
    throw ArgumentError("AIR: window_size and image_size must be at least 2");
  if (options_.likelihood != "normal" && options_.likelihood != "laplace")
    throw ArgumentError(
        fmt::format("AIR: likelihood is \"{}\", but must be \"normal\" or \"laplace\"", options_.likelihood));
  if (options_.likelihood == "normal" && !(options_.likelihood_sd > 0))
    throw ArgumentError(fmt::format("AIR: likelihood_sd is {}, but must be positive", options_.likelihood_sd));
  if (options_.anneal_prior != "none" && options_.anneal_prior != "exp")
    throw ArgumentError(fmt::format("AIR: anneal_prior is \"{}\", but must be \"none\" or \"exp\"", options_.anneal_prior));
  if (options_.anneal_prior == "exp") {
    if (!(options_.anneal_prior_to > 0 && options_.anneal_prior_to <= 1))
      throw ArgumentError(fmt::format("AIR: anneal_prior_to is {}, but must be in (0, 1]", options_.anneal_prior_to));
    if (options_.anneal_prior_duration < 1)
      throw ArgumentError(
          fmt::format("AIR: anneal_prior_duration is {}, but must be at least 1", options_.anneal_prior_duration));
  }
  trials_ = count_prior_trials(options_.z_pres_prior, options_.max_steps);
  where_loc_ = torch::tensor({options_.scale_prior_mean, options_.pos_prior_mean, options_.pos_prior_mean}, torch::kFloat);
  where_scale_ = torch::tensor({options_.scale_prior_sd, options_.pos_prior_sd, options_.pos_prior_sd}, torch::kFloat);
}

nlohmann::json Air::options() const { return options_to_json(options_); }

void Air::to(const torch::Device& device) {
  nets_->to(device);
  where_loc_ = where_loc_.to(device);
  where_scale_ = where_scale_.to(device);
  if (scale_override_.defined()) scale_override_ = scale_override_.to(device);
}

void Air::set_likelihood_scale(const torch::Tensor& scale) {
  if (!has_likelihood_scale())
    throw ArgumentError(fmt::format("AIR: likelihood is \"{}\", which has no learnt scale to replace", options_.likelihood));
  scale_override_ =
      scale.defined() ? check_likelihood_scale("AIR", scale, options_.image_size).to(where_loc_.device()) : scale;
}

void Air::set_step(int64_t step) {
  step_ = step;
  if (options_.anneal_prior != "exp") return;
  // k moves geometrically from z_pres_prior to anneal_prior_to (down, or up)
  // over anneal_prior_duration steps after anneal_prior_begin.
  const double k0 = options_.z_pres_prior, k1 = options_.anneal_prior_to;
  const double rate = std::log(k0 / k1) / options_.anneal_prior_duration;
  const double k = std::clamp(k0 * std::exp(-rate * static_cast<double>(step - options_.anneal_prior_begin)),
                              std::min(k0, k1), std::max(k0, k1));
  trials_ = count_prior_trials(k, options_.max_steps);
}

std::vector<ParamGroupSpec> Air::param_groups() const {
  return {{"air.bl_", options_.baseline_learning_rate}, {"", options_.learning_rate}};
}

torch::Tensor Air::render_object(const torch::Tensor& z_what, const torch::Tensor& z_where) {
  const int64_t n = z_what.size(0), w = options_.window_size;
  auto window = torch::sigmoid(nets_->decode->forward(z_what) + options_.decoder_output_bias).view({n, 1, w, w});
  return ppl::runtime::stn_place(window, to_runtime_where(z_where), options_.image_size, options_.image_size);
}

torch::Tensor Air::prior(int64_t n, const torch::TensorOptions& opts) {
  ppl::module("air", nets_);
  auto data = ppl::plate("data", n);
  auto canvas = torch::zeros({n, 1, options_.image_size, options_.image_size}, opts);
  auto present = torch::ones({n}, opts);
  for (int t = 0; t < options_.max_steps; ++t) {
    auto z_pres = ppl::sample(addr("z_pres", t), d::Bernoulli(trials_[t] * present));
    auto mask = z_pres > 0.5;
    auto z_where = ppl::sample(addr("z_where", t),
                               d::Normal(where_loc_.expand({n, 3}), where_scale_.expand({n, 3})).to_event(1),
                               {.mask = mask});
    auto z_what = ppl::sample(addr("z_what", t),
                              d::Normal(torch::zeros({n, options_.z_what_size}, opts), 1.0).to_event(1), {.mask = mask});
    canvas = canvas + render_object(z_what, z_where) * z_pres.view({n, 1, 1, 1});
    present = z_pres;
  }
  return canvas;
}

torch::Tensor Air::model(const torch::Tensor& x) {
  check::min_dim({"AIR model"}, "x", x, 4);
  auto canvas = prior(x.size(0), x.options());
  auto data = ppl::plate("data", x.size(0));
  if (options_.likelihood == "laplace") {
    auto scale = scale_override_.defined() ? scale_override_ : bounded_likelihood_scale(nets_->obs_scale);
    ppl::observe("x", d::Laplace(canvas, scale.unsqueeze(0).expand_as(canvas)).to_event(3), x);
  } else {
    ppl::observe("x", d::Normal(canvas, options_.likelihood_sd).to_event(3), x);
  }
  return canvas;
}

torch::Tensor Air::guide(const torch::Tensor& x) {
  check::min_dim({"AIR guide"}, "x", x, 4);
  ppl::module("air", nets_);
  const int64_t n = x.size(0);
  auto data = ppl::plate("data", n);
  auto flat = x.reshape({n, -1});
  auto h = nets_->h_init.expand({n, -1}), c = nets_->c_init.expand({n, -1});
  auto bl_h = nets_->bl_h_init.expand({n, -1}), bl_c = nets_->bl_c_init.expand({n, -1});
  auto z_where = nets_->z_where_init.expand({n, -1});
  auto z_what = nets_->z_what_init.expand({n, -1});
  auto present = torch::ones({n}, x.options());
  // The image's share of the LSTM gates is the same at every step: project it once.
  auto image_gates = nets_->rnn->project(flat);
  auto bl_image_gates = options_.use_baselines ? nets_->bl_rnn->project(flat) : torch::Tensor();
  std::vector<torch::Tensor> pres;
  for (int t = 0; t < options_.max_steps; ++t) {
    std::tie(h, c) = nets_->rnn->step(image_gates, torch::cat({z_where, z_what, present.unsqueeze(1)}, 1), h, c);
    auto out = nets_->predict->forward(h);
    // During the warm-up the presence is a fair coin: the decoder learns to
    // draw before the guide learns to count.
    auto p = step_ < options_.z_pres_warmup ? torch::full({n}, 0.5, x.options())
                                            : torch::sigmoid(out.narrow(1, 0, 1)).squeeze(1);
    auto where_loc = out.narrow(1, 1, 3) + where_loc_;
    auto where_scale = torch::softplus(out.narrow(1, 4, 3)) * where_scale_;

    torch::Tensor baseline;
    if (options_.use_baselines) {
      // The baseline sees detached inputs: its loss must not train the guide.
      auto bl_in = torch::cat({z_where.detach(), z_what.detach(), present.detach().unsqueeze(1)}, 1);
      std::tie(bl_h, bl_c) = nets_->bl_rnn->step(bl_image_gates, bl_in, bl_h, bl_c);
      baseline = nets_->bl_predict->forward(bl_h).squeeze(1) * present.detach();
    }
    auto z_pres = ppl::sample(addr("z_pres", t), d::Bernoulli(p * present), {.baseline = baseline});
    auto mask = z_pres > 0.5;
    z_where = ppl::sample(addr("z_where", t), d::Normal(where_loc, where_scale).to_event(1), {.mask = mask});
    auto glimpse = ppl::runtime::stn_crop(x, to_runtime_where(z_where), options_.window_size);
    auto enc = nets_->encode->forward(glimpse.reshape({n, -1}));
    auto what_loc = enc.narrow(1, 0, options_.z_what_size);
    auto what_scale = torch::softplus(enc.narrow(1, options_.z_what_size, options_.z_what_size)) + 1e-4;
    z_what = ppl::sample(addr("z_what", t), d::Normal(what_loc, what_scale).to_event(1), {.mask = mask});
    present = z_pres;
    pres.push_back(z_pres);
  }
  return torch::stack(pres, 1);
}

torch::Tensor Air::sample(int64_t n) {
  torch::NoGradGuard no_grad;
  auto opts = where_loc_.options();
  return handlers::block([&] { return prior(n, opts); })().clamp(0, 1);
}

torch::Tensor Air::step_canvases(const Trace& tr) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  torch::Tensor canvas;
  for (int t = 0; t < options_.max_steps; ++t) {
    const auto& pres = tr.site(addr("z_pres", t)).value;
    auto object = render_object(tr.site(addr("z_what", t)).value, tr.site(addr("z_where", t)).value);
    auto add = object * pres.view({-1, 1, 1, 1});
    canvas = canvas.defined() ? canvas + add : add;
    out.push_back(canvas.clamp(0, 1));
  }
  return torch::stack(out);
}

torch::Tensor Air::infer_counts(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return handlers::block([this](const torch::Tensor& img) { return guide(img); })(x).sum(1);
}

InferredObjects Air::infer_objects(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  Trace guide_trace;
  {
    handlers::BlockHandler hide_all([](const Message&) { return true; });
    handlers::TraceHandler record;
    HandlerScope hidden(hide_all);
    HandlerScope recording(record);
    guide(x);
    guide_trace = std::move(record.trace());
  }
  const auto n = x.size(0);
  InferredObjects out;
  out.boxes.assign(static_cast<size_t>(n), {});
  std::vector<torch::Tensor> what;
  for (int t = 0; t < options_.max_steps; ++t) {
    const auto score = guide_trace.site(addr("z_pres", t)).dist->mean().to(torch::kDouble).cpu().contiguous();
    const auto where = guide_trace.site(addr("z_where", t)).value.to(torch::kDouble).cpu().contiguous();
    what.push_back(guide_trace.site(addr("z_what", t)).value.to(torch::kFloat32).cpu());
    const auto* w = where.data_ptr<double>();
    for (int64_t i = 0; i < n; ++i)
      out.boxes[static_cast<size_t>(i)].push_back(
          window_box(w[3 * i], w[3 * i + 1], w[3 * i + 2], options_.image_size, score.data_ptr<double>()[i]));
  }
  out.what = torch::stack(what, 1);
  return out;
}

nlohmann::json Air::evaluate(const torch::Tensor& x, const torch::Tensor& counts) {
  auto inferred = infer_counts(x).round().to(torch::kLong).cpu();
  nlohmann::json j;
  j["mean_inferred_count"] = inferred.to(torch::kDouble).mean().item<double>();
  if (!counts.defined()) return j;
  auto truth = counts.to(torch::kLong).cpu();
  const int64_t k = options_.max_steps + 1;
  auto confusion = torch::zeros({k, k}, torch::kLong);
  for (int64_t i = 0; i < truth.numel(); ++i) {
    const auto a = std::clamp<int64_t>(truth[i].item<int64_t>(), 0, k - 1);
    confusion[a][inferred[i].item<int64_t>()] += 1;
  }
  j["count_accuracy"] = (inferred == truth).to(torch::kDouble).mean().item<double>();
  std::vector<std::vector<int64_t>> rows;
  for (int64_t a = 0; a < k; ++a) {
    std::vector<int64_t> row;
    for (int64_t b = 0; b < k; ++b) row.push_back(confusion[a][b].item<int64_t>());
    rows.push_back(row);
  }
  j["confusion"] = rows;
  return j;
}

}  // namespace ppl::programs::air
