// The ConvLSTM cell and the DRAW core of GNM and ConvDRAW.
#include <ppl/programs/gnm/layers.hpp>

#include <fmt/format.h>

#include <ppl/ppl.hpp>

namespace ppl::programs::gnm {
namespace nn = torch::nn;
namespace d = ppl::dist;

ConvLSTMCellImpl::ConvLSTMCellImpl(int64_t input_channels, int64_t hidden_channels_, int64_t kernel)
    : hidden_channels(hidden_channels_) {
  conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(input_channels + hidden_channels, 4 * hidden_channels,
                                                              kernel)
                                                .padding(kernel / 2)));
}

std::tuple<torch::Tensor, torch::Tensor> ConvLSTMCellImpl::forward(const torch::Tensor& x, const torch::Tensor& h,
                                                                   const torch::Tensor& c) {
  auto g = conv->forward(torch::cat({x, h}, 1)).chunk(4, 1);
  auto c_next = torch::sigmoid(g[1]) * c + torch::sigmoid(g[0]) * torch::tanh(g[2]);
  auto h_next = torch::sigmoid(g[3]) * torch::tanh(c_next);
  return {h_next, c_next};
}

namespace {
nn::Sequential conv_interaction(int64_t in, int64_t out) {
  // The 2-layer CNN of ConvDRAW (Appendix D.2): filters [128, 2 z], kernel 3.
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, 128, 3).padding(1)), nn::CELU(),
                        nn::GroupNorm(nn::GroupNormOptions(1, 128)),
                        nn::Conv2d(nn::Conv2dOptions(128, out, 3).padding(1)));
}
}  // namespace

DrawCoreImpl::DrawCoreImpl(int64_t channels_, int64_t cells_, int64_t z_size_, bool mlp_interaction_,
                           int64_t interaction_hidden, int64_t kernel, int64_t decoder_hidden)
    : channels(channels_), cells(cells_), z_size(z_size_), mlp_interaction(mlp_interaction_) {
  enc = register_module("enc", ConvLSTMCell(3 * channels, channels, kernel));
  dec = register_module("dec", ConvLSTMCell(2 * channels, channels, kernel));
  const int64_t flat = channels * cells * cells;
  if (mlp_interaction) {
    int_enc = register_module("int_enc", mlp(flat, {interaction_hidden, interaction_hidden, 2 * z_size}));
    int_dec = register_module("int_dec", mlp(flat, {interaction_hidden, interaction_hidden, 2 * z_size}));
    z_dec = register_module("z_dec", mlp(z_size, {512, decoder_hidden, flat}));
  } else {
    int_enc = register_module("int_enc", conv_interaction(channels, 2 * z_size));
    int_dec = register_module("int_dec", conv_interaction(channels, 2 * z_size));
    z_dec = register_module("z_dec", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(z_size, channels, 3).padding(1))));
  }
  out = register_module("out", nn::Conv2d(nn::Conv2dOptions(channels, channels, 3).padding(1)));
}

namespace {
std::tuple<torch::Tensor, torch::Tensor> split_params(const torch::Tensor& raw, int64_t z_size) {
  return {raw.narrow(1, 0, z_size), positive_scale(raw.narrow(1, z_size, z_size))};
}
}  // namespace

std::tuple<torch::Tensor, torch::Tensor> DrawCoreImpl::prior_params(const torch::Tensor& h_dec) {
  return split_params(int_dec->forward(mlp_interaction ? h_dec.flatten(1) : h_dec), z_size);
}

std::tuple<torch::Tensor, torch::Tensor> DrawCoreImpl::posterior_params(const torch::Tensor& h_enc) {
  return split_params(int_enc->forward(mlp_interaction ? h_enc.flatten(1) : h_enc), z_size);
}

torch::Tensor DrawCoreImpl::decode(const torch::Tensor& z) {
  return z_dec->forward(z).view({z.size(0), channels, cells, cells});
}

std::vector<int64_t> DrawCoreImpl::z_shape() const {
  if (mlp_interaction) return {z_size};
  return {z_size, cells, cells};
}

DrawResult run_draw(DrawCore& core, const std::string& site, int64_t steps, int64_t batch,
                    const torch::TensorOptions& options, const torch::Tensor& fx) {
  const int64_t c = core->channels, s = core->cells;
  auto zeros = torch::zeros({batch, c, s, s}, options);
  torch::Tensor h_enc = zeros, c_enc = zeros, h_dec = zeros, c_dec = zeros, f = zeros;
  const auto event = static_cast<int64_t>(core->z_shape().size());
  DrawResult result;
  for (int64_t l = 0; l < steps; ++l) {
    torch::Tensor z;
    if (fx.defined()) {
      std::tie(h_enc, c_enc) = core->enc->forward(torch::cat({h_dec, fx, fx - f}, 1), h_enc, c_enc);
      auto [loc, scale] = core->posterior_params(h_enc);
      z = ppl::sample(addr(site, l), d::Normal(loc, scale).to_event(event));
    } else {
      auto [loc, scale] = core->prior_params(h_dec);
      z = ppl::sample(addr(site, l), d::Normal(loc, scale).to_event(event));
    }
    std::tie(h_dec, c_dec) = core->dec->forward(torch::cat({core->decode(z), f}, 1), h_dec, c_dec);
    f = f + core->out->forward(h_dec);
    result.z.push_back(z);
    result.f_steps.push_back(f);
  }
  result.f = f;
  return result;
}

}  // namespace ppl::programs::gnm
