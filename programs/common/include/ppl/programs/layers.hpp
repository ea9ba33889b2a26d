#pragma once
/// Networks shared by the programs of the GNM family (GNM and its baselines,
/// GENESIS, SPACE): sub-pixel decoder stacks, the image encoder of GNM's
/// Table 6, MLPs with layer normalisation, the spatial broadcast decoder and
/// the positive scale of a Normal (seed 003, Appendix D).
#include <initializer_list>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace ppl::programs {

/// One row of Tables 6-11: a (sub-pixel) convolution with `kernel` x `kernel`
/// filters, `channels` outputs and `stride` (for a sub-pixel row, the upscale
/// factor: a convolution to channels * stride^2 followed by a pixel shuffle).
struct ConvRow {
  int64_t kernel, channels, stride;
};

/// The factors of `rows` fitted to an overall factor `ratio` (a power of
/// two): the last factors of 2 become 1 until the product is `ratio`. The
/// paper's tables are for 128 x 128 images; this adapts them to smaller ones.
/// Throws ppl::ArgumentError when no such fit exists.
std::vector<ConvRow> fit_strides(std::vector<ConvRow> rows, int64_t ratio, const std::string& what);

/// The version counters of the parameters of `modules`, in order. Every
/// in-place update of a parameter bumps its counter, so two equal lists mean
/// that none of these weights changed in between.
std::vector<int64_t> parameter_versions(std::initializer_list<const torch::nn::Module*> modules);

/// A sub-pixel decoder (Shi et al. 2016): each row is conv -> pixel shuffle,
/// followed by layer normalisation and `activation` ("relu" or "celu")
/// except the last, whose channels are replaced by `out_channels`.
torch::nn::Sequential subpixel_stack(int64_t in_channels, std::vector<ConvRow> rows, int64_t out_channels,
                                     const std::string& activation);

/// The image encoder of Table 6 for `image_size` x `image_size` images of
/// `in_channels` channels down to a `cells` x `cells` map of `channels`
/// features: the last 2k - 1 rows of the table with k = log2(image_size /
/// cells) stride-2 rows, no row wider than `max_width` (Table 6: 128; GNM's
/// authors' code: 64). Throws ppl::ArgumentError when image_size is not
/// cells times 2, 4, 8, 16 or 32.
torch::nn::Sequential image_encoder(int64_t image_size, int64_t cells, int64_t channels, int64_t in_channels = 1,
                                    int64_t max_width = 128);

/// An MLP with `sizes` outputs per layer; hidden layers are followed by
/// CELU and layer normalisation (Table 9's note), the output layer by nothing.
torch::nn::Sequential mlp(int64_t in, const std::vector<int64_t>& sizes);

/// The spatial broadcast decoder (Watters et al. 2019) of GENESIS's
/// component decoders: z [B, D] is tiled over a `size` x `size` grid, two
/// coordinate channels (x across, y down, in [-1, 1]) are appended, and
/// `layers` 3 x 3 convolutions of `channels` filters (padding 1, CELU) end
/// in a 1 x 1 convolution to `out_channels`; the result is [B, out, size, size].
struct BroadcastDecoderImpl : torch::nn::Module {
  BroadcastDecoderImpl(int64_t z_size, int64_t size, int64_t channels, int64_t layers, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& z);
  int64_t size;
  torch::nn::Sequential convs{nullptr};
};
TORCH_MODULE(BroadcastDecoder);

/// The per-cell head of a structure map: GNM's StackConv([128, 128, out])
/// of Table 9 with 1 x 1 kernels (group norm and CELU between), so that each
/// cell reads only its own features, as SPACE's heads do.
torch::nn::Sequential cell_head(int64_t in, int64_t out);

/// The object patch decoder of GNM's Table 7 (z_what as a 1 x 1 map up to a
/// `glimpse_size` x `glimpse_size` patch of `out_channels`, CELU), its rows
/// fitted by fit_strides; `what` names it in errors.
torch::nn::Sequential glimpse_decoder(int64_t z_what_size, int64_t glimpse_size, int64_t out_channels,
                                      const std::string& what);

/// A value moving linearly from `start` (at step `begin` and before) to
/// `end` (at step `finish` and after).
double linear_schedule(int64_t step, int64_t begin, int64_t finish, double start, double end);

/// The scale of a Normal from an unconstrained output: softplus(raw) + 1e-4.
torch::Tensor positive_scale(const torch::Tensor& raw);

}  // namespace ppl::programs
