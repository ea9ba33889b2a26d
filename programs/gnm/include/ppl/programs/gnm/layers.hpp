#pragma once
/// Networks shared by GNM and its baselines (seed 003, Appendix D, Tables 6-11):
/// the convolutional LSTM cell and the DRAW core that StructDRAW and ConvDRAW
/// have in common (Algorithm 1). The networks the whole family shares (the
/// sub-pixel decoders, the image encoder, MLPs) are in
/// <ppl/programs/layers.hpp>; they are named here too.
#include <string>
#include <tuple>
#include <vector>

#include <torch/torch.h>

#include <ppl/programs/layers.hpp>

namespace ppl::programs::gnm {

using ppl::programs::ConvRow;
using ppl::programs::fit_strides;
using ppl::programs::image_encoder;
using ppl::programs::mlp;
using ppl::programs::positive_scale;
using ppl::programs::subpixel_stack;

/// A convolutional LSTM cell (Shi et al. 2015): the gates are one convolution
/// of [x, h] with `kernel` x `kernel` filters (zero padding keeps the size),
///   i, f, g, o = split(conv([x, h]))        (gate order of torch::nn::LSTMCell)
///   c' = sigmoid(f) c + sigmoid(i) tanh(g),  h' = sigmoid(o) tanh(c').
/// With kernel 1 it is an LSTMCell applied at every pixel, the input weights
/// being conv.weight[:, :in] and the recurrent ones conv.weight[:, in:].
struct ConvLSTMCellImpl : torch::nn::Module {
  ConvLSTMCellImpl(int64_t input_channels, int64_t hidden_channels, int64_t kernel);
  /// One step: x [B, in, H, W], (h, c) [B, hidden, H, W]; returns (h', c').
  std::tuple<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& h,
                                                   const torch::Tensor& c);
  int64_t hidden_channels;
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(ConvLSTMCell);

/// The networks of a DRAW core over `cells` x `cells` maps of `channels`
/// features (Algorithm 1): the encoder and decoder ConvLSTMs (`kernel` x
/// `kernel`; Table 9: 3), the
/// interaction layers giving prior and posterior parameters of z_l, the
/// decoder of z_l, and the output convolution CNN_out.
///
/// With `mlp_interaction` (StructDRAW, ConvDRAW-MLP) z_l is a vector of
/// `z_size` numbers, its parameters come from a 3-layer MLP over the whole
/// flattened hidden map ([512, 512, 2 z_size], Table 9) and z_l is decoded by
/// MLP([512, decoder_hidden, channels * cells^2]) (Table 9: 1024; the
/// authors' code: 512). Without it (ConvDRAW, GNM-NoMLP)
/// z_l is a map [z_size, cells, cells] whose parameters come from a 2-layer
/// CNN ([128, 2 z_size], kernel 3) and which a 3 x 3 convolution decodes.
struct DrawCoreImpl : torch::nn::Module {
  DrawCoreImpl(int64_t channels, int64_t cells, int64_t z_size, bool mlp_interaction, int64_t interaction_hidden,
               int64_t kernel = 3, int64_t decoder_hidden = 1024);
  /// loc, scale of p(z_l | z_<l) from h_dec,l-1 (MLP^int_dec).
  std::tuple<torch::Tensor, torch::Tensor> prior_params(const torch::Tensor& h_dec);
  /// loc, scale of q(z_l | x, z_<l) from h_enc,l (MLP^int_enc).
  std::tuple<torch::Tensor, torch::Tensor> posterior_params(const torch::Tensor& h_enc);
  /// d_l = MLP^g_dec(z_l) as a [B, channels, cells, cells] map.
  torch::Tensor decode(const torch::Tensor& z);
  /// The shape of one z_l without the batch: {z_size} or {z_size, cells, cells}.
  std::vector<int64_t> z_shape() const;

  int64_t channels, cells, z_size;
  bool mlp_interaction;
  ConvLSTMCell enc{nullptr}, dec{nullptr};
  torch::nn::Sequential int_enc{nullptr}, int_dec{nullptr}, z_dec{nullptr};
  torch::nn::Conv2d out{nullptr};
};
TORCH_MODULE(DrawCore);

/// What a pass of the DRAW loop produced.
struct DrawResult {
  torch::Tensor f;                ///< the accumulated feature map f_L [B, channels, cells, cells]
  std::vector<torch::Tensor> z;   ///< z_1..z_L
  std::vector<torch::Tensor> f_steps;  ///< f_1..f_L
};

/// Algorithm 1 with sites `addr(site, l)` for l = 0..steps-1, inside the
/// caller's "data" plate. With `fx` defined (the guide) z_l is drawn from
/// q(z_l) = N(MLP^int_enc(h_enc,l)) where h_enc,l = ConvLSTM_enc([h_dec,l-1,
/// fx, fx - f_l-1]); with `fx` undefined (the model) from p(z_l) =
/// N(MLP^int_dec(h_dec,l-1)). Then h_dec,l = ConvLSTM_dec([d_l, f_l-1]) with
/// d_l = MLP^g_dec(z_l), and f_l = f_l-1 + CNN_out(h_dec,l).
DrawResult run_draw(DrawCore& core, const std::string& site, int64_t steps, int64_t batch,
                    const torch::TensorOptions& options, const torch::Tensor& fx);

}  // namespace ppl::programs::gnm
