// Boxes and average precision (Table 4), and the z_what features of
// GNM's objects.
#include <ppl/programs/gnm/boxes.hpp>

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "generator_scope.hpp"

namespace ppl::programs::gnm {

double box_iou(const ScoredBox& a, const ScoredBox& b) {
  const double w = std::min(a.x + a.width, b.x + b.width) - std::max(a.x, b.x);
  const double h = std::min(a.y + a.height, b.y + b.height) - std::max(a.y, b.y);
  const double inter = std::max(w, 0.0) * std::max(h, 0.0);
  const double uni = a.width * a.height + b.width * b.height - inter;
  return uni > 0 ? inter / uni : 0.0;
}

double average_precision(const std::vector<std::vector<ScoredBox>>& detections,
                         const std::vector<std::vector<ScoredBox>>& truth, double iou) {
  if (detections.size() != truth.size())
    throw std::invalid_argument(fmt::format("average_precision: {} images of detections but {} of ground truth",
                                            detections.size(), truth.size()));
  if (!(iou > 0 && iou <= 1))
    throw std::invalid_argument(fmt::format("average_precision: iou is {}, but must be in (0, 1]", iou));
  struct Ranked {
    double score;
    size_t image, index;
  };
  std::vector<Ranked> ranked;
  size_t positives = 0;
  for (size_t i = 0; i < detections.size(); ++i) {
    positives += truth[i].size();
    for (size_t k = 0; k < detections[i].size(); ++k) ranked.push_back({detections[i][k].score, i, k});
  }
  if (positives == 0) return 0.0;
  // Stable: equal scores keep the order of images and cells.
  std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) { return a.score > b.score; });
  std::vector<std::vector<bool>> used(truth.size());
  for (size_t i = 0; i < truth.size(); ++i) used[i].assign(truth[i].size(), false);
  std::vector<double> precision, recall;
  size_t tp = 0, fp = 0;
  for (const auto& r : ranked) {
    const auto& det = detections[r.image][r.index];
    double best = 0;
    size_t match = truth[r.image].size();
    for (size_t t = 0; t < truth[r.image].size(); ++t) {
      if (used[r.image][t]) continue;
      const double v = box_iou(det, truth[r.image][t]);
      if (v > best) best = v, match = t;
    }
    if (match < truth[r.image].size() && best >= iou) {
      used[r.image][match] = true;
      ++tp;
    } else {
      ++fp;
    }
    precision.push_back(static_cast<double>(tp) / static_cast<double>(tp + fp));
    recall.push_back(static_cast<double>(tp) / static_cast<double>(positives));
  }
  // Monotone precision envelope, then the area under the step curve.
  for (size_t k = precision.size(); k-- > 1;) precision[k - 1] = std::max(precision[k - 1], precision[k]);
  double ap = 0, last_recall = 0;
  for (size_t k = 0; k < precision.size(); ++k) {
    ap += (recall[k] - last_recall) * precision[k];
    last_recall = recall[k];
  }
  return ap;
}

double average_precision_coco(const std::vector<std::vector<ScoredBox>>& detections,
                              const std::vector<std::vector<ScoredBox>>& truth) {
  double sum = 0;
  for (int k = 0; k < 10; ++k) sum += average_precision(detections, truth, 0.5 + 0.05 * k);
  return sum / 10;
}

namespace {
/// A ground-truth box as a ScoredBox of score 1.
ScoredBox scored(const runtime::data::PixelBox& b) { return {b.x, b.y, b.width, b.height, 1.0}; }

}  // namespace

GnmObjects gnm_objects(Gnm& program, const torch::Tensor& x) { return program.infer_objects(x); }

std::vector<std::vector<ScoredBox>> latent_boxes(const Gnm& program, const StructureLatents& z) {
  const auto& o = program.gnm_options();
  const int64_t n = int64_t{o.num_cells} * o.num_cells;
  if (!z.z_where.defined() || !z.z_pres.defined() || z.z_where.dim() != 3 || z.z_where.size(1) != n ||
      z.z_where.size(2) != 4 || z.z_pres.sizes() != z.z_where.sizes().slice(0, 2))
    throw std::invalid_argument(fmt::format("latent_boxes: z_where must be [B, {}, 4] and z_pres [B, {}]", n, n));
  const auto all = structure_boxes(z.z_where, z.z_pres, o.num_cells, o.image_size, program.box_form());
  std::vector<std::vector<ScoredBox>> out;
  for (const auto& image : all) {
    out.emplace_back();
    for (const auto& b : image)
      if (b.score > 0.5) out.back().push_back(b);
  }
  return out;
}

