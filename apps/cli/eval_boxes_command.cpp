// `ppl eval boxes RUN`: the average precision of the boxes a program infers
// (AIR, GNM, SPACE, GENESIS; Table 4) and the z_what accuracy of its objects.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/programs/gnm/evaluation.hpp>
#include <ppl/runtime/data/scenes.hpp>

#include "commands.hpp"
#include "eval_command.hpp"
#include "progress.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {
namespace rd = ppl::runtime::data;
namespace gnm = ppl::programs::gnm;

struct EvalBoxesArgs {
  std::string run;
  int64_t n = 500;
  std::string device;
  std::string data_dir;
  uint64_t seed = 0;  ///< for programs whose boxes come from a guide draw (AIR)
};


/// RUN (a program that infers objects, trained on a scene set): AP of its
/// inferred boxes against the generator's boxes on the test scenes, and a
/// PNG of both.
void evaluate_boxes(const EvalBoxesArgs& a) {
  if (a.n < 1) throw UsageError(fmt::format("eval boxes: --n is {}, but must be at least 1", a.n));
  auto run = open_run(a.run, a.device);
  auto* program = run.program.get();
  if (!program->infers_objects())
    throw UsageError(fmt::format("eval boxes: run {} holds a \"{}\" program, which infers no object boxes (air, "
                                 "gnm, space and genesis do)", a.run, program->name()));
  const auto& name = run.train.data;
  const auto scenes = load_scenes(name, "test", a.data_dir.empty() ? run.train.data_dir : a.data_dir, a.n,
                                  program->image_size());
  const auto images = stack_scenes(scenes);
  std::vector<std::vector<gnm::ScoredBox>> detections;
  std::vector<torch::Tensor> features, labels;
  int64_t objects = 0;
  random::SeedScope seeded(a.seed);
  ProgressBar bar("boxes", images.size(0));
  for (int64_t i = 0; i < images.size(0); i += 50) {
    const auto count = std::min<int64_t>(50, images.size(0) - i);
    const auto x = images.narrow(0, i, count).to(run.device);
    const auto inferred = program->infer_objects(x);
    detections.insert(detections.end(), inferred.boxes.begin(), inferred.boxes.end());
    const std::vector<rd::Scene> batch(scenes.begin() + i, scenes.begin() + i + count);
    auto what = gnm::gnm_what_features(inferred, batch);
    features.push_back(what.features);
    labels.push_back(what.labels);
    objects += what.objects;
    bar.update(static_cast<int64_t>(detections.size()));
  }
  bar.finish();
  const auto what_x = torch::cat(features), what_y = torch::cat(labels);
  // z_what accuracy needs matched objects in both halves; NaN when too few matched.
  const double what_accuracy =
      what_x.size(0) >= 20 ? gnm::what_classification_accuracy(what_x, what_y) : std::nan("");
  const auto truth = gnm::scene_boxes(scenes), frames = gnm::scene_boxes(scenes, gnm::SceneBox::frame);
  int64_t right = 0, inferred = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const auto count =
        std::count_if(detections[i].begin(), detections[i].end(), [](const auto& b) { return b.score > 0.5; });
    inferred += count;
    right += count == static_cast<int64_t>(truth[i].size());
  }
  const double n = static_cast<double>(truth.size());
  const nlohmann::json summary = {{"run", a.run},
                                  {"data", name},
                                  {"n", truth.size()},
                                  {"ap_50", gnm::average_precision(detections, truth, 0.5)},
                                  {"ap_50_95", gnm::average_precision_coco(detections, truth)},
                                  {"frame_ap_50", gnm::average_precision(detections, frames, 0.5)},
                                  {"frame_ap_50_95", gnm::average_precision_coco(detections, frames)},
                                  {"count_accuracy", static_cast<double>(right) / n},
                                  {"seed", a.seed},
                                  {"mean_inferred_count", static_cast<double>(inferred) / n},
                                  {"z_what_accuracy", std::isnan(what_accuracy) ? nlohmann::json(nullptr)
                                                                                : nlohmann::json(what_accuracy)},
                                  {"z_what_matched", static_cast<double>(what_x.size(0)) /
                                                         static_cast<double>(std::max<int64_t>(objects, 1))}};
  // The first scenes: ground truth (ink boxes) in green, inferred boxes (q(z_pres) > 1/2) in yellow.
  save_boxed_grid(run.dir / "eval_boxes.png", images,
                  {{&truth, {0.0f, 0.85f, 0.0f}}, {&detections, {1.0f, 0.8f, 0.0f}}});
  std::printf("%s\n", summary.dump(2).c_str());
  write_atomic(run.dir / "eval_boxes.json", summary.dump(2));
}

}  // namespace

void add_eval_boxes(CLI::App& eval) {
  auto b = std::make_shared<EvalBoxesArgs>();
  auto* bx = eval.add_subcommand(
      "boxes", "Average precision of the inferred boxes (AIR, GNM, SPACE, GENESIS) on the test scenes (Table 4)");
  bx->add_option("run", b->run, "run directory of a GNM, SPACE or GENESIS trained on a scene set")->required();
  bx->add_option("--n", b->n, "number of test scenes")->capture_default_str();
  bx->add_option("--device", b->device, "cpu or cuda (default: the run's)");
  bx->add_option("--seed", b->seed, "random seed (AIR's boxes are one guide draw)")->capture_default_str();
  bx->add_option("--data-dir", b->data_dir, "data root");
  bx->callback([b] { evaluate_boxes(*b); });
}

}  // namespace ppl::cli
