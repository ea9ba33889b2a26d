// GNM, ConvDRAW and the VAE baseline: layers against references, the sites
// of model and guide, rendering (Algorithm 2), schedules, options, training.
#include <iostream>

#include <catch2/catch.hpp>

#include <ppl/inference.hpp>
#include <ppl/programs/gnm/convdraw.hpp>
#include <ppl/programs/gnm/gnm.hpp>
#include <ppl/programs/gnm/layers.hpp>
#include <ppl/programs/gnm/vae.hpp>
#include <ppl/programs/program.hpp>
#include <ppl/runtime/stn.hpp>

#include "program_checks.hpp"
#include "small_gnm.hpp"

namespace gnm = ppl::programs::gnm;

namespace {
using ppl::test::small_gnm;

/// A 16-cell structure map with no object present: every z_pres, z_where
/// and z_depth 0, z_what drawn from N(0, I).
gnm::StructureLatents no_objects(const gnm::GnmOptions& o) {
  const int64_t n = 16;
  gnm::StructureLatents z;
  z.z_pres = torch::zeros({1, n});
  z.z_where = torch::zeros({1, n, 4});
  z.z_depth = torch::zeros({1, n, 1});
  z.z_what = torch::randn({1, n, o.z_what_size});
  return z;
}

/// The glimpse decoder's patch of cell i, [1, C, G, G], as render sees it.
torch::Tensor decoded_patch(gnm::Gnm& program, const gnm::StructureLatents& z, int64_t i) {
  return torch::sigmoid(program.nets()->glimpse_dec->forward(z.z_what.select(1, i).view({1, -1, 1, 1})));
}

gnm::ConvDrawOptions small_convdraw() {
  auto o = gnm::ConvDrawOptions::defaults();
  o.image_size = 16;
  o.channels = 16;
  o.draw_steps = 3;
  o.z_size = 4;
  o.interaction_hidden = 32;
  return o;
}

gnm::VaeOptions small_vae() {
  auto o = gnm::VaeOptions::defaults();
  o.image_size = 16;
  o.channels = 16;
  o.z_size = 8;
  return o;
}

using ppl::test::check_same_sites;
}  // namespace

TEST_CASE("a ConvLSTM cell with 1x1 kernels is an LSTMCell at every pixel", "[gnm]") {
  torch::manual_seed(1);
  gnm::ConvLSTMCell conv(3, 5, 1);
  torch::nn::LSTMCell cell(3, 5);
  {
    torch::NoGradGuard no_grad;
    auto w = conv->conv->weight.view({20, 8});
    cell->weight_ih.copy_(w.narrow(1, 0, 3));
    cell->weight_hh.copy_(w.narrow(1, 3, 5));
    cell->bias_ih.copy_(conv->conv->bias);
    cell->bias_hh.zero_();
  }
  auto x = torch::randn({2, 3, 4, 6}), h = torch::randn({2, 5, 4, 6}), c = torch::randn({2, 5, 4, 6});
  auto [h1, c1] = conv->forward(x, h, c);
  auto per_pixel = [](const torch::Tensor& t) { return t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)}); };
  auto [rh, rc] = cell->forward(per_pixel(x), std::make_tuple(per_pixel(h), per_pixel(c)));
  CHECK(torch::allclose(per_pixel(h1), rh, 1e-5, 1e-6));
  CHECK(torch::allclose(per_pixel(c1), rc, 1e-5, 1e-6));
  // A 3x3 kernel keeps the size and mixes neighbours: a change at one pixel reaches the next one.
  gnm::ConvLSTMCell wide(3, 5, 3);
  auto [a, unused_a] = wide->forward(x, h, c);
  auto x2 = x.clone();
  x2.index_put_({0, 0, 1, 1}, 10.0);
  auto [b, unused_b] = wide->forward(x2, h, c);
  CHECK(a.sizes() == h.sizes());
  CHECK_FALSE(torch::allclose(a.index({0, torch::indexing::Slice(), 1, 2}), b.index({0, torch::indexing::Slice(), 1, 2})));
  CHECK(torch::allclose(a.index({0, torch::indexing::Slice(), 3, 5}), b.index({0, torch::indexing::Slice(), 3, 5})));
}

TEST_CASE("tables fit smaller images by dropping their last factors of 2", "[gnm]") {
  std::vector<gnm::ConvRow> rows = {{1, 128, 4}, {1, 64, 2}, {1, 32, 4}, {1, 16, 2}, {1, 8, 2}, {3, 4, 1}};
  auto fit = gnm::fit_strides(rows, 64, "t");
  std::vector<int64_t> strides;
  for (const auto& r : fit) strides.push_back(r.stride);
  CHECK(strides == std::vector<int64_t>{4, 2, 4, 2, 1, 1});
  CHECK_THROWS_WITH(gnm::fit_strides(rows, 256, "t"), Catch::Contains("cannot scale by 256"));
  CHECK_THROWS_WITH(gnm::fit_strides(rows, 2, "t"), Catch::Contains("cannot scale by 2"));
  // The decoders built from the tables produce the requested sizes.
  auto dec = gnm::subpixel_stack(10, gnm::fit_strides(rows, 64, "t"), 1, "celu");
  CHECK(dec->forward(torch::randn({2, 10, 1, 1})).sizes() == c10::IntArrayRef({2, 1, 64, 64}));
  auto enc = gnm::image_encoder(64, 4, 128);
  CHECK(enc->forward(torch::rand({2, 1, 64, 64})).sizes() == c10::IntArrayRef({2, 128, 4, 4}));
  CHECK_THROWS_WITH(gnm::image_encoder(60, 4, 128), Catch::Contains("image_size 60"));
}

