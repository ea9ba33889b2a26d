// SPACE: the sites of model and guide, the structure-map renderer it shares
// with GNM, the foreground / background likelihood, one training step, the
// schedules, its boxes and its options.
#include <cmath>

#include <catch2/catch.hpp>

#include <ppl/inference.hpp>
#include <ppl/programs/gnm/gnm.hpp>
#include <ppl/programs/program.hpp>
#include <ppl/programs/space/space.hpp>
#include <ppl/programs/structure_map.hpp>
#include <ppl/runtime/stn.hpp>

#include "program_checks.hpp"

namespace space = ppl::programs::space;

namespace {
/// SPACE on 16 x 16 images, a 4 x 4 grid, 8 x 8 glimpses, two background components.
space::SpaceOptions small_space() {
  auto o = space::SpaceOptions::defaults();
  o.image_size = 16;
  o.channels = 16;
  o.z_what_size = 4;
  o.glimpse_size = 8;
  o.bg_components = 2;
  o.z_bg_mask_size = 4;
  o.z_bg_comp_size = 3;
  o.bg_encoder_channels = 8;
  o.bg_lstm_hidden = 16;
  o.bg_decoder_channels = 8;
  o.bg_decoder_layers = 1;
  return o;
}
}  // namespace

TEST_CASE("SPACE model and guide visit the same sites with the documented shapes", "[space]") {
  ppl::param_store().clear();
  torch::manual_seed(1);
  space::Space program(small_space());
  auto x = torch::rand({2, 1, 16, 16});
  auto [q, p] = ppl::test::check_same_sites(program, x);
  CHECK(q.site("z_pres").value.sizes() == c10::IntArrayRef({2, 16}));
  CHECK(q.site("z_where").value.sizes() == c10::IntArrayRef({2, 16, 4}));
  CHECK(q.site("z_depth").value.sizes() == c10::IntArrayRef({2, 16, 1}));
  CHECK(q.site("z_what").value.sizes() == c10::IntArrayRef({2, 16, 4}));
  CHECK(q.site(ppl::addr("z_bg_m", 0)).value.sizes() == c10::IntArrayRef({2, 4}));
  CHECK(q.site(ppl::addr("z_bg_m", 1)).value.sizes() == c10::IntArrayRef({2, 4}));
  CHECK(q.site("z_bg_c").value.sizes() == c10::IntArrayRef({2, 2, 3}));
  CHECK(p.site("x").log_prob().sizes() == c10::IntArrayRef({2}));
  auto mean = p.result<torch::Tensor>();
  CHECK(mean.sizes() == x.sizes());
  CHECK(program.sample(3).sizes() == c10::IntArrayRef({3, 1, 16, 16}));
  auto r = program.reconstruct(x);
  CHECK(((r >= 0).logical_and(r <= 1)).all().item<bool>());
}

TEST_CASE("SPACE's likelihood mixes the foreground (weight alpha) with the background components", "[space]") {
  ppl::param_store().clear();
  torch::manual_seed(2);
  auto o = small_space();
  space::Space program(o);
  auto x = torch::rand({2, 1, 16, 16}, torch::kFloat);
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  auto q = ppl::trace(guide, x);
  auto p = ppl::trace(ppl::handlers::replay(model, q), x);
  space::SpaceLatents z{q.site("z_pres").value, q.site("z_where").value, q.site("z_depth").value,
                        q.site("z_what").value};
  auto fg = program.render_foreground(z);
  // The background's masks and means, decoded from the replayed z_bg (the model's networks).
  auto bg = ppl::handlers::block(ppl::handlers::replay(
      [&] {
        auto data = ppl::plate("data", 2);
        return ppl::programs::mixture_prior(program.nets()->bg, {"z_bg_m", "z_bg_c"}, 2, x.options());
      },
      q))();
  auto normal = [](const torch::Tensor& v, const torch::Tensor& mu, double sd) {
    return torch::exp(-0.5 * ((v - mu) / sd).pow(2)) / (sd * std::sqrt(2 * M_PI));
  };
  auto alpha = fg.alpha.clamp(1e-5, 1 - 1e-5);
  auto background = (bg.log_masks.exp() * normal(x, bg.means, o.bg_sd)).sum(1, true);
  auto expected = torch::log(alpha * normal(x, fg.colour, o.fg_sd) + (1 - alpha) * background).sum({1, 2, 3});
  CHECK(torch::allclose(p.site("x").log_prob(), expected, 1e-4, 1e-3));
}

