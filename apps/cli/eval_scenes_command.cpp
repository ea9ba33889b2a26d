// `ppl eval scenes RUN`: the scene-structure evaluations of GNM's Table 1 on
// a trained run's samples (S-Acc with its failure counts, D-Steps), and
// `ppl eval scenes --real`: the same judge on real and deliberately broken
// scenes, to validate it without a run.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/programs/gnm/evaluation.hpp>
#include <ppl/runtime/data/registry.hpp>
#include <ppl/runtime/data/scenes.hpp>
#include <ppl/runtime/image.hpp>

#include "commands.hpp"
#include "eval_command.hpp"
#include "progress.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {
namespace rd = ppl::runtime::data;
namespace gnm = ppl::programs::gnm;
namespace fs = std::filesystem;

struct EvalScenesArgs {
  std::string run;
  bool real = false;
  int64_t n = 250;
  std::string data;
  int64_t size = 64;
  uint64_t seed = 0;
  int64_t d_steps_cap = 2000;
  double threshold = gnm::SceneReaderOptions{}.threshold;
  int64_t min_area = gnm::SceneReaderOptions{}.min_area;
  int64_t dilation = gnm::SceneReaderOptions{}.dilation;
  double min_confidence = gnm::SceneReaderOptions{}.min_confidence;
  std::vector<std::string> breaks;  ///< with --real: the kinds of bad scenes judged (empty: every kind)
  double tolerance = -1;
  std::string device;
  std::string data_dir;
  std::string out;
};

/// The scene kind of a data set name, which must have structure rules.
rd::SceneKind structured_kind(const std::string& name, const std::string& whose) {
  std::optional<rd::SceneKind> kind;
  try {
    kind = rd::parse_scene_kind(name);
  } catch (const std::invalid_argument&) {
  }
  if (!kind || (*kind != rd::SceneKind::mnist4 && *kind != rd::SceneKind::mnist10 && *kind != rd::SceneKind::mnist4_10))
    throw UsageError(fmt::format("eval scenes: {} is \"{}\", but S-Acc needs a scene set with structure rules: "
                                 "mnist-4, mnist-10 or mnist-4-10", whose, name));
  return *kind;
}

/// The classifier and the digits it was trained on, loaded or trained once.
struct Judge {
  rd::Dataset train, test;
  gnm::TrainedClassifier classifier;
};

Judge make_judge(const std::string& data_dir) {
  auto roots = data_roots(data_dir);
  Judge j;
  try {
    j.train = rd::load_dataset("mnist", roots, rd::LoadOptions{}.with_split(rd::Split::train).with_size(0));
    j.test = rd::load_dataset("mnist", roots, rd::LoadOptions{}.with_split(rd::Split::test).with_size(0));
  } catch (const rd::DataError& e) {
    throw UsageError(fmt::format("eval scenes: the digit classifier needs the mnist digits: {}", e.what()));
  }
  const auto file = gnm::digit_classifier_file(roots.cache, j.train.size(), j.test.size());
  if (!fs::exists(file))
    std::fprintf(stderr, "training the S-Acc digit classifier on %lld digits (once; cached at %s)\n",
                 static_cast<long long>(j.train.size()), file.string().c_str());
  j.classifier = gnm::load_digit_classifier(j.train, j.test, roots.cache);
  return j;
}

gnm::SceneReaderOptions reader_options(const EvalScenesArgs& a) {
  if (!(a.threshold > 0 && a.threshold < 1))
    throw UsageError(fmt::format("eval scenes: --threshold is {}, but must be in (0, 1)", a.threshold));
  if (a.min_area < 1)
    throw UsageError(fmt::format("eval scenes: --min-area is {}, but must be at least 1", a.min_area));
  if (a.dilation < 0)
    throw UsageError(fmt::format("eval scenes: --dilation is {}, but must be at least 0", a.dilation));
  if (!(a.min_confidence >= 0 && a.min_confidence <= 1))
    throw UsageError(fmt::format("eval scenes: --min-confidence is {}, but must be in [0, 1]", a.min_confidence));
  return gnm::SceneReaderOptions{}
      .with_threshold(a.threshold)
      .with_min_area(a.min_area)
      .with_dilation(a.dilation)
      .with_min_confidence(a.min_confidence);
}