TEST_CASE("GNM z_where places each cell's box at its centre plus a bounded shift", "[gnm]") {
  auto z = torch::zeros({1, 16, 4});
  z.index_put_({0, 6, 2}, 100.0);  // cell (1, 2), shift x saturates at one cell width
  auto a = gnm::where_to_runtime(z, 4);
  REQUIRE(a.sizes() == c10::IntArrayRef({16, 4}));
  // cell 0 = (row 0, column 0): centre (-0.75, -0.75), side sigmoid(0) = 0.5.
  CHECK(a[0][0].item<double>() == Approx(0.5));
  CHECK(a[0][1].item<double>() == Approx(0.5));
  CHECK(a[0][2].item<double>() == Approx(-0.75));
  CHECK(a[0][3].item<double>() == Approx(-0.75));
  // cell 6 = (row 1, column 2): centre (0.25, -0.25), shifted by 2 / 4 in x.
  CHECK(a[6][2].item<double>() == Approx(0.25 + 0.5));
  CHECK(a[6][3].item<double>() == Approx(-0.25));
}

TEST_CASE("GNM z_where as scale and log aspect ratio: the box's area and shape", "[gnm]") {
  auto z = torch::zeros({1, 16, 4});
  z.index_put_({0, 0, 1}, std::log(4.0));   // cell 0: side sigmoid(0) = 0.5, four times as high as wide
  z.index_put_({0, 1, 0}, std::log(0.25 / 0.75));  // cell 1: side 0.25, square
  z.index_put_({0, 2, 0}, 2.0);
  z.index_put_({0, 2, 1}, -1.3);
  auto a = gnm::where_to_runtime(z, 4, gnm::BoxForm::scale_aspect);
  // width s / sqrt(r), height s sqrt(r): 0.25 x 1.0, area 0.5^2.
  CHECK(a[0][0].item<double>() == Approx(0.25));
  CHECK(a[0][1].item<double>() == Approx(1.0));
  CHECK(a[1][0].item<double>() == Approx(0.25));
  CHECK(a[1][1].item<double>() == Approx(0.25));
  const double s = 1.0 / (1.0 + std::exp(-2.0));
  CHECK(a[2][0].item<double>() * a[2][1].item<double>() == Approx(s * s));
  CHECK(a[2][1].item<double>() / a[2][0].item<double>() == Approx(std::exp(-1.3)));
  // The centres do not depend on the form; a log aspect of 0 is the square of the scales form.
  auto b = gnm::where_to_runtime(z, 4, gnm::BoxForm::scales);
  CHECK(torch::equal(a.select(1, 2), b.select(1, 2)));
  CHECK(torch::equal(a.select(1, 3), b.select(1, 3)));
  CHECK(a[1][0].item<double>() == Approx(b[1][0].item<double>()));
  // Boxes in pixels follow the same geometry.
  auto boxes = ppl::programs::structure_boxes(z, torch::ones({1, 16}), 4, 64, gnm::BoxForm::scale_aspect);
  CHECK(boxes[0][0].width == Approx(16.0));
  CHECK(boxes[0][0].height == Approx(64.0));
}

TEST_CASE("GNM schedules: beta_b 50 -> 1, beta_g 0 -> 1, the mask curriculum, tau and rho", "[gnm]") {
  CHECK(gnm::linear_schedule(0, 0, 100, 50, 1) == Approx(50));
  CHECK(gnm::linear_schedule(50, 0, 100, 50, 1) == Approx(25.5));
  CHECK(gnm::linear_schedule(500, 0, 100, 50, 1) == Approx(1));
  CHECK(gnm::linear_schedule(5, 10, 20, 1.0, 0.5) == Approx(1.0));
  CHECK(gnm::linear_schedule(15, 10, 20, 1.0, 0.5) == Approx(0.75));
  CHECK(gnm::linear_schedule(0, 0, 0, 1.0, 0.5) == Approx(0.5));
  ppl::param_store().clear();
  auto o = small_gnm();
  gnm::Gnm program(o);
  CHECK(program.beta_b() == Approx(50));
  CHECK(program.beta_g() == Approx(0));
  CHECK(program.mask_curriculum());
  CHECK(program.temperature() == Approx(1.0));
  CHECK(program.z_pres_prior() == Approx(0.1));
  program.set_step(25000);
  CHECK(program.beta_b() == Approx(25.5));
  CHECK(program.beta_g() == Approx(0.25));
  CHECK_FALSE(program.mask_curriculum());
  CHECK(program.temperature() == Approx(0.5));
  CHECK(program.z_pres_prior() == Approx(1e-3));
  program.set_step(200000);
  CHECK(program.beta_b() == Approx(1));
  CHECK(program.beta_g() == Approx(1));
}