TEST_CASE("GNM and SPACE render a structure map through the same compositing", "[space]") {
  torch::manual_seed(3);
  const int64_t b = 2, n = 4, size = 16;
  auto patches = torch::rand({b * n, 2, 8, 8});
  auto z_pres = torch::tensor({{1.0, 0.0, 1.0, 0.5}, {0.0, 0.0, 0.0, 0.0}});
  auto z_where = torch::randn({b, n, 4});
  auto z_depth = torch::randn({b, n, 1});
  auto fg = ppl::programs::composite_objects(patches, z_pres, z_where, z_depth, 2, size);
  CHECK(fg.colour.sizes() == c10::IntArrayRef({b, 1, size, size}));
  CHECK((fg.alpha <= 1).all().item<bool>());
  CHECK((fg.alpha >= 0).all().item<bool>());
  // No object present: no foreground.
  CHECK(fg.alpha[1].abs().max().item<double>() == 0.0);
  // One object alone: alpha is its placed mask and the colour its placed appearance where the mask is.
  auto one = torch::tensor({{0.0, 1.0, 0.0, 0.0}});
  auto single = ppl::programs::composite_objects(patches.narrow(0, 0, n), one, z_where.narrow(0, 0, 1),
                                                 z_depth.narrow(0, 0, 1), 2, size);
  auto placed = ppl::runtime::stn_place(patches.narrow(0, 1, 1),
                                        ppl::programs::where_to_runtime(z_where.narrow(0, 0, 1), 2).narrow(0, 1, 1),
                                        size, size);
  CHECK(torch::allclose(single.alpha, placed.narrow(1, 1, 1).clamp_max(1.0), 1e-5, 1e-6));
  auto inside = placed.narrow(1, 1, 1) > 1e-3;
  CHECK(torch::allclose(single.colour.masked_select(inside), placed.narrow(1, 0, 1).masked_select(inside), 1e-4, 1e-5));
  // GNM's overlap composition is this foreground over its background.
  ppl::param_store().clear();
  auto g = ppl::programs::gnm::GnmOptions::defaults();
  g.image_size = 16;
  g.channels = 16;
  g.draw_steps = 2;
  g.z_global_size = 4;
  g.interaction_hidden = 32;
  g.z_what_size = 4;
  g.z_bg_size = 3;
  g.glimpse_size = 8;
  g.composition = "overlap";
  ppl::programs::gnm::Gnm gnm(g);
  gnm.set_step(1000000);  // past the mask curriculum
  ppl::programs::gnm::StructureLatents s;
  s.z_pres = torch::rand({1, 16});
  s.z_where = torch::randn({1, 16, 4});
  s.z_depth = torch::randn({1, 16, 1});
  s.z_what = torch::randn({1, 16, 4});
  s.z_b = torch::randn({1, 3});
  torch::NoGradGuard no_grad;
  auto image = gnm.render(s);
  auto gnm_patches = torch::sigmoid(gnm.nets()->glimpse_dec->forward(s.z_what.reshape({16, -1, 1, 1})));
  auto gnm_fg = ppl::programs::composite_objects(gnm_patches, s.z_pres, s.z_where, s.z_depth, 4, 16, gnm.box_form());
  auto gnm_bg = torch::sigmoid(gnm.nets()->bg_dec->forward(s.z_b.view({1, -1, 1, 1})));
  CHECK(torch::allclose(image, gnm_fg.alpha * gnm_fg.colour + (1 - gnm_fg.alpha) * gnm_bg, 1e-5, 1e-6));
}

