#pragma once
/// The VAE baseline of GNM (seed 003, Appendix D.2, Table 10).
///
///   z ~ Normal(0, I) of z_size,  x ~ Normal(decode(z), likelihood_sd)
/// decode: the sub-pixel decoder of Table 10 from a 1 x 1 map of z_size
/// features to the image (sigmoid output). Guide: the image encoder of
/// Table 6 to a 4 x 4 map, then a 2-layer CNN (filters [128, 2 z_size],
/// kernels 3 and 4) to the loc and scale of q(z | x).
#include <boost/hana.hpp>
#include <torch/torch.h>

#include <ppl/programs/gnm/layers.hpp>
#include <ppl/programs/program.hpp>

namespace ppl::programs::gnm {

/// Options of the VAE baseline; `defaults()` are the paper's for 64 x 64 MNIST-4 / MNIST-10.
struct VaeOptions {
  BOOST_HANA_DEFINE_STRUCT(VaeOptions,
                           (int, image_size),     // H = W, 4 times a power of two
                           (int, channels),       // image-encoder features (Table 6: 128)
                           (int, z_size),         // latent size (Table 10's input: 128)
                           (double, likelihood_sd),
                           (double, learning_rate),
                           (int, batch_size));
  static VaeOptions defaults();
};

/// The networks of the VAE.
struct VaeNetsImpl : torch::nn::Module {
  explicit VaeNetsImpl(const VaeOptions& o);
  torch::nn::Sequential encoder{nullptr}, head{nullptr}, decoder{nullptr};
};
TORCH_MODULE(VaeNets);

/// The VAE baseline as an ImageProgram ("vae"). Sites: "z", observed "x".
class Vae : public ImageProgram {
 public:
  explicit Vae(VaeOptions options = VaeOptions::defaults());
  std::string name() const override { return "vae"; }
  nlohmann::json options() const override;
  int64_t image_size() const override { return options_.image_size; }
  torch::Tensor model(const torch::Tensor& x) override;
  torch::Tensor guide(const torch::Tensor& x) override;
  torch::Tensor sample(int64_t n) override;
  std::vector<ParamGroupSpec> param_groups() const override { return {{"", options_.learning_rate}}; }
  int64_t batch_size() const override { return options_.batch_size; }
  void to(const torch::Device& device) override { nets_->to(device); }
  VaeNets nets() const { return nets_; }

 private:
  torch::Tensor prior(int64_t n, const torch::TensorOptions& opts);
  VaeOptions options_;
  VaeNets nets_;
};

}  // namespace ppl::programs::gnm
