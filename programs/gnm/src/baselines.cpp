// The VAE and ConvDRAW baselines of GNM.
#include <fmt/format.h>

#include <ppl/core/reflect.hpp>
#include <ppl/programs/gnm/convdraw.hpp>
#include <ppl/programs/gnm/vae.hpp>

namespace ppl::programs::gnm {
namespace d = ppl::dist;
namespace nn = torch::nn;

namespace {
// Table 10 (VAE decoder, 1 x 1 to 128 x 128): kernel, channels, upscale.
const std::vector<ConvRow> kVaeDecoder = {{1, 128, 4}, {3, 128, 1}, {1, 64, 2}, {3, 64, 1},
                                          {1, 32, 2},  {3, 32, 1},  {1, 16, 2}, {3, 16, 1},
                                          {1, 16, 2},  {3, 16, 1},  {1, 8, 2},  {3, 3, 1}};
// Table 11 (ConvDRAW decoder, 4 x 4 to 128 x 128).
const std::vector<ConvRow> kConvDrawDecoder = {{3, 128, 1}, {1, 64, 2}, {3, 64, 1}, {1, 32, 2}, {3, 32, 1}, {1, 16, 2},
                                               {3, 16, 1},  {1, 16, 2}, {3, 16, 1}, {1, 8, 2},  {3, 3, 1}};

void check_positive(const char* program, const char* what, double v) {
  if (!(v > 0)) throw ArgumentError(fmt::format("{}: {} is {}, but must be positive", program, what, v));
}

}  // namespace

// ---------------------------------------------------------------- VAE

VaeOptions VaeOptions::defaults() {
  VaeOptions o;
  o.image_size = 64;
  o.channels = 128;
  o.z_size = 128;
  o.likelihood_sd = 0.1;  // GNM's: the same evidence per pixel, so Table 1's LL column compares
  o.learning_rate = 1e-4;
  o.batch_size = 32;
  return o;
}

VaeNetsImpl::VaeNetsImpl(const VaeOptions& o) {
  encoder = register_module("encoder", image_encoder(o.image_size, 4, o.channels));
  // Appendix D.2: a 2-layer CNN, filters [128, 128] (here [128, 2 z_size]), kernels [3, 4]: 4 x 4 to 1 x 1.
  head = register_module("head", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(o.channels, 128, 3).padding(1)),
                                                nn::GroupNorm(nn::GroupNormOptions(1, 128)), nn::CELU(),
                                                nn::Conv2d(nn::Conv2dOptions(128, 2 * o.z_size, 4))));
  decoder = register_module("decoder",
                            subpixel_stack(o.z_size, fit_strides(kVaeDecoder, o.image_size, "VAE decoder"), 1, "relu"));
}

Vae::Vae(VaeOptions options) : options_(std::move(options)), nets_(options_) {
  check_positive("VAE", "likelihood_sd", options_.likelihood_sd);
}

nlohmann::json Vae::options() const { return options_to_json(options_); }

torch::Tensor Vae::prior(int64_t n, const torch::TensorOptions& opts) {
  ppl::module("vae", nets_);
  auto data = ppl::plate("data", n);
  auto z = ppl::sample("z", d::Normal(torch::zeros({n, options_.z_size}, opts), 1.0).to_event(1));
  return torch::sigmoid(nets_->decoder->forward(z.view({n, -1, 1, 1})));
}

torch::Tensor Vae::model(const torch::Tensor& x) {
  check::min_dim({"VAE model"}, "x", x, 4);
  auto mean = prior(x.size(0), x.options());
  auto data = ppl::plate("data", x.size(0));
  ppl::observe("x", d::Normal(mean, options_.likelihood_sd).to_event(3), x);
  return mean;
}

torch::Tensor Vae::guide(const torch::Tensor& x) {
  check::min_dim({"VAE guide"}, "x", x, 4);
  ppl::module("vae", nets_);
  const int64_t n = x.size(0);
  auto data = ppl::plate("data", n);
  auto out = nets_->head->forward(nets_->encoder->forward(x)).flatten(1);
  auto loc = out.narrow(1, 0, options_.z_size);
  auto scale = positive_scale(out.narrow(1, options_.z_size, options_.z_size));
  return ppl::sample("z", d::Normal(loc, scale).to_event(1));
}

