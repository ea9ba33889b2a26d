#pragma once
/// The ConvDRAW baseline of GNM (Gregor et al. 2016; seed 003, Appendix D.2,
/// Tables 9 and 11), and ConvDRAW-MLP (Table 2).
///
/// The DRAW core of StructDRAW (layers.hpp, Algorithm 1) runs on the 4 x 4
/// image encoding of Table 6: for l = 1..L
///   z_l ~ p(z_l | h_dec,l-1)  (model)  or  q(z_l | h_enc,l)  (guide)
///   h_dec,l = ConvLSTM_dec([dec(z_l), f_l-1]),  f_l = f_l-1 + CNN_out(h_dec,l)
/// and the sub-pixel decoder of Table 11 turns f_L into the mean image:
///   x ~ Normal(decode(f_L), likelihood_sd).
/// The interaction between cells is a 2-layer CNN (ConvDRAW, z_l a map of
/// z_size x 4 x 4) or, with `mlp_interaction`, StructDRAW's MLP over the
/// whole map (ConvDRAW-MLP, z_l a vector of z_size). Sites "z_g/<l>", "x".
#include <boost/hana.hpp>
#include <torch/torch.h>

#include <ppl/programs/gnm/layers.hpp>
#include <ppl/programs/program.hpp>

namespace ppl::programs::gnm {

/// Options of ConvDRAW; `defaults()` are the paper's for 64 x 64 MNIST-4 / MNIST-10.
struct ConvDrawOptions {
  BOOST_HANA_DEFINE_STRUCT(ConvDrawOptions,
                           (int, image_size),          // H = W, 4 times a power of two
                           (int, num_cells),           // side of the feature map (4)
                           (int, channels),            // ConvLSTM and feature channels (128)
                           (int, draw_steps),          // L
                           (int, draw_kernel),         // ConvLSTM kernel (Table 9: 3)
                           (int, z_size),              // per cell (CNN) or per step (MLP)
                           (bool, mlp_interaction),    // ConvDRAW-MLP
                           (int, interaction_hidden),  // MLP interaction width (512)
                           (double, likelihood_sd),
                           (double, learning_rate),
                           (int, batch_size));
  static ConvDrawOptions defaults();
};

/// The networks of ConvDRAW.
struct ConvDrawNetsImpl : torch::nn::Module {
  explicit ConvDrawNetsImpl(const ConvDrawOptions& o);
  torch::nn::Sequential encoder{nullptr}, decoder{nullptr};
  DrawCore core{nullptr};
};
TORCH_MODULE(ConvDrawNets);

/// ConvDRAW as an ImageProgram ("convdraw").
class ConvDraw : public ImageProgram {
 public:
  explicit ConvDraw(ConvDrawOptions options = ConvDrawOptions::defaults());
  std::string name() const override { return "convdraw"; }
  nlohmann::json options() const override;
  int64_t image_size() const override { return options_.image_size; }
  torch::Tensor model(const torch::Tensor& x) override;
  torch::Tensor guide(const torch::Tensor& x) override;
  torch::Tensor sample(int64_t n) override;
  /// The mean image decoded from f_l after each step l, [L, B, 1, H, W].
  torch::Tensor step_canvases(const Trace& model_trace) override;
  std::vector<ParamGroupSpec> param_groups() const override { return {{"", options_.learning_rate}}; }
  int64_t batch_size() const override { return options_.batch_size; }
  void to(const torch::Device& device) override { nets_->to(device); }
  ConvDrawNets nets() const { return nets_; }

 private:
  DrawResult prior(int64_t n, const torch::TensorOptions& opts);
  ConvDrawOptions options_;
  ConvDrawNets nets_;
};

}  // namespace ppl::programs::gnm