TEST_CASE("GNM model and guide visit the same latent sites with the documented shapes", "[gnm]") {
  ppl::param_store().clear();
  torch::manual_seed(2);
  auto o = small_gnm();
  gnm::Gnm program(o);
  program.set_step(50000);  // beta_g = 0.5
  program.set_training(true);
  auto x = torch::rand({3, 1, 16, 16});
  auto [q, p] = check_same_sites(program, x);
  for (int l = 0; l < o.draw_steps; ++l) {
    const auto name = ppl::addr("z_g", l);
    REQUIRE(q.contains(name));
    CHECK(q.site(name).value.sizes() == c10::IntArrayRef({3, o.z_global_size}));
    CHECK(q.site(name).scale == Approx(0.5));
    CHECK(p.site(name).scale == Approx(0.5));
  }
  CHECK_FALSE(q.contains(ppl::addr("z_g", o.draw_steps)));
  CHECK_FALSE(q.contains("z_g"));
  CHECK(q.contains("gnm.draw.enc.conv.weight"));  // StructDRAW's parameters are registered
  CHECK(q.site("z_pres").value.sizes() == c10::IntArrayRef({3, 16}));
  CHECK(q.site("z_where").value.sizes() == c10::IntArrayRef({3, 16, 4}));
  CHECK(q.site("z_depth").value.sizes() == c10::IntArrayRef({3, 16, 1}));
  CHECK(q.site("z_what").value.sizes() == c10::IntArrayRef({3, 16, o.z_what_size}));
  // The default (additive, the authors' MNIST renderer) has no background.
  CHECK_FALSE(q.contains("z_b"));
  CHECK_FALSE(p.contains("z_b"));
  // What StructDRAW has drawn after each step, rendered.
  auto steps = program.step_canvases(p);
  CHECK(steps.sizes() == c10::IntArrayRef({o.draw_steps, 3, 1, 16, 16}));
  CHECK(((steps >= 0).logical_and(steps <= 1)).all().item<bool>());
  // The relaxed z_pres lies strictly inside (0, 1).
  const auto& pres = q.site("z_pres").value;
  CHECK(((pres > 0).logical_and(pres < 1)).all().item<bool>());
  // The auxiliary KL terms: one observed site, -KL <= 0 per image, only while gradients are recorded.
  REQUIRE(p.contains("aux"));
  CHECK(p.site("aux").observed);
  CHECK(p.site("aux").log_prob().sizes() == c10::IntArrayRef({3}));
  CHECK((p.site("aux").log_prob() <= 0).all().item<bool>());
  {
    torch::NoGradGuard no_grad;
    auto p2 = ppl::trace(ppl::handlers::replay([&](const torch::Tensor& img) { return program.model(img); }, q), x);
    CHECK_FALSE(p2.contains("aux"));
  }
}

TEST_CASE("GNM's annealing weights and auxiliary KLs apply only while training", "[gnm]") {
  ppl::param_store().clear();
  torch::manual_seed(3);
  auto o = small_gnm();
  o.z_what_kl_warmup_steps = 100;
  o.presence_kl = "relaxed";  // z_pres weighted 1 in training too, so that every weight divides out
  gnm::Gnm program(o);
  program.set_step(50);  // beta_g = 5e-4, z_what weight 0.5: both far from 1
  const auto x = torch::rand({3, 1, 16, 16});
  auto log_weight = [](const ppl::Trace& p, const ppl::Trace& q) {
    return (p.log_prob_sum() - q.log_prob_sum()).item<double>();
  };
  program.set_training(true);
  auto [q1, p1] = check_same_sites(program, x);
  REQUIRE(p1.contains("aux"));
  CHECK(q1.site("z_g/0").scale == Approx(5e-4));
  CHECK(q1.site("z_what").scale == Approx(0.5));
  // Off (as `ppl ll` opens a run): the same draws carry weight 1 and there is no auxiliary site,
  // even with gradients on, so the importance weight is log p(x, z) - log q(z).
  program.set_training(false);
  auto [q0, p0] = check_same_sites(program, x);
  CHECK_FALSE(p0.contains("aux"));
  double unweighted = 0;
  for (const auto& s : p1) {
    if (s.name == "aux" || !s.is_random()) continue;
    unweighted += (s.log_prob().sum() / s.scale).item<double>();
    CHECK(p0.site(s.name).scale == 1.0);
  }
  for (const auto& s : q1) {
    if (s.kind != ppl::SiteKind::sample) continue;
    unweighted -= (s.log_prob().sum() / s.scale).item<double>();
    CHECK(q0.site(s.name).scale == 1.0);
  }
  CHECK(log_weight(p0, q0) == Approx(unweighted).epsilon(1e-5));
  CHECK(program.beta_g() == Approx(5e-4));  // the schedule itself is unchanged
  CHECK(program.global_kl_weight() == 1.0);
  CHECK(program.z_what_kl_weight() == 1.0);
}

TEST_CASE("GNM beta_g is held until beta_g_warmup_begin, then ramps linearly", "[gnm]") {
  ppl::param_store().clear();
  auto o = small_gnm();
  CHECK(gnm::GnmOptions::defaults().beta_g_warmup_begin == 0);
  CHECK(gnm::GnmOptions::legacy().beta_g_warmup_begin == 0);  // configs written before it: no hold
  o.beta_g_start = 0.0;
  o.beta_g_end = 1.0;
  o.beta_g_warmup_begin = 300;
  o.beta_g_warmup_steps = 1000;
  gnm::Gnm program(o);
  // (step, beta_g): flat at 0 through step 300, then (step - 300) / 1000, then 1.
  for (auto [step, want] : std::vector<std::pair<int64_t, double>>{
           {0, 0.0}, {300, 0.0}, {550, 0.25}, {1300, 1.0}, {5000, 1.0}}) {
    program.set_step(step);
    CHECK(program.beta_g() == Approx(want).margin(1e-12));
  }
  auto j = program.options();
  CHECK(j.at("beta_g_warmup_begin") == 300);
  ppl::param_store().clear();
  o.beta_g_warmup_begin = -1;
  CHECK_THROWS_WITH(gnm::Gnm(o), Catch::Contains("beta_g_warmup_begin") && Catch::Contains("-1"));
}