TEST_CASE("one SPACE step gives a finite loss and moves the parameters", "[space][train]") {
  ppl::param_store().clear();
  torch::manual_seed(4);
  space::Space program(small_space());
  program.set_training(true);
  ppl::test::check_one_step(program, ppl::test::squares());
  // The background trains at its own rate.
  auto groups = program.param_groups();
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].prefix == "space.bg.");
  CHECK(groups[0].lr == small_space().bg_learning_rate);
  bool found = false;
  for (const auto& name : ppl::param_store().names()) found = found || name.rfind("space.bg.", 0) == 0;
  CHECK(found);
}

TEST_CASE("SPACE anneals tau and rho linearly", "[space]") {
  auto o = small_space();
  space::Space program(o);
  CHECK(program.temperature() == Approx(2.5));
  CHECK(program.z_pres_prior() == Approx(0.1));
  program.set_step(o.temperature_anneal_steps / 2);
  CHECK(program.temperature() == Approx(1.5));
  program.set_step(o.z_pres_prior_anneal_steps);
  CHECK(program.z_pres_prior() == Approx(0.01));
  program.set_step(10 * o.temperature_anneal_steps);
  CHECK(program.temperature() == Approx(0.5));
}

TEST_CASE("SPACE infers a box per cell from q(z_where), scored by q(z_pres), as GNM's boxes", "[space]") {
  ppl::param_store().clear();
  torch::manual_seed(5);
  space::Space program(small_space());
  REQUIRE(program.infers_objects());
  auto x = ppl::test::squares();
  auto objects = program.infer_objects(x);
  REQUIRE(objects.boxes.size() == 4);
  CHECK(objects.what.sizes() == c10::IntArrayRef({4, 16, 4}));
  // The same boxes as the guide's z_where with zero spread would place.
  auto q = ppl::trace([&](const torch::Tensor& img) { return program.guide(img); }, x);
  const auto& where = q.site("z_where");
  auto loc = where.dist->mean();
  auto boxes = ppl::programs::structure_boxes(loc, torch::zeros({4, 16}), 4, 16);
  for (size_t i = 0; i < 4; ++i) {
    REQUIRE(objects.boxes[i].size() == 16);
    for (size_t k = 0; k < 16; ++k) {
      CHECK(objects.boxes[i][k].x == Approx(boxes[i][k].x).margin(1e-4));
      CHECK(objects.boxes[i][k].width == Approx(boxes[i][k].width).margin(1e-4));
      CHECK(objects.boxes[i][k].score >= 0);
      CHECK(objects.boxes[i][k].score <= 1);
    }
  }
  auto eval = program.evaluate(x, torch::tensor({1, 1, 1, 1}));
  CHECK(eval.contains("count_accuracy"));
  CHECK(eval.at("mean_inferred_count").get<double>() <= 16);
  CHECK_THROWS_AS(program.infer_objects(torch::zeros({1, 1, 8, 8})), std::invalid_argument);
}

TEST_CASE("SPACE options round-trip through JSON and bad ones name the option", "[space]") {
  ppl::param_store().clear();
  const auto& info = ppl::programs::find_program("space");
  space::Space program(small_space());
  auto again = info.make(program.options());
  CHECK(again->options() == program.options());
  CHECK(info.default_options() != program.options());
  CHECK(info.default_options().at("num_cells") == 4);
  CHECK_THROWS_WITH(info.make({{"num_cellz", 4}}), Catch::Contains("unknown key \"num_cellz\""));
  CHECK_THROWS_WITH(info.make({{"glimpse_size", 12}}), Catch::Contains("glimpse_size is 12"));
  CHECK_THROWS_WITH(info.make({{"image_size", 60}}), Catch::Contains("image_size is 60"));
  CHECK_THROWS_WITH(info.make({{"z_pres_prior", 1.5}}), Catch::Contains("z_pres_prior is 1.5"));
  CHECK_THROWS_WITH(info.make({{"fg_sd", -1.0}}), Catch::Contains("fg_sd is -1"));
  CHECK_THROWS_WITH(info.make({{"bg_components", 0}}), Catch::Contains("bg_components is 0"));
}