/// The reader's settings as eval_scenes.json records them: its version, its
/// options and the position tolerance in pixels.
nlohmann::json reader_json(const gnm::SceneReaderOptions& r, double tolerance, double size) {
  nlohmann::json out = r;
  out["version"] = gnm::kSceneReaderVersion;
  out["tolerance"] = tolerance < 0 ? size / 32 : tolerance;
  return out;
}

/// The kinds of bad scenes --break names (every kind when none is named).
std::vector<gnm::SceneBreak> scene_breaks(const std::vector<std::string>& names) {
  if (names.empty()) return {gnm::kSceneBreaks.begin(), gnm::kSceneBreaks.end()};
  std::vector<gnm::SceneBreak> out;
  for (const auto& name : names) {
    try {
      const auto how = gnm::parse_scene_break(name);
      if (std::find(out.begin(), out.end(), how) == out.end()) out.push_back(how);
    } catch (const std::invalid_argument&) {
      std::vector<std::string> known;
      for (const auto how : gnm::kSceneBreaks) known.push_back(gnm::to_string(how));
      throw UsageError(fmt::format("eval scenes: --break is \"{}\", but must be one of {}", name,
                                   fmt::join(known, ", ")));
    }
  }
  return out;
}

nlohmann::json classifier_json(const gnm::TrainedClassifier& c) {
  return {{"version", gnm::kDigitClassifierVersion},
          {"held_out_accuracy", c.held_out_accuracy},
          {"train_digits", c.train_digits},
          {"held_out_digits", c.held_out_digits}};
}

/// S-Acc figures: accuracy, passed, n, scenes by first rule broken
/// (`failures`) and by every rule broken (`broken_rules`), digits per scene,
/// and MNIST-4's clockwise neighbour pairs that step up by one class
/// (`consecutive_pairs`; fraction null when no scene has one digit per quadrant).
nlohmann::json accuracy_json(const gnm::StructureAccuracy& s) {
  auto by_rule = [](const std::map<std::string, int64_t>& counts) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto* rule : {"legibility", "count", "quadrant", "class", "position"}) out[rule] = 0;
    for (const auto& [rule, count] : counts) out[rule] = count;
    return out;
  };
  nlohmann::json pairs = {{"pairs", s.neighbour_pairs}, {"consecutive", s.consecutive_pairs}, {"fraction", nullptr}};
  if (s.neighbour_pairs > 0)
    pairs["fraction"] = static_cast<double>(s.consecutive_pairs) / static_cast<double>(s.neighbour_pairs);
  return {{"s_acc", s.accuracy},
          {"passed", s.passed},
          {"n", s.n},
          {"failures", by_rule(s.failures)},
          {"broken_rules", by_rule(s.broken)},
          {"mean_digits_read", s.mean_digits},
          {"consecutive_pairs", pairs}};
}

/// Per scene: verdict and the digits read.
nlohmann::json scenes_json(const gnm::StructureAccuracy& s) {
  auto out = nlohmann::json::array();
  for (size_t i = 0; i < s.checks.size(); ++i) {
    auto digits = nlohmann::json::array();
    for (const auto& d : s.digits[i])
      digits.push_back({{"class", d.label},
                        {"confidence", std::round(d.confidence * 1000) / 1000},
                        {"centre", {std::round(d.x * 10) / 10, std::round(d.y * 10) / 10}},
                        {"box", {d.x0, d.y0, d.x1 - d.x0, d.y1 - d.y0}}});
    out.push_back({{"ok", s.checks[i].ok}, {"rule", s.checks[i].rule}, {"detail", s.checks[i].detail},
                   {"broken_rules", s.checks[i].broken}, {"digits", digits}});
  }
  return out;
}