TEST_CASE("GNM z_what KL warm-up weights z_what in model and guide and in the auxiliary KL", "[gnm]") {
  ppl::param_store().clear();
  torch::manual_seed(4);
  auto o = small_gnm();
  CHECK(o.z_what_kl_warmup_steps == 0);  // off by default: weight 1 from the first step
  CHECK(gnm::Gnm(o).z_what_kl_weight() == 1.0);
  ppl::param_store().clear();
  o.z_what_kl_warmup_steps = 100;
  o.z_pres_prior_anneal_steps = 0;  // the auxiliary KL's other terms stay fixed
  gnm::Gnm program(o);
  program.set_training(true);
  const auto x = torch::rand({3, 1, 16, 16});
  auto aux_at = [&](int64_t step) {
    program.set_step(step);
    auto [q, p] = check_same_sites(program, x);
    CHECK(q.site("z_what").scale == Approx(program.z_what_kl_weight()));
    CHECK(p.site("z_what").scale == Approx(program.z_what_kl_weight()));
    return p.site("aux").log_prob().detach().clone();
  };
  const auto a0 = aux_at(0), a25 = aux_at(25), a100 = aux_at(100);
  CHECK(program.z_what_kl_weight() == 1.0);
  // aux = -(the other KLs) - w KL(q(z_what | x) || N(0, I)): linear in w.
  const auto kl_what = a0 - a100;
  CHECK((kl_what > 0).all().item<bool>());
  CHECK(torch::allclose(a25 - a100, 0.75 * kl_what, 1e-4, 1e-4));
}

TEST_CASE("GNM ablations: Gaussian global prior has one z_g site, NoMLP draws z_g maps", "[gnm]") {
  ppl::param_store().clear();
  auto x = torch::rand({2, 1, 16, 16});
  auto o = small_gnm();
  o.global_prior = "gaussian";
  gnm::Gnm gaussian(o);
  auto [q, p] = check_same_sites(gaussian, x);
  REQUIRE(q.contains("z_g"));
  CHECK(q.site("z_g").value.sizes() == c10::IntArrayRef({2, o.draw_steps * o.z_global_size}));
  for (const auto& s : q) CHECK(s.name.rfind("z_g/", 0) != 0);
  for (const auto& s : q) CHECK(s.name.find(".draw.") == std::string::npos);
  CHECK_FALSE(gaussian.step_canvases(p).defined());

  ppl::param_store().clear();
  auto n = small_gnm();
  n.mlp_interaction = false;
  n.draw_steps = 2;
  gnm::Gnm nomlp(n);
  auto [q2, p2] = check_same_sites(nomlp, x);
  CHECK(q2.site("z_g/1").value.sizes() == c10::IntArrayRef({2, n.z_global_size, 4, 4}));
  CHECK_FALSE(q2.contains("z_g/2"));
  CHECK_THROWS_WITH(gnm::Gnm([] {
                      auto bad = small_gnm();
                      bad.global_prior = "flat";
                      return bad;
                    }()),
                    Catch::Contains("global_prior is \"flat\""));
}

TEST_CASE("GNM with the overlap composition has a background site z_b", "[gnm]") {
  ppl::param_store().clear();
  torch::manual_seed(3);
  auto o = small_gnm();
  o.composition = "overlap";
  gnm::Gnm program(o);
  auto x = torch::rand({3, 1, 16, 16});
  auto [q, p] = check_same_sites(program, x);
  CHECK(q.site("z_b").value.sizes() == c10::IntArrayRef({3, o.z_bg_size}));
  CHECK(q.site("z_b").scale == 1.0);
  CHECK(p.contains("z_b"));
  auto steps = program.step_canvases(p);
  CHECK(steps.sizes() == c10::IntArrayRef({o.draw_steps, 3, 1, 16, 16}));
  auto bad = small_gnm();
  bad.composition = "alpha";
  CHECK_THROWS_WITH(gnm::Gnm(bad), Catch::Contains("composition is \"alpha\""));
}

TEST_CASE("GNM's additive composition sums the present objects on a black canvas", "[gnm]") {
  ppl::param_store().clear();
  torch::manual_seed(5);
  auto o = small_gnm();
  REQUIRE(o.composition == "additive");
  gnm::Gnm program(o);
  torch::NoGradGuard no_grad;
  auto z = no_objects(o);
  z.z_depth = torch::randn_like(z.z_depth);
  CHECK(program.render(z).abs().max().item<double>() == 0.0);
  // Objects in cells 5 (fully present) and 6 (0.4, shifted onto cell 5):
  // x = 1.0 o_5 + 0.4 o_6, each patch placed by the STN, depth ignored.
  z.z_pres.index_put_({0, 5}, 1.0);
  z.z_pres.index_put_({0, 6}, 0.4);
  z.z_where.index_put_({0, 6, 2}, -1e4);
  auto all = gnm::where_to_runtime(z.z_where, 4, program.box_form());
  auto expected = torch::zeros({1, 1, 16, 16});
  for (auto [i, pres] : {std::pair<int64_t, double>{5, 1.0}, {6, 0.4}}) {
    auto patch = decoded_patch(program, z, i);
    REQUIRE(patch.size(1) == 1);
    expected += pres * ppl::runtime::stn_place(patch, all.narrow(0, i, 1), 16, 16);
  }
  CHECK(torch::allclose(program.render(z), expected, 1e-4, 1e-5));
  z.z_depth.neg_();
  CHECK(torch::allclose(program.render(z), expected, 1e-4, 1e-5));
}