torch::Tensor Vae::sample(int64_t n) {
  torch::NoGradGuard no_grad;
  auto opts = nets_->parameters().front().options();
  return handlers::block([&] { return prior(n, opts); })().clamp(0, 1);
}

// ---------------------------------------------------------------- ConvDRAW

ConvDrawOptions ConvDrawOptions::defaults() {
  ConvDrawOptions o;
  o.image_size = 64;
  o.num_cells = 4;
  o.channels = 128;
  o.draw_steps = 4;
  o.draw_kernel = 3;
  o.z_size = 32;
  o.mlp_interaction = false;
  o.interaction_hidden = 512;
  o.likelihood_sd = 0.1;  // GNM's: the same evidence per pixel, so Table 1's LL column compares
  o.learning_rate = 1e-4;
  o.batch_size = 32;
  return o;
}

ConvDrawNetsImpl::ConvDrawNetsImpl(const ConvDrawOptions& o) {
  encoder = register_module("encoder", image_encoder(o.image_size, o.num_cells, o.channels));
  core = register_module("core", DrawCore(o.channels, o.num_cells, o.z_size, o.mlp_interaction, o.interaction_hidden, o.draw_kernel));
  decoder = register_module(
      "decoder", subpixel_stack(o.channels, fit_strides(kConvDrawDecoder, o.image_size / o.num_cells, "ConvDRAW decoder"),
                                1, "relu"));
}

ConvDraw::ConvDraw(ConvDrawOptions options) : options_(std::move(options)), nets_(options_) {
  if (options_.draw_steps < 1)
    throw ArgumentError(fmt::format("ConvDRAW: draw_steps is {}, but must be at least 1", options_.draw_steps));
  check_positive("ConvDRAW", "likelihood_sd", options_.likelihood_sd);
  if (options_.draw_kernel < 1 || options_.draw_kernel % 2 == 0)
    throw ArgumentError(fmt::format("ConvDRAW: draw_kernel is {}, but must be odd and positive", options_.draw_kernel));
}

nlohmann::json ConvDraw::options() const { return options_to_json(options_); }

DrawResult ConvDraw::prior(int64_t n, const torch::TensorOptions& opts) {
  ppl::module("convdraw", nets_);
  auto data = ppl::plate("data", n);
  return run_draw(nets_->core, "z_g", options_.draw_steps, n, opts, {});
}

torch::Tensor ConvDraw::model(const torch::Tensor& x) {
  check::min_dim({"ConvDRAW model"}, "x", x, 4);
  auto draw = prior(x.size(0), x.options());
  auto mean = torch::sigmoid(nets_->decoder->forward(draw.f));
  auto data = ppl::plate("data", x.size(0));
  ppl::observe("x", d::Normal(mean, options_.likelihood_sd).to_event(3), x);
  return mean;
}

torch::Tensor ConvDraw::guide(const torch::Tensor& x) {
  check::min_dim({"ConvDRAW guide"}, "x", x, 4);
  ppl::module("convdraw", nets_);
  const int64_t n = x.size(0);
  auto data = ppl::plate("data", n);
  auto fx = nets_->encoder->forward(x);
  return run_draw(nets_->core, "z_g", options_.draw_steps, n, x.options(), fx).f;
}

torch::Tensor ConvDraw::sample(int64_t n) {
  torch::NoGradGuard no_grad;
  auto opts = nets_->parameters().front().options();
  auto f = handlers::block([&] { return prior(n, opts).f; })();
  return torch::sigmoid(nets_->decoder->forward(f)).clamp(0, 1);
}

torch::Tensor ConvDraw::step_canvases(const Trace& model_trace) {
  torch::NoGradGuard no_grad;
  const auto& z0 = model_trace.site(addr("z_g", 0)).value;
  auto draw = handlers::block(handlers::replay([&] { return prior(z0.size(0), z0.options()); }, model_trace))();
  std::vector<torch::Tensor> out;
  for (const auto& f : draw.f_steps) out.push_back(torch::sigmoid(nets_->decoder->forward(f)));
  return torch::stack(out);
}

}  // namespace ppl::programs::gnm