std::vector<std::vector<ScoredBox>> gnm_boxes(Gnm& program, const torch::Tensor& x) {
  return gnm_objects(program, x).boxes;
}

WhatFeatures gnm_what_features(const GnmObjects& objects, const std::vector<runtime::data::Scene>& scenes,
                               double iou) {
  const auto& boxes = objects.boxes;
  const auto& what = objects.what;
  if (boxes.size() != scenes.size())
    throw std::invalid_argument(
        fmt::format("gnm_what_features: {} images but {} scenes", boxes.size(), scenes.size()));
  std::vector<torch::Tensor> rows;
  std::vector<int64_t> labels;
  WhatFeatures out;
  for (size_t i = 0; i < scenes.size(); ++i)
    for (const auto& obj : scenes[i].objects) {
      ++out.objects;
      const auto tight = scored(obj.ink()), frame = scored(obj.frame());
      double best = 0;
      int64_t cell = -1;
      for (size_t k = 0; k < boxes[i].size(); ++k) {
        if (boxes[i][k].score <= 0.5) continue;
        const double v = std::max(box_iou(boxes[i][k], tight), box_iou(boxes[i][k], frame));
        if (v > best) best = v, cell = static_cast<int64_t>(k);
      }
      if (cell < 0 || best < iou) continue;
      rows.push_back(what[static_cast<int64_t>(i)][cell]);
      labels.push_back(obj.label);
    }
  out.features = rows.empty() ? torch::zeros({0, what.size(2)}) : torch::stack(rows);
  out.labels = torch::tensor(labels, torch::kLong);
  return out;
}

double what_classification_accuracy(const torch::Tensor& features, const torch::Tensor& labels) {
  if (features.dim() != 2 || labels.dim() != 1 || features.size(0) != labels.size(0))
    throw std::invalid_argument(fmt::format("what_classification_accuracy: features [{}] and labels [{}] must be "
                                            "[M, D] and [M]", fmt::join(features.sizes(), ", "),
                                            fmt::join(labels.sizes(), ", ")));
  const int64_t m = features.size(0);
  if (m < 4)
    throw std::invalid_argument(fmt::format("what_classification_accuracy: {} rows, but at least 4 are needed", m));
  const auto x = features.to(torch::kFloat32), y = labels.to(torch::kLong);
  // Standardised with the training half's statistics.
  const int64_t half = m / 2;
  const auto mean = x.narrow(0, 0, half).mean(0), sd = x.narrow(0, 0, half).std(0).clamp_min(1e-6);
  const auto z = (x - mean) / sd;
  DefaultGeneratorScope seed(0);  // the MLP's initialisation
  torch::nn::Sequential mlp(torch::nn::Linear(x.size(1), 64), torch::nn::ReLU(), torch::nn::Linear(64, 10));
  torch::optim::Adam opt(mlp->parameters(), torch::optim::AdamOptions(1e-2));
  const auto train_x = z.narrow(0, 0, half), train_y = y.narrow(0, 0, half);
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(mlp->forward(train_x), train_y);
    loss.backward();
    opt.step();
  }
  torch::NoGradGuard no_grad;
  const auto predicted = mlp->forward(z.narrow(0, half, m - half)).argmax(1);
  return (predicted == y.narrow(0, half, m - half)).to(torch::kDouble).mean().item<double>();
}

std::vector<std::vector<ScoredBox>> scene_boxes(const std::vector<runtime::data::Scene>& scenes, SceneBox which) {
  std::vector<std::vector<ScoredBox>> out;
  for (const auto& s : scenes) {
    out.emplace_back();
    for (const auto& o : s.objects) out.back().push_back(scored(which == SceneBox::ink ? o.ink() : o.frame()));
  }
  return out;
}

}  // namespace ppl::programs::gnm