TEST_CASE("GNM renders as Algorithm 2: background alone, then one object over it", "[gnm]") {
  ppl::param_store().clear();
  torch::manual_seed(4);
  auto o = small_gnm();
  o.composition = "overlap";
  gnm::Gnm program(o);
  torch::NoGradGuard no_grad;
  auto z = no_objects(o);
  z.z_b = torch::randn({1, o.z_bg_size});
  auto background = torch::sigmoid(program.nets()->bg_dec->forward(z.z_b.view({1, -1, 1, 1})));
  CHECK(torch::allclose(program.render(z), background));

  // One object in cell 5 under the curriculum mask 0.9: x = M o + (1 - M) bg, M and o placed by the STN.
  z.z_pres.index_put_({0, 5}, 1.0);
  auto patch = decoded_patch(program, z, 5);
  auto where = gnm::where_to_runtime(z.z_where, 4, program.box_form()).narrow(0, 5, 1);
  auto o_placed = ppl::runtime::stn_place(patch.narrow(1, 0, 1), where, 16, 16);
  auto m_placed = ppl::runtime::stn_place(torch::full({1, 1, 8, 8}, 0.9), where, 16, 16);
  auto expected = m_placed * o_placed + (1 - m_placed) * background;
  CHECK(torch::allclose(program.render(z), expected, 1e-4, 1e-5));
  CHECK(m_placed.max().item<double>() == Approx(0.9));

  // Two objects on one place with learned masks: colour by depth-weighted
  // responsibilities, mask min(m5 + m6, 1), computed here object by object.
  program.set_step(o.mask_curriculum_steps);
  z.z_pres.index_put_({0, 6}, 1.0);
  z.z_where.index_put_({0, 6, 2}, -1e4);  // cell 6 shifted one cell left: onto cell 5
  z.z_what.select(1, 6).copy_(z.z_what.select(1, 5) + 3.0);
  z.z_depth.index_put_({0, 5, 0}, -1.0);
  z.z_depth.index_put_({0, 6, 0}, 2.0);
  auto all = gnm::where_to_runtime(z.z_where, 4, program.box_form());
  CHECK(all[6][2].item<double>() == Approx(all[5][2].item<double>()));
  std::vector<torch::Tensor> colour, mask, weight;
  for (int64_t i : {5, 6}) {
    auto p = decoded_patch(program, z, i);
    auto at = all.narrow(0, i, 1);
    colour.push_back(ppl::runtime::stn_place(p.narrow(1, 0, 1), at, 16, 16));
    mask.push_back(ppl::runtime::stn_place(p.narrow(1, 1, 1), at, 16, 16));
    weight.push_back(mask.back() * torch::sigmoid(-z.z_depth[0][i][0]));
  }
  auto c = (weight[0] * colour[0] + weight[1] * colour[1]) / (weight[0] + weight[1] + 1e-8);
  auto m = (mask[0] + mask[1]).clamp_max(1.0);
  CHECK(torch::allclose(program.render(z), m * c + (1 - m) * background, 1e-4, 1e-5));
}

TEST_CASE("GNM, ConvDRAW and VAE: samples, reconstructions, options through JSON", "[gnm]") {
  ppl::param_store().clear();
  auto x = torch::rand({2, 1, 16, 16});
  std::vector<std::unique_ptr<ppl::programs::ImageProgram>> programs;
  programs.push_back(std::make_unique<gnm::Gnm>(small_gnm()));
  programs.push_back(std::make_unique<gnm::ConvDraw>(small_convdraw()));
  programs.push_back(std::make_unique<gnm::Vae>(small_vae()));
  for (auto& program : programs) {
    INFO(program->name());
    CHECK(program->sample(3).sizes() == c10::IntArrayRef({3, 1, 16, 16}));
    auto r = program->reconstruct(x);
    CHECK(r.sizes() == x.sizes());
    CHECK(((r >= 0).logical_and(r <= 1)).all().item<bool>());
    const auto& info = ppl::programs::find_program(program->name());
    auto again = info.make(program->options());
    CHECK(again->options() == program->options());
    CHECK(info.default_options() != program->options());
    CHECK_THROWS_WITH(info.make(nlohmann::json{{"draw_stepz", 2}}), Catch::Contains("unknown key \"draw_stepz\""));
  }
  auto defaults = ppl::programs::find_program("gnm").default_options();
  CHECK(defaults.at("image_size") == 64);
  CHECK(defaults.at("draw_steps") == 4);
  CHECK(defaults.at("channels") == 128);
  CHECK(defaults.at("beta_b_start") == 50.0);
  CHECK(defaults.at("mask_curriculum_value") == 0.9);
  auto eval = programs[0]->evaluate(x, torch::tensor({1, 2}));
  CHECK(eval.contains("count_accuracy"));
  CHECK(eval.at("mean_inferred_count").get<double>() >= 0);
  CHECK(eval.at("mean_inferred_count").get<double>() <= 16);
}

