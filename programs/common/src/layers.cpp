// Networks shared by the programs of the GNM family.
#include <ppl/programs/layers.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <ppl/core/errors.hpp>

namespace ppl::programs {
namespace nn = torch::nn;

std::vector<ConvRow> fit_strides(std::vector<ConvRow> rows, int64_t ratio, const std::string& what) {
  auto product = [&] {
    int64_t p = 1;
    for (const auto& r : rows) p *= r.stride;
    return p;
  };
  for (auto it = rows.rbegin(); it != rows.rend() && product() > ratio; ++it)
    if (it->stride == 2) it->stride = 1;
  if (product() != ratio)
    throw ArgumentError(fmt::format("{}: cannot scale by {} with the rows of its table (at most {}, powers of two)",
                                    what, ratio, product()));
  return rows;
}

std::vector<int64_t> parameter_versions(std::initializer_list<const torch::nn::Module*> modules) {
  std::vector<int64_t> v;
  for (const auto* m : modules)
    for (const auto& p : m->parameters()) v.push_back(p._version());
  return v;
}

torch::nn::Sequential subpixel_stack(int64_t in_channels, std::vector<ConvRow> rows, int64_t out_channels,
                                     const std::string& activation) {
  nn::Sequential seq;
  int64_t in = in_channels;
  for (size_t i = 0; i < rows.size(); ++i) {
    const bool last = i + 1 == rows.size();
    const int64_t ch = last ? out_channels : rows[i].channels;
    const int64_t u = rows[i].stride;
    seq->push_back(nn::Conv2d(nn::Conv2dOptions(in, ch * u * u, rows[i].kernel).padding(rows[i].kernel / 2)));
    if (u > 1) seq->push_back(nn::PixelShuffle(nn::PixelShuffleOptions(u)));
    if (!last) {
      seq->push_back(nn::GroupNorm(nn::GroupNormOptions(1, ch)));  // layer norm over (C, H, W)
      if (activation == "relu") seq->push_back(nn::ReLU());
      else seq->push_back(nn::CELU());
    }
    in = ch;
  }
  return seq;
}

torch::nn::Sequential image_encoder(int64_t image_size, int64_t cells, int64_t channels, int64_t in_channels,
                                    int64_t max_width) {
  // Table 6 (128 x 128 to 4 x 4): kernel, channels, stride.
  static const std::vector<ConvRow> table = {{4, 16, 2}, {3, 16, 1},  {4, 32, 2},  {3, 32, 1}, {4, 64, 2},
                                             {3, 64, 1}, {4, 128, 2}, {3, 128, 1}, {4, 128, 2}};
  int64_t k = 0;
  while ((cells << k) < image_size) ++k;
  if ((cells << k) != image_size || k < 1 || k > 5)
    throw ArgumentError(fmt::format("image encoder: image_size {} must be num_cells {} times 2, 4, 8, 16 or 32",
                                    image_size, cells));
  nn::Sequential seq;
  int64_t in = in_channels;
  const size_t first = table.size() - static_cast<size_t>(2 * k - 1);
  for (size_t i = first; i < table.size(); ++i) {
    const bool last = i + 1 == table.size();
    const auto& r = table[i];
    const int64_t ch = last ? channels : std::min(r.channels, max_width);
    seq->push_back(nn::Conv2d(nn::Conv2dOptions(in, ch, r.kernel).stride(r.stride).padding(1)));
    if (!last) {
      seq->push_back(nn::GroupNorm(nn::GroupNormOptions(1, ch)));
      seq->push_back(nn::CELU());
    }
    in = ch;
  }
  return seq;
}

torch::nn::Sequential mlp(int64_t in, const std::vector<int64_t>& sizes) {
  nn::Sequential seq;
  for (size_t i = 0; i < sizes.size(); ++i) {
    seq->push_back(nn::Linear(in, sizes[i]));
    if (i + 1 < sizes.size()) {
      seq->push_back(nn::CELU());
      seq->push_back(nn::LayerNorm(nn::LayerNormOptions({sizes[i]})));
    }
    in = sizes[i];
  }
  return seq;
}

BroadcastDecoderImpl::BroadcastDecoderImpl(int64_t z_size, int64_t size_, int64_t channels, int64_t layers,
                                           int64_t out_channels)
    : size(size_) {
  nn::Sequential seq;
  int64_t in = z_size + 2;
  for (int64_t l = 0; l < layers; ++l) {
    seq->push_back(nn::Conv2d(nn::Conv2dOptions(in, channels, 3).padding(1)));
    seq->push_back(nn::CELU());
    in = channels;
  }
  seq->push_back(nn::Conv2d(nn::Conv2dOptions(in, out_channels, 1)));
  convs = register_module("convs", seq);
}

torch::Tensor BroadcastDecoderImpl::forward(const torch::Tensor& z) {
  const int64_t b = z.size(0);
  auto grid = torch::linspace(-1.0, 1.0, size, z.options());
  auto ys = grid.view({1, 1, size, 1}).expand({b, 1, size, size});
  auto xs = grid.view({1, 1, 1, size}).expand({b, 1, size, size});
  auto tiled = z.view({b, -1, 1, 1}).expand({b, z.size(1), size, size});
  auto in = torch::cat({tiled, xs, ys}, 1);
  // On the CPU the convolutions run about 1.5 times faster channels-last
  // (oneDNN's NHWC kernels, forward and backward); the result is the same
  // function, returned in the usual layout.
  if (in.is_cpu()) return convs->forward(in.contiguous(torch::MemoryFormat::ChannelsLast)).contiguous();
  return convs->forward(in);
}

torch::nn::Sequential cell_head(int64_t in, int64_t out) {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, 128, 1)), nn::GroupNorm(nn::GroupNormOptions(1, 128)),
                        nn::CELU(), nn::Conv2d(nn::Conv2dOptions(128, 128, 1)),
                        nn::GroupNorm(nn::GroupNormOptions(1, 128)), nn::CELU(),
                        nn::Conv2d(nn::Conv2dOptions(128, out, 1)));
}

torch::nn::Sequential glimpse_decoder(int64_t z_what_size, int64_t glimpse_size, int64_t out_channels,
                                      const std::string& what) {
  // Table 7 (object patch decoder, 1 x 1 to 64 x 64): kernel, channels, upscale.
  static const std::vector<ConvRow> table = {{3, 128, 2}, {3, 64, 2}, {3, 32, 2}, {3, 16, 2}, {3, 8, 2}, {3, 4, 2}};
  return subpixel_stack(z_what_size, fit_strides(table, glimpse_size, what), out_channels, "celu");
}

double linear_schedule(int64_t step, int64_t begin, int64_t finish, double start, double end) {
  if (step <= begin) return finish <= begin && step >= finish ? end : start;
  if (step >= finish) return end;
  return start + (end - start) * static_cast<double>(step - begin) / static_cast<double>(finish - begin);
}

torch::Tensor positive_scale(const torch::Tensor& raw) { return torch::softplus(raw) + 1e-4; }

}  // namespace ppl::programs