/// One scene [H, W] as RGB [3, sH, sW] (s = scale) with the digits' boxes and
/// labels drawn and a green (pass) or red (fail) border.
torch::Tensor annotate(const torch::Tensor& image, const std::vector<gnm::DetectedDigit>& digits, bool ok,
                       int64_t scale) {
  const auto h = image.size(0) * scale, w = image.size(1) * scale;
  auto big =
      image.detach().cpu().to(torch::kFloat32).clamp(0, 1).repeat_interleave(scale, 0).repeat_interleave(scale, 1);
  auto rgb = big.unsqueeze(0).repeat({3, 1, 1}).contiguous();
  auto px = rgb.accessor<float, 3>();
  auto put = [&](int64_t x, int64_t y, std::array<float, 3> c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    for (int k = 0; k < 3; ++k) px[k][y][x] = c[static_cast<size_t>(k)];
  };
  const std::array<float, 3> box_colour{1.0f, 0.8f, 0.0f}, text{0.3f, 1.0f, 1.0f}, black{0, 0, 0};
  for (const auto& d : digits) {
    const auto x0 = d.x0 * scale, y0 = d.y0 * scale, x1 = d.x1 * scale - 1, y1 = d.y1 * scale - 1;
    for (auto x = x0; x <= x1; ++x) put(x, y0, box_colour), put(x, y1, box_colour);
    for (auto y = y0; y <= y1; ++y) put(x0, y, box_colour), put(x1, y, box_colour);
    // The label in a black 7 x 9 tag at the box's top-left corner, above it where there is room.
    const auto tx = x0, ty = y0 >= 9 ? y0 - 9 : y0 + 1;
    for (int64_t y = 0; y < 9; ++y)
      for (int64_t x = 0; x < 7; ++x) put(tx + x, ty + y, black);
    runtime::draw_text(rgb, tx + 1, ty + 1, std::to_string(d.label), text);
  }
  const std::array<float, 3> border =
      ok ? std::array<float, 3>{0.0f, 0.85f, 0.0f} : std::array<float, 3>{0.9f, 0.0f, 0.0f};
  for (int64_t t = 0; t < 2; ++t) {
    for (int64_t x = 0; x < w; ++x) put(x, t, border), put(x, h - 1 - t, border);
    for (int64_t y = 0; y < h; ++y) put(t, y, border), put(w - 1 - t, y, border);
  }
  return rgb;
}

/// Writes the scenes [N, 1, H, W] with what the judge read as one PNG grid.
void save_annotated(const fs::path& path, const torch::Tensor& images, const gnm::StructureAccuracy& s) {
  const auto scale = std::max<int64_t>(1, 128 / images.size(-1));
  std::vector<torch::Tensor> tiles;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const auto k = static_cast<size_t>(i);
    tiles.push_back(annotate(images[i][0], s.digits[k], s.checks[k].ok, scale));
  }
  save_image_grid(path, torch::stack(tiles),
                  static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(images.size(0))))));
}

/// D-Steps with a progress bar; {"steps", "reached", "cap", "accuracy", ...}.
nlohmann::json d_steps(const torch::Tensor& real, const torch::Tensor& generated, const EvalScenesArgs& a) {
  ProgressBar bar("D-Steps", a.d_steps_cap);
  const auto r = gnm::discriminability_steps(
      real, generated, gnm::DiscriminabilityOptions{}.with_max_steps(a.d_steps_cap).with_seed(a.seed),
      [&](int64_t step, double acc) { bar.update(step, fmt::format("held-out accuracy {:.3f}", acc)); });
  bar.finish(r.reached ? "reached 0.9" : "cap reached: a lower bound");
  return {{"steps", r.steps},
          {"reached", r.reached},
          {"cap", a.d_steps_cap},
          {"accuracy", r.accuracy},
          {"target", 0.9},
          {"discriminator", "conv 1-16-32-64 (4x4, stride 2, LeakyReLU 0.2), mean pool, linear; Adam lr 1e-4, "
                            "batch 16 real + 16 generated; 20% of each set held out"}};
}


void write_json(const fs::path& path, const nlohmann::json& summary, const nlohmann::json& full) {
  std::printf("%s\n", summary.dump(2).c_str());
  write_atomic(path, full.dump(1));
}