TEST_CASE("ConvDRAW and ConvDRAW-MLP visit the same sites, one z_g per step", "[gnm]") {
  ppl::param_store().clear();
  auto x = torch::rand({2, 1, 16, 16});
  auto o = small_convdraw();
  gnm::ConvDraw conv(o);
  auto [q, p] = check_same_sites(conv, x);
  CHECK(q.site("z_g/2").value.sizes() == c10::IntArrayRef({2, o.z_size, 4, 4}));
  CHECK_FALSE(q.contains("z_g/3"));
  auto steps = conv.step_canvases(p);
  CHECK(steps.sizes() == c10::IntArrayRef({3, 2, 1, 16, 16}));
  CHECK(torch::allclose(steps[2], p.result<torch::Tensor>(), 1e-5, 1e-6));
  ppl::param_store().clear();
  o.mlp_interaction = true;
  gnm::ConvDraw with_mlp(o);
  auto [q2, p2] = check_same_sites(with_mlp, x);
  CHECK(q2.site("z_g/0").value.sizes() == c10::IntArrayRef({2, o.z_size}));
  ppl::param_store().clear();
  gnm::Vae vae(small_vae());
  auto [q3, p3] = check_same_sites(vae, x);
  CHECK(q3.site("z").value.sizes() == c10::IntArrayRef({2, 8}));
}

TEST_CASE("a few SVI steps on tiny images lower the loss of GNM, ConvDRAW and the VAE", "[gnm][train]") {
  torch::manual_seed(7);
  // Four fixed 16 x 16 images: a bright square at a different place in each.
  auto x = torch::zeros({4, 1, 16, 16});
  for (int i = 0; i < 4; ++i) x.index_put_({i, 0, torch::indexing::Slice(2 + 3 * i, 6 + 3 * i), torch::indexing::Slice(4, 9)}, 1.0);
  auto run = [&](ppl::programs::ImageProgram& program, int steps) {
    auto model = [&](const torch::Tensor& img) { return program.model(img); };
    auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
    ppl::infer::Svi svi(model, guide, ppl::infer::Elbo(program.elbo_options()), ppl::infer::Adam(1e-3));
    std::vector<double> losses;
    for (int s = 0; s < steps; ++s) {
      program.set_step(s);
      losses.push_back(svi.step(x));
    }
    const auto mean = [&](int from, int to) {
      double sum = 0;
      for (int i = from; i < to; ++i) sum += losses[i];
      return sum / (to - from);
    };
    return std::make_pair(mean(0, 5), mean(steps - 5, steps));
  };
  ppl::param_store().clear();
  gnm::Gnm g(small_gnm());
  g.set_training(true);
  auto [g0, g1] = run(g, 40);
  CHECK(g1 < g0);
  // The authors' objective: closed-form KLs for the Normal sites.
  ppl::param_store().clear();
  auto analytic = small_gnm();
  analytic.analytic_kl = true;
  gnm::Gnm ga(analytic);
  ga.set_training(true);
  REQUIRE(ga.elbo_options().analytic_kl);
  REQUIRE_FALSE(g.elbo_options().analytic_kl);
  auto [a0, a1] = run(ga, 40);
  CHECK(a1 < a0);
  ppl::param_store().clear();
  gnm::ConvDraw c(small_convdraw());
  auto [c0, c1] = run(c, 40);
  CHECK(c1 < c0);
  ppl::param_store().clear();
  gnm::Vae v(small_vae());
  auto [v0, v1] = run(v, 40);
  CHECK(v1 < v0);
}

TEST_CASE("StructDRAW's parameter count is that of Table 9's layers", "[gnm]") {
  const int64_t c = 128, s = 4, z = 32, hidden = 512, k = 3, flat = c * s * s;
  gnm::DrawCore core(c, s, z, true, hidden, k);
  auto count = [](torch::nn::Module& m) {
    int64_t n = 0;
    for (const auto& p : m.parameters()) n += p.numel();
    return n;
  };
  // ConvLSTM(in, C, k): one convolution [in + C] -> 4C with bias.
  const int64_t enc = (3 * c + c) * 4 * c * k * k + 4 * c, dec = (2 * c + c) * 4 * c * k * k + 4 * c;
  // MLP(in, [a, b, o]) with layer norms (scale and shift) after the hidden layers.
  auto mlp = [](int64_t in, int64_t a, int64_t b, int64_t o) {
    return in * a + a + 2 * a + a * b + b + 2 * b + b * o + o;
  };
  const int64_t interaction = mlp(flat, hidden, hidden, 2 * z), z_dec = mlp(z, 512, 1024, flat);
  const int64_t out = c * c * k * k + c;
  CHECK(count(*core->enc) == enc);
  CHECK(count(*core->dec) == dec);
  CHECK(count(*core->int_enc) == interaction);
  CHECK(count(*core->int_dec) == interaction);
  CHECK(count(*core->z_dec) == z_dec);
  CHECK(count(*core) == enc + dec + 2 * interaction + z_dec + out);
}

TEST_CASE("parameter counts of the default programs", "[.report]") {
  for (const char* name : {"gnm", "convdraw", "vae"}) {
    const auto& info = ppl::programs::find_program(name);
    for (bool small_draw : {false, true}) {
      ppl::param_store().clear();
      auto options = info.default_options();
      if (small_draw && options.contains("draw_kernel")) {
        options["draw_kernel"] = 1;
        options["channels"] = 64;
      } else if (small_draw) {
        continue;
      }
      auto program = info.make(options);
      auto x = torch::rand({1, 1, 64, 64});
      auto q = ppl::trace([&](const torch::Tensor& img) { return program->guide(img); }, x);
      auto p = ppl::trace(ppl::handlers::replay([&](const torch::Tensor& img) { return program->model(img); }, q), x);
      int64_t n = 0;
      for (const auto& t : ppl::param_store().parameters()) n += t.numel();
      std::cout << name << (small_draw ? " (channels 64, draw_kernel 1)" : "") << ": " << n << " parameters\n";
    }
  }
}

