// GENESIS's mixture of components: the networks, the model's and the guide's
// latents, stick-breaking and the pixel-wise mixture likelihood.
#include <ppl/programs/component_mixture.hpp>

#include <ppl/dist/categorical.hpp>
#include <ppl/dist/normal.hpp>
#include <ppl/ppl.hpp>

namespace ppl::programs {
namespace nn = torch::nn;
namespace d = ppl::dist;

namespace {
// The mask decoder: z_m/k as a 1 x 1 map up to the image (sub-pixel rows).
const std::vector<ConvRow> kMaskDecoder = {{3, 64, 2}, {3, 64, 2}, {3, 32, 2}, {3, 32, 2},
                                           {3, 16, 2}, {3, 16, 2}, {3, 8, 2}};

/// `head` appended to `seq` layer by layer.
void append(nn::Sequential& seq, const nn::Sequential& head) {
  for (const auto& m : *head) seq->push_back(m);
}

/// (loc, scale) from the halves of the last dimension of `raw`.
std::pair<torch::Tensor, torch::Tensor> split(const torch::Tensor& raw) {
  const int64_t half = raw.size(-1) / 2;
  return {raw.narrow(-1, 0, half), positive_scale(raw.narrow(-1, half, half))};
}
}  // namespace

ComponentMixtureImpl::ComponentMixtureImpl(const MixtureSizes& s) : sizes(s) {
  const int64_t features = s.encoder_channels * 16;
  mask_enc = image_encoder(s.image_size, 4, s.encoder_channels);
  mask_enc->push_back(nn::Flatten());
  mask_enc = register_module("mask_enc", mask_enc);
  prior_lstm = register_module("prior_lstm", nn::LSTMCell(s.z_mask_size, s.lstm_hidden));
  post_lstm = register_module("post_lstm", nn::LSTMCell(features + s.z_mask_size, s.lstm_hidden));
  prior_out = register_module("prior_out", nn::Linear(s.lstm_hidden, 2 * s.z_mask_size));
  post_out = register_module("post_out", nn::Linear(s.lstm_hidden, 2 * s.z_mask_size));
  mask_dec = register_module(
      "mask_dec", subpixel_stack(s.z_mask_size, fit_strides(kMaskDecoder, s.image_size, "mask decoder"), 1, "celu"));
  comp_enc = image_encoder(s.image_size, 4, s.encoder_channels, 2);
  comp_enc->push_back(nn::Flatten());
  append(comp_enc, mlp(features, {256, 2 * s.z_comp_size}));
  comp_enc = register_module("comp_enc", comp_enc);
  comp_prior = register_module("comp_prior", mlp(s.z_mask_size, {256, 2 * s.z_comp_size}));
  comp_dec = register_module("comp_dec", BroadcastDecoder(s.z_comp_size, s.image_size, s.decoder_channels,
                                                          s.decoder_layers, 1));
}

torch::Tensor log_stick_breaking(const torch::Tensor& logits) {
  const int64_t k = logits.size(1);
  auto head = logits.narrow(1, 0, k - 1);
  // log of the stick left before component k: sum_{j<k} log(1 - sigmoid(a_j)).
  auto left = torch::cumsum(torch::log_sigmoid(-head), 1);
  auto zeros = torch::zeros_like(logits.narrow(1, 0, 1));
  auto before = torch::cat({zeros, left}, 1);                               // [B, K, H, W]
  auto take = torch::cat({torch::log_sigmoid(head), zeros}, 1);             // the last takes the rest
  return before + take;
}

namespace {
/// The versions of the decoders' parameters (they change with every update).
std::vector<int64_t> decoder_versions(const ComponentMixture& nets) {
  return parameter_versions({nets->mask_dec.get(), nets->comp_dec.get()});
}

/// The masks log m_k [B, K, H, W] of z_m [B, K, Dm].
torch::Tensor decode_masks(ComponentMixture& nets, const torch::Tensor& z_m) {
  const int64_t b = z_m.size(0), k = z_m.size(1), h = nets->sizes.image_size;
  nets->decoded_components += b * k;
  return log_stick_breaking(nets->mask_dec->forward(z_m.reshape({b * k, -1, 1, 1})).view({b, k, h, h}));
}

/// The component means mu_k [B, K, H, W] of z_c [B, K, Dc].
torch::Tensor decode_means(ComponentMixture& nets, const torch::Tensor& z_c) {
  const int64_t b = z_c.size(0), k = z_c.size(1), h = nets->sizes.image_size;
  return torch::sigmoid(nets->comp_dec->forward(z_c.reshape({b * k, -1}))).view({b, k, h, h});
}

/// Whether the draws z_m/k and z_c are the tensors the guide decoded last,
/// with the decoders as they were then and gradients where now needed.
bool from_guide(const ComponentMixture& nets, const std::vector<torch::Tensor>& z_m, const torch::Tensor& z_c) {
  const auto& g = nets->guide_decoding;
  if (!nets->reuse_guide_decoding || !g.z_c.defined() || !z_c.is_same(g.z_c) || z_m.size() != g.z_m.size())
    return false;
  for (size_t k = 0; k < z_m.size(); ++k)
    if (!z_m[k].is_same(g.z_m[k])) return false;
  return (g.grad || !torch::GradMode::is_enabled()) && g.versions == decoder_versions(nets);
}

torch::Tensor draw_or_mean(const std::string& name, const torch::Tensor& loc, const torch::Tensor& scale,
                           int64_t event, bool mode) {
  if (mode) return loc;
  return ppl::sample(name, d::Normal(loc, scale).to_event(event));
}
}  // namespace

MixtureDraw mixture_prior(ComponentMixture& nets, const MixtureSites& sites, int64_t n,
                          const torch::TensorOptions& options, bool mode) {
  const auto& s = nets->sizes;
  auto h = torch::zeros({n, s.lstm_hidden}, options), c = h;
  auto z = torch::zeros({n, s.z_mask_size}, options);
  std::vector<torch::Tensor> zs;
  for (int64_t k = 0; k < s.components; ++k) {
    std::tie(h, c) = nets->prior_lstm->forward(z, std::make_tuple(h, c));
    auto [loc, scale] = split(nets->prior_out->forward(h));
    z = draw_or_mean(addr(sites.mask, k), loc, scale, 1, mode);
    zs.push_back(z);
  }
  MixtureDraw out;
  out.z_m = torch::stack(zs, 1);
  auto [loc, scale] = split(nets->comp_prior->forward(out.z_m));
  out.z_c_loc = loc;
  out.z_c = draw_or_mean(sites.comp, loc, scale, 2, mode);
  if (!mode && from_guide(nets, zs, out.z_c)) {
    out.log_masks = nets->guide_decoding.log_masks;
    out.means = nets->guide_decoding.means;
  } else {
    out.log_masks = decode_masks(nets, out.z_m);
    out.means = decode_means(nets, out.z_c);
  }
  nets->guide_decoding = {};  // used once: a later run decodes its own draws
  return out;
}

MixtureDraw mixture_posterior(ComponentMixture& nets, const MixtureSites& sites, const torch::Tensor& x, bool mode) {
  const auto& s = nets->sizes;
  const int64_t n = x.size(0), h_img = s.image_size;
  auto features = nets->mask_enc->forward(x);
  auto h = torch::zeros({n, s.lstm_hidden}, x.options()), c = h;
  auto z = torch::zeros({n, s.z_mask_size}, x.options());
  std::vector<torch::Tensor> zs;
  for (int64_t k = 0; k < s.components; ++k) {
    std::tie(h, c) = nets->post_lstm->forward(torch::cat({features, z}, 1), std::make_tuple(h, c));
    auto [loc, scale] = split(nets->post_out->forward(h));
    z = draw_or_mean(addr(sites.mask, k), loc, scale, 1, mode);
    zs.push_back(z);
  }
  MixtureDraw out;
  out.z_m = torch::stack(zs, 1);
  const int64_t k = s.components;
  out.log_masks = decode_masks(nets, out.z_m);
  // Each component's encoder reads the image beside its mask.
  auto paired = torch::cat({x.unsqueeze(1).expand({n, k, 1, h_img, h_img}), out.log_masks.exp().unsqueeze(2)}, 2);
  auto [loc, scale] = split(nets->comp_enc->forward(paired.reshape({n * k, 2, h_img, h_img})).view({n, k, -1}));
  out.z_c_loc = loc;
  out.z_c = draw_or_mean(sites.comp, loc, scale, 2, mode);
  out.means = decode_means(nets, out.z_c);
  nets->guide_decoding = {};
  if (!mode && nets->reuse_guide_decoding)
    nets->guide_decoding = {zs, out.z_c, out.log_masks, out.means, decoder_versions(nets),
                            torch::GradMode::is_enabled()};
  return out;
}

dist::MixtureSameFamily pixel_mixture(const torch::Tensor& log_weights, const torch::Tensor& means,
                                      const torch::Tensor& sd) {
  auto w = log_weights.permute({0, 2, 3, 1}).unsqueeze(1);  // [B, 1, H, W, K]
  auto mu = means.permute({0, 2, 3, 1}).unsqueeze(1);
  return d::MixtureSameFamily(d::Categorical(d::logits(w)), d::Normal(mu, sd.expand_as(mu))).to_event(3);
}

}  // namespace ppl::programs
