// The registry of programs available to the `ppl` tool.
#include <ppl/programs/program.hpp>

#include <fmt/format.h>

#include <ppl/core/reflect.hpp>
#include <ppl/programs/air/air.hpp>
#include <ppl/programs/dood/dood.hpp>
#include <ppl/programs/gnm/convdraw.hpp>
#include <ppl/programs/gnm/gnm.hpp>
#include <ppl/programs/genesis/genesis.hpp>
#include <ppl/programs/gnm/vae.hpp>
#include <ppl/programs/space/space.hpp>

namespace ppl::programs {

const std::vector<ProgramInfo>& registry() {
  static const std::vector<ProgramInfo> programs = {
      {"air", "Attend-Infer-Repeat (Eslami et al. 2016): objects attended one at a time, z_pres / z_where / z_what",
       [] { return options_to_json(air::AirOptions::defaults()); },
       [](const nlohmann::json& j) -> std::unique_ptr<ImageProgram> {
         return std::make_unique<air::Air>(options_from_json<air::AirOptions>(j, air::AirOptions::defaults()));
       }},
      {"gnm", "Generative Neurosymbolic Machines (Jiang & Ahn 2020): StructDRAW global prior over a 4 x 4 map of z_pres / z_where / z_depth / z_what, objects summed (authors' MNIST renderer) or composited over a background (Algorithm 2)",
       [] { return options_to_json(gnm::GnmOptions::defaults()); },
       [](const nlohmann::json& j) -> std::unique_ptr<ImageProgram> {
         // A key an older run's config.json lacks keeps the behaviour it was trained with.
         return std::make_unique<gnm::Gnm>(options_from_json<gnm::GnmOptions>(j, gnm::GnmOptions::legacy()));
       }},
      {"convdraw", "ConvDRAW (Gregor et al. 2016), GNM's baseline: a DRAW core on the 4 x 4 image encoding, sub-pixel decoder; mlp_interaction gives ConvDRAW-MLP",
       [] { return options_to_json(gnm::ConvDrawOptions::defaults()); },
       [](const nlohmann::json& j) -> std::unique_ptr<ImageProgram> {
         return std::make_unique<gnm::ConvDraw>(
             options_from_json<gnm::ConvDrawOptions>(j, gnm::ConvDrawOptions::defaults()));
       }},
      {"vae", "VAE, GNM's baseline: Gaussian z, the image encoder and sub-pixel decoder of GNM's Tables 6 and 10",
       [] { return options_to_json(gnm::VaeOptions::defaults()); },
       [](const nlohmann::json& j) -> std::unique_ptr<ImageProgram> {
         return std::make_unique<gnm::Vae>(options_from_json<gnm::VaeOptions>(j, gnm::VaeOptions::defaults()));
       }},
      {"genesis", "GENESIS (Engelcke et al. 2020), GNM's baseline: K components, masks by stick-breaking from an autoregressive prior over z_m, a component VAE z_c each, pixel-wise mixture; GECO or the ELBO",
       [] { return options_to_json(genesis::GenesisOptions::defaults()); },
       [](const nlohmann::json& j) -> std::unique_ptr<ImageProgram> {
         return std::make_unique<genesis::Genesis>(
             options_from_json<genesis::GenesisOptions>(j, genesis::GenesisOptions::defaults()));
       }},
      {"space", "SPACE (Lin et al. 2020), GNM's baseline: an S x S grid of z_pres / z_where / z_depth / z_what with independent priors, rendered as GNM's, over a background of K GENESIS components",
       [] { return options_to_json(space::SpaceOptions::defaults()); },
       [](const nlohmann::json& j) -> std::unique_ptr<ImageProgram> {
         return std::make_unique<space::Space>(options_from_json<space::SpaceOptions>(j, space::SpaceOptions::defaults()));
       }},
      {"dood", "DooD (Liang et al. 2022): strokes drawn one at a time, on/off o / layout l / Bezier stroke s, rendered and composited",
       [] { return options_to_json(dood::DoodOptions::defaults()); },
       [](const nlohmann::json& j) -> std::unique_ptr<ImageProgram> {
         return std::make_unique<dood::Dood>(options_from_json<dood::DoodOptions>(j, dood::DoodOptions::defaults()));
       }},
  };
  return programs;
}

const ProgramInfo& find_program(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& p : registry()) {
    if (p.name == name) return p;
    names.push_back(p.name);
  }
  throw Error(fmt::format("unknown program \"{}\" (known: {}); `ppl programs` lists them", name, fmt::join(names, ", ")));
}

}  // namespace ppl::programs