TEST_CASE("GNM sample_given generates from the given global latent", "[gnm]") {
  ppl::param_store().clear();
  torch::manual_seed(2);
  // With a background, which z_g moves, the image depends on z_g even where
  // the untrained head places no object.
  auto o = small_gnm();
  o.composition = "overlap";
  gnm::Gnm program(o);
  auto x = torch::rand({2, 1, 16, 16});
  torch::NoGradGuard no_grad;
  auto guide = ppl::trace([&] { return program.guide(x); });
  std::map<std::string, torch::Tensor> z_g;
  for (int l = 0; l < 3; ++l) z_g[ppl::addr("z_g", l)] = guide.site(ppl::addr("z_g", l)).value;
  // Generation given z_g is deterministic (mode of z_s and z_b, D.1) and depends on z_g.
  auto a = program.sample_given(z_g), b = program.sample_given(z_g);
  CHECK(a.sizes() == c10::IntArrayRef({2, 1, 16, 16}));
  CHECK(torch::equal(a, b));
  auto moved = z_g;
  moved["z_g/0"] = moved["z_g/0"] + 3.0;
  CHECK(!torch::allclose(program.sample_given(moved), a));
  z_g.erase("z_g/2");
  CHECK_THROWS_WITH(program.sample_given(z_g), Catch::Contains("no value for the global site \"z_g/2\""));
}

TEST_CASE("GNM's auxiliary terms reuse the guide's encoder pass: the loss and gradients of a second pass", "[gnm]") {
  ppl::param_store().clear();
  gnm::Gnm program(small_gnm());
  program.set_training(true);
  const auto x = torch::rand({3, 1, 16, 16});
  auto model = [&](const torch::Tensor& img) { return program.model(img); };
  // The guide on the images themselves (its pass is reused), and on a copy of
  // them, which the model cannot match: it runs the encoder again.
  auto guide = [&](const torch::Tensor& img) { return program.guide(img); };
  auto guide_of_copy = [&](const torch::Tensor& img) { return program.guide(img.clone()); };
  auto loss_and_gradients = [&](auto& g) {
    program.nets()->zero_grad();
    torch::manual_seed(11);
    auto loss = ppl::infer::Elbo(program.elbo_options()).loss(model, g, x);
    loss.backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : program.nets()->parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    return std::make_pair(loss.template item<double>(), grads);
  };
  const auto [reused, reused_grads] = loss_and_gradients(guide);
  const auto [again, again_grads] = loss_and_gradients(guide_of_copy);
  CHECK(reused == Approx(again).epsilon(1e-6));
  REQUIRE(reused_grads.size() == again_grads.size());
  // Equal up to the order of float sums: within 1e-5 of each gradient's largest entry.
  for (size_t i = 0; i < reused_grads.size(); ++i) {
    const double largest = again_grads[i].abs().max().item<double>();
    CHECK((reused_grads[i] - again_grads[i]).abs().max().item<double>() <= 1e-5 * (1 + largest));
  }
  // Without training there is no auxiliary site, and no pass is kept for one.
  program.set_training(false);
  auto [q, p] = check_same_sites(program, x);
  CHECK_FALSE(p.contains("aux"));
}

TEST_CASE("GNM's defaults are the authors' settings, and a configuration without them keeps the old ones", "[gnm]") {
  const auto defaults = gnm::GnmOptions::defaults();
  CHECK(defaults.encoder_width == 64);
  CHECK(defaults.z_decoder_hidden == 512);
  CHECK(defaults.glimpse_size == 16);
  const auto& info = ppl::programs::find_program("gnm");
  auto j = info.default_options();
  for (const char* key : {"encoder_width", "z_decoder_hidden", "glimpse_size", "z_where_form", "aspect_prior_sd",
                          "presence_kl", "likelihood_sd", "scale_prior_mean", "clip_mean_loss"})
    j.erase(key);
  ppl::param_store().clear();
  const auto old = info.make(j)->options();
  CHECK(old.at("encoder_width") == 128);
  CHECK(old.at("z_decoder_hidden") == 1024);
  CHECK(old.at("glimpse_size") == 32);
  CHECK(old.at("z_where_form") == "scales");
  CHECK(old.at("presence_kl") == "relaxed");
  CHECK(old.at("likelihood_sd") == 0.2);
  CHECK(old.at("scale_prior_mean") == -1.6);
  CHECK(old.at("clip_mean_loss") == false);
  // The baselines observe the scene with GNM's sd, so the LL column of Table 1 compares like with like.
  for (const char* baseline : {"vae", "convdraw"})
    CHECK(ppl::programs::find_program(baseline).default_options().at("likelihood_sd") ==
          info.default_options().at("likelihood_sd"));
  // The networks are those sizes: the encoder's wide rows and the z_g decoder.
  auto o = small_gnm();
  o.image_size = 64;
  auto count = [](const gnm::GnmOptions& options) {
    int64_t n = 0;
    for (const auto& t : gnm::GnmNets(options)->parameters()) n += t.numel();
    return n;
  };
  auto wide = o;
  wide.encoder_width = 128;
  // The rows of 128 in Table 6 at 64 px (4 x 4 from 64 to w, 3 x 3 from w to w,
  // each with a group norm) and the last row (4 x 4, w -> channels).
  auto encoder = [&](int64_t w) { return 64 * w * 16 + w + 2 * w + w * w * 9 + w + 2 * w + w * o.channels * 16; };
  CHECK(count(wide) - count(o) == encoder(128) - encoder(64));
  auto decoder = o;
  decoder.z_decoder_hidden = 1024;
  const int64_t flat = int64_t{o.channels} * 16;
  // MLP([512, h, flat]): 512 -> h with its layer norm, h -> flat.
  auto z_dec = [&](int64_t h) { return 512 * h + h + 2 * h + h * flat; };
  CHECK(count(decoder) - count(o) == z_dec(1024) - z_dec(512));
  auto bad = small_gnm();
  bad.encoder_width = 0;
  CHECK_THROWS_WITH(gnm::Gnm(bad), Catch::Contains("encoder_width is 0"));
  bad = small_gnm();
  bad.z_where_form = "square";
  CHECK_THROWS_WITH(gnm::Gnm(bad), Catch::Contains("z_where_form is \"square\""));
  bad = small_gnm();
  bad.presence_kl = "sampled";
  CHECK_THROWS_WITH(gnm::Gnm(bad), Catch::Contains("presence_kl is \"sampled\""));
  bad = small_gnm();
  bad.aspect_prior_sd = -0.3;
  CHECK_THROWS_WITH(gnm::Gnm(bad), Catch::Contains("aspect_prior_sd is -0.3"));
}