/// --real: the judge on real scenes of the test digits and on bad copies of
/// them, each kind of --break in turn applied to every scene.
void evaluate_real(const EvalScenesArgs& a) {
  const auto name = a.data.empty() ? std::string("mnist-4") : a.data;
  const auto kind = structured_kind(name, "--data");
  if (a.size < 16) throw UsageError(fmt::format("eval scenes: --size is {}, but must be at least 16", a.size));
  const auto reader = reader_options(a);
  const auto breaks = scene_breaks(a.breaks);
  auto judge = make_judge(a.data_dir);
  rd::SceneGenerator gen(judge.test, rd::SceneOptions{}.with_kind(kind).with_size(a.size).with_seed(2 + a.seed));
  const auto scenes = gen.scenes(0, a.n);
  auto& net = judge.classifier.net;
  const auto real_images = stack_scenes(scenes);
  const auto real = gnm::structure_accuracy(real_images, kind, net, reader, a.tolerance);
  nlohmann::json pass_rates = {{"real", real.accuracy}};
  nlohmann::json broken_json = nlohmann::json::object();
  std::vector<std::pair<torch::Tensor, gnm::StructureAccuracy>> bad;
  for (const auto how : breaks) {
    std::vector<rd::Scene> broken;
    for (size_t i = 0; i < scenes.size(); ++i)
      broken.push_back(gnm::break_scene(scenes[i], how, judge.test, a.seed * 1000003 + i));
    auto images = stack_scenes(broken);
    auto s = gnm::structure_accuracy(images, kind, net, reader, a.tolerance);
    pass_rates[gnm::to_string(how)] = s.accuracy;
    broken_json[gnm::to_string(how)] = accuracy_json(s);
    bad.emplace_back(std::move(images), std::move(s));
  }
  nlohmann::json summary = {{"data", name},
                            {"size", a.size},
                            {"n", a.n},
                            {"seed", a.seed},
                            {"reader", reader_json(reader, a.tolerance, static_cast<double>(a.size))},
                            {"classifier", classifier_json(judge.classifier)},
                            {"pass_rates", pass_rates},
                            {"real", accuracy_json(real)},
                            {"broken", broken_json}};
  if (a.d_steps_cap > 0) {
    // The reference: real scenes of the train digits against those of the test digits.
    auto train_scenes = load_image_data(name, "train", a.data_dir, a.n, a.size).images;
    summary["d_steps_real_vs_real"] = d_steps(train_scenes, real_images, a);
  }
  if (a.out.empty()) {
    std::printf("%s\n", summary.dump(2).c_str());
    return;
  }
  const fs::path dir(a.out);
  auto full = summary;
  full["real"]["scenes"] = scenes_json(real);
  save_annotated(dir / "eval_scenes_real.png", real_images, real);
  for (size_t b = 0; b < breaks.size(); ++b) {
    const auto label = gnm::to_string(breaks[b]);
    full["broken"][label]["scenes"] = scenes_json(bad[b].second);
    save_annotated(dir / fmt::format("eval_scenes_{}.png", label), bad[b].first, bad[b].second);
  }
  write_json(dir / "eval_scenes.json", summary, full);
}

/// RUN: the judge on the run's samples, and D-Steps against real scenes.
void evaluate_run(const EvalScenesArgs& a) {
  auto run = open_run(a.run, a.device);
  const auto name = a.data.empty() ? run.train.data : a.data;
  const auto kind = structured_kind(name, a.data.empty() ? fmt::format("the data set of run {}", a.run) : "--data");
  const auto reader = reader_options(a);
  auto judge = make_judge(a.data_dir.empty() ? run.train.data_dir : a.data_dir);
  auto& program = *run.program;
  const auto size = program.image_size();
  // GNM's samples come with the structure they were rendered from (Fig. 3's boxes).
  auto* structured = dynamic_cast<gnm::Gnm*>(run.program.get());
  std::vector<torch::Tensor> samples;
  std::vector<std::vector<gnm::ScoredBox>> own_boxes;
  {
    torch::NoGradGuard no_grad;
    random::SeedScope seed(a.seed);
    ProgressBar bar("sampling", a.n);
    for (int64_t i = 0; i < a.n; i += 50) {
      const auto count = std::min<int64_t>(50, a.n - i);
      torch::Tensor batch;
      if (structured) {
        auto [images, z] = structured->sample_structured(count);
        batch = images;
        const auto boxes = gnm::latent_boxes(*structured, z);
        own_boxes.insert(own_boxes.end(), boxes.begin(), boxes.end());
      } else {
        batch = program.sample(count);
      }
      samples.push_back(batch.detach().cpu().to(torch::kFloat32).clamp(0, 1));
      bar.update(i + samples.back().size(0));
    }
    bar.finish();
  }
  const auto generated = torch::cat(samples);
  if (generated.dim() != 4 || generated.size(1) != 1 || generated.size(-1) != size)
    throw UsageError(
        fmt::format("eval scenes: the samples of run {} are not [N, 1, {}, {}] images", a.run, size, size));
  const auto s = gnm::structure_accuracy(generated, kind, judge.classifier.net, reader, a.tolerance);
  nlohmann::json summary = {{"run", a.run},
                            {"program", program.name()},
                            {"data", name},
                            {"image_size", size},
                            {"n", a.n},
                            {"seed", a.seed},
                            {"reader", reader_json(reader, a.tolerance, static_cast<double>(size))},
                            {"classifier", classifier_json(judge.classifier)}};
  summary.update(accuracy_json(s));
  if (structured) {
    // The second reader: each digit read inside the box GNM drew it in.
    const auto own = gnm::structure_accuracy(gnm::read_boxes(generated, own_boxes, judge.classifier.net, reader), kind,
                                             static_cast<double>(size), a.tolerance, reader.min_confidence);
    summary["own_boxes"] = accuracy_json(own);
  }
  if (a.d_steps_cap > 0) {
    const auto real = load_image_data(name, "test", a.data_dir.empty() ? run.train.data_dir : a.data_dir, a.n, size);
    summary["d_steps"] = d_steps(real.images, generated, a);
  }
  auto full = summary;
  full["scenes"] = scenes_json(s);
  save_annotated(run.dir / "eval_scenes.png", generated, s);
  if (structured) save_boxed_grid(run.dir / "eval_scenes_boxes.png", generated, {{&own_boxes, {1.0f, 0.8f, 0.0f}}});
  write_json(run.dir / "eval_scenes.json", summary, full);
}

}  // namespace