TEST_CASE("GNM clips the gradient of the batch's mean loss at clip_norm, as its authors do", "[gnm]") {
  ppl::param_store().clear();
  auto o = small_gnm();
  REQUIRE(o.clip_norm == 1.0);
  REQUIRE(o.clip_mean_loss);
  gnm::Gnm program(o);
  // `ppl train` sums the loss over the batch: its gradient is 32 times the mean's.
  CHECK(program.clip_bound(32) == Approx(32.0));
  CHECK(program.clip_bound(8) == Approx(8.0));
  ppl::param_store().clear();
  o.clip_mean_loss = false;
  gnm::Gnm summed(o);
  CHECK(summed.clip_bound(32) == Approx(1.0));
  // Clipping the sum's gradient at B c is clipping the mean's at c: the same update direction and size.
  auto w = torch::randn({5}, torch::requires_grad());
  auto x = torch::randn({32, 5});
  auto clipped = [&](bool mean, double bound) {
    if (w.grad().defined()) w.mutable_grad().zero_();
    auto loss = (x.matmul(w)).pow(2);
    (mean ? loss.mean() : loss.sum()).backward();
    torch::nn::utils::clip_grad_norm_({w}, bound);
    return (mean ? w.grad() * 32 : w.grad()).clone();
  };
  CHECK(torch::allclose(clipped(true, 1.0), clipped(false, 32.0), 1e-5, 1e-6));
}

TEST_CASE("GNM's closed-form presence KL is KL(Ber(q) || Ber(p)) of the guide's and the model's z_pres", "[gnm]") {
  ppl::param_store().clear();
  torch::manual_seed(6);
  auto o = small_gnm();
  REQUIRE(o.presence_kl == "bernoulli");
  gnm::Gnm program(o);
  program.set_training(true);
  const auto x = torch::rand({3, 1, 16, 16});
  auto [q, p] = check_same_sites(program, x);
  REQUIRE(p.contains("kl_pres"));
  CHECK(p.site("kl_pres").observed);
  // The relaxed draws still render the image, their own terms weighted 0.
  CHECK(q.site("z_pres").scale == 0.0);
  CHECK(p.site("z_pres").scale == 0.0);
  auto probs = [](const ppl::Trace& t) {
    const auto* d = dynamic_cast<const ppl::dist::RelaxedBernoulli*>(t.site("z_pres").dist.get());
    REQUIRE(d != nullptr);
    return torch::sigmoid(d->logits()).detach().to(torch::kDouble);
  };
  const auto a = probs(q), b = probs(p);
  const auto direct = (a * (a / b).log() + (1 - a) * ((1 - a) / (1 - b)).log()).sum(1);
  const auto site = -p.site("kl_pres").log_prob().detach().to(torch::kDouble);
  CHECK(torch::allclose(site, direct, 1e-4, 1e-6));
  // Monte Carlo over z ~ Ber(q): the mean of log Ber(z; q) - log Ber(z; p), within 5 standard errors.
  torch::manual_seed(7);
  const int64_t draws = 20000;
  auto z = torch::bernoulli(a.unsqueeze(0).expand({draws, -1, -1}));
  auto log_ratio = (z * (a / b).log() + (1 - z) * ((1 - a) / (1 - b)).log()).sum(2);
  auto error = log_ratio.std(0) / std::sqrt(static_cast<double>(draws));
  CHECK(((log_ratio.mean(0) - site).abs() <= 5 * error + 1e-9).all().item<bool>());
  // Evaluation (not training), and "relaxed", keep the sampled terms of the relaxed z_pres.
  program.set_training(false);
  auto [q0, p0] = check_same_sites(program, x);
  CHECK_FALSE(p0.contains("kl_pres"));
  CHECK(q0.site("z_pres").scale == 1.0);
  ppl::param_store().clear();
  o.presence_kl = "relaxed";
  gnm::Gnm relaxed(o);
  relaxed.set_training(true);
  auto [q1, p1] = check_same_sites(relaxed, x);
  CHECK_FALSE(p1.contains("kl_pres"));
  CHECK(p1.site("z_pres").scale == 1.0);
}