void add_eval_scenes(CLI::App& eval) {
  auto a = std::make_shared<EvalScenesArgs>();
  auto* sc = eval.add_subcommand(
      "scenes", "Scene structure accuracy (S-Acc) and discriminability (D-Steps) of a run's samples (GNM Table 1)");
  sc->add_option("run", a->run, "run directory (trained on mnist-4, mnist-10 or mnist-4-10)");
  sc->add_flag("--real", a->real, "no run: judge real scenes and bad copies of them, to validate the judge");
  sc->add_option("--n", a->n, "number of samples (or real scenes)")->capture_default_str();
  sc->add_option("--data", a->data, "scene set whose rules apply (default: the run's; with --real, mnist-4)");
  sc->add_option("--size", a->size, "with --real: scene side in pixels")->capture_default_str();
  sc->add_option("--seed", a->seed, "random seed")->capture_default_str();
  sc->add_option("--d-steps-cap", a->d_steps_cap, "most discriminator steps (0: skip D-Steps)")->capture_default_str();
  sc->add_option("--threshold", a->threshold, "ink threshold of the scene reader")->capture_default_str();
  sc->add_option("--min-area", a->min_area, "smallest digit in ink pixels at 64 x 64 (scaled with the area)")
      ->capture_default_str();
  sc->add_option("--dilation", a->dilation, "pixels the ink mask grows before components are found")
      ->capture_default_str();
  sc->add_option("--min-confidence", a->min_confidence,
                 "a digit read with a lower classifier confidence fails its scene (\"legibility\"); 0: no cut-off")
      ->capture_default_str();
  sc->add_option("--break", a->breaks,
                 "with --real: the bad scenes judged, comma-separated: swap-quadrants, wrong-class, remove-digit, "
                 "blurred, blob (default: all)")
      ->delimiter(',');
  sc->add_option("--tolerance", a->tolerance, "position tolerance in pixels (default: size / 32)");
  sc->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  sc->add_option("--data-dir", a->data_dir, "data root");
  sc->add_option("--out", a->out, "with --real: folder for eval_scenes.json and the annotated grids");
  sc->callback([a] {
    if (a->n < 10) throw UsageError(fmt::format("eval scenes: --n is {}, but must be at least 10", a->n));
    if (a->d_steps_cap < 0)
      throw UsageError(fmt::format("eval scenes: --d-steps-cap is {}, but must be at least 0", a->d_steps_cap));
    if (!a->real && !a->breaks.empty()) throw UsageError("eval scenes: --break applies to --real only");
    if (a->real) {
      if (!a->run.empty()) throw UsageError("eval scenes: --real evaluates real scenes and takes no RUN");
      evaluate_real(*a);
    } else {
      if (a->run.empty())
        throw UsageError("eval scenes: RUN is required (or --real to validate the judge on real scenes)");
      evaluate_run(*a);
    }
  });
}

}  // namespace ppl::cli
