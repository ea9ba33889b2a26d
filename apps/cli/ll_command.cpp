// `ppl ll RUN... --data NAME... --particles K`: importance-sampling
// log-likelihood of test splits, mean and standard error, as JSON; for
// several runs or data sets also a table (JSON, HTML) and a heat-map PNG.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <vector>

#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/runtime/image.hpp>

#include "commands.hpp"
#include "progress.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {

struct LlArgs {
  std::vector<std::string> runs;
  std::vector<std::string> data;
  std::string split = "test";
  std::string device;
  std::string data_dir;
  std::string out = "ll-table";
  int64_t particles = 100;
  int64_t chunk = 25;
  int64_t n = 1000;
  int64_t batch = 50;
  uint64_t seed = 0;
  std::string likelihood_scale = "learnt";
};

/// "learnt", "dataset", or the fixed scale given, checked.
void check_scale_mode(const std::string& mode) {
  if (mode == "learnt" || mode == "dataset") return;
  double v = 0;
  size_t used = 0;
  try {
    v = std::stod(mode, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != mode.size() || !(v > 0) || !std::isfinite(v))
    throw UsageError(fmt::format(
        "ll: --likelihood-scale is \"{}\", but must be learnt, dataset or a positive number", mode));
}

/// The per-pixel likelihood scale [1, H, W] that --likelihood-scale asks for
/// on a data set whose whole split is `images` [N, 1, H, W]; undefined for
/// "learnt". "dataset" is the DooD authors' evaluation: the per-pixel standard
/// deviation of the split is written into the unconstrained parameter of the
/// scale, whose bound (bounded_likelihood_scale) makes it 0.505 to 0.63.
torch::Tensor evaluation_scale(const std::string& mode, const torch::Tensor& images) {
  if (mode == "learnt") return {};
  const auto shape = std::vector<int64_t>{1, images.size(-2), images.size(-1)};
  if (mode == "dataset") return programs::bounded_likelihood_scale(images.to(torch::kFloat).std(0)).reshape(shape);
  return torch::full(shape, std::stod(mode));
}

/// "ll_DATA_SPLIT_KK.json", with "_scale-MODE" before ".json" unless the
/// scale is the learnt one.
std::string cell_file(const std::string& name, const LlArgs& a) {
  const auto suffix = a.likelihood_scale == "learnt" ? std::string() : "_scale-" + a.likelihood_scale;
  return fmt::format("ll_{}_{}_K{}{}.json", name, a.split, a.particles, suffix);
}

/// The estimate of one run on one data set; also written as
/// RUN/ll_DATA_SPLIT_KK.json (see cell_file) where the run can be written.
nlohmann::json log_likelihood(Run& run, const std::string& run_name, const std::string& name, const LlArgs& a) {
  auto& program = *run.program;
  if (a.likelihood_scale != "learnt" && !program.has_likelihood_scale())
    throw UsageError(fmt::format("ll: --likelihood-scale {} replaces a learnt per-pixel likelihood scale, but {} "
                                 "(program {}) has none",
                                 a.likelihood_scale, run_name, program.name()));
  const auto data_dir = a.data_dir.empty() ? run.train.data_dir : a.data_dir;
  auto data = load_image_data(name, a.split, data_dir, a.likelihood_scale == "dataset" ? 0 : a.n,
                              program.image_size());
  if (data.images.size(-1) != program.image_size())
    throw UsageError(fmt::format("ll: {} has {}x{} images but the program of {} expects {}x{}", name,
                                 data.images.size(-2), data.images.size(-1), run_name, program.image_size(),
                                 program.image_size()));
  if (a.likelihood_scale != "learnt") {
    program.set_likelihood_scale(evaluation_scale(a.likelihood_scale, data.images));
    if (a.n > 0) {
      data.images = runtime::data::spread_rows(data.images, a.n);
      if (data.labels.defined()) data.labels = runtime::data::spread_rows(data.labels, a.n);
    }
  }
  // ll measures one run on several data sets: the next one starts from the learnt scale.
  struct Restore {
    programs::ImageProgram& p;
    bool active;
    ~Restore() {
      if (active) p.set_likelihood_scale({});
    }
  } restore{program, a.likelihood_scale != "learnt"};
  auto model = [&](const torch::Tensor& x) { return program.model(x); };
  auto guide = [&](const torch::Tensor& x) { return program.guide(x); };
  std::vector<torch::Tensor> lls, esss;
  const int64_t n = data.images.size(0);
  ProgressBar bar(fmt::format("ll {} on {} K={}", run_name, name, a.particles), n);
  random::SeedScope seed(a.seed);
  for (int64_t i = 0; i < n; i += a.batch) {
    auto x = data.images.narrow(0, i, std::min(a.batch, n - i)).to(run.device);
    // The image programs run one particle at a time (their recurrent and
    // convolutional networks take a batch of images, not of particles).
    auto r = infer::log_marginal(model, guide, x, {.particles = a.particles, .chunk = a.chunk, .vectorise = false});
    lls.push_back(r.log_likelihood.cpu());
    esss.push_back(r.ess.cpu());
    bar.update(i + x.size(0));
  }
  bar.finish();
  auto ll = torch::cat(lls).to(torch::kDouble);
  const double mean = ll.mean().item<double>();
  const double se = n > 1 ? ll.std().item<double>() / std::sqrt(static_cast<double>(n)) : 0.0;
  nlohmann::json out = {{"run", run_name},       {"step", run.step}, {"data", name},     {"split", a.split},
                        {"particles", a.particles}, {"n", n},        {"log_likelihood", mean},
                        {"standard_error", se}, {"mean_ess", torch::cat(esss).mean().item<double>()},
                        {"likelihood_scale", a.likelihood_scale}, {"image_size", program.image_size()}};
  // Per image, in the order scored: runs measured on the same images can be
  // compared pairwise, with a far smaller standard error than the means'.
  {
    const auto values = ll.contiguous();
    out["per_image"] = std::vector<double>(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  }
  // Which images were scored: how many of each class (of each object count
  // for scene sets).
  if (data.labels.defined()) {
    std::map<int64_t, int64_t> counts;
    const auto labels = data.labels.to(torch::kCPU, torch::kLong).contiguous();
    for (int64_t i = 0; i < labels.numel(); ++i) ++counts[labels.data_ptr<int64_t>()[i]];
    auto& j = out["label_counts"] = nlohmann::json::object();
    for (const auto& [label, count] : counts) j[std::to_string(label)] = count;
  }
  // A record beside the run; a run directory that cannot be written (a
  // read-only copy of a model) does not cost the result, which is printed.
  try {
    write_atomic(run.dir / cell_file(name, a), out.dump(2));
  } catch (const Error& e) {
    fmt::print(stderr, "ll: warning: {} (the estimate is printed below)\n", e.what());
  }
  return out;
}

/// A colour from white (t = 0) to deep blue (t = 1).
std::array<double, 3> heat(double t) {
  t = std::clamp(t, 0.0, 1.0);
  return {1.0 - 0.85 * t, 1.0 - 0.6 * t, 1.0 - 0.2 * t};
}

/// Where each value of a column lies between the column's lowest (0) and
/// highest (1): the data sets' log-likelihoods have different scales, so the
/// heat-map compares programs within each column.
std::vector<std::vector<double>> column_ranks(const std::vector<std::vector<double>>& v) {
  auto out = v;
  if (v.empty()) return out;
  for (size_t c = 0; c < v[0].size(); ++c) {
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& row : v) lo = std::min(lo, row[c]), hi = std::max(hi, row[c]);
    for (size_t r = 0; r < v.size(); ++r) out[r][c] = hi > lo ? (v[r][c] - lo) / (hi - lo) : 1.0;
  }
  return out;
}

/// Each run's mean difference from the first run's estimate on the same
/// images, and the standard error of that difference over the images (the
/// paired comparison): [run][data set] of the per_image values of `cells`,
/// run by run with `sets` data sets each.
struct Paired {
  std::vector<std::vector<double>> difference, standard_error;
};

Paired paired_with_first(const std::vector<nlohmann::json>& cells, size_t sets) {
  Paired out;
  for (size_t r = 0; r < cells.size() / sets; ++r) {
    out.difference.emplace_back();
    out.standard_error.emplace_back();
    for (size_t c = 0; c < sets; ++c) {
      const auto& cell = cells[r * sets + c];
      const auto& first = cells[c];
      const auto x = cell.at("per_image").get<std::vector<double>>();
      const auto y = first.at("per_image").get<std::vector<double>>();
      // Not the same images (another count, or scenes drawn at another size): no pairing, null in the JSON.
      if (x.size() != y.size() || x.empty() || cell.at("image_size") != first.at("image_size")) {
        out.difference.back().push_back(NAN);
        out.standard_error.back().push_back(NAN);
        continue;
      }
      const auto d = torch::tensor(x, torch::kDouble) - torch::tensor(y, torch::kDouble);
      const auto n = d.numel();
      out.difference.back().push_back(d.mean().item<double>());
      out.standard_error.back().push_back(n > 1 ? d.std().item<double>() / std::sqrt(static_cast<double>(n)) : 0.0);
    }
  }
  return out;
}

/// One paired difference as text, "other images" where there is none.
std::string paired_cell(const Paired& paired, size_t r, size_t c, const char* plus_minus) {
  const double d = paired.difference[r][c];
  return std::isnan(d) ? std::string("other images")
                       : fmt::format("{:+.1f} {} {:.1f}", d, plus_minus, paired.standard_error[r][c]);
}

/// The table as a heat-map PNG like the paper's: a title, the data sets
/// across, the runs down, each cell coloured by its rank within its column
/// (`t`) and labelled with its mean and standard error.
torch::Tensor heat_map(const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                       const std::vector<std::vector<double>>& ll, const std::vector<std::vector<double>>& se,
                       const std::vector<std::vector<double>>& t, const std::string& title) {
  using runtime::text_width;
  // Text of scale 1 is 7 pixels high (`small`), of scale `big` 7 * big (`line`).
  constexpr int64_t big = 2, pad = 8, small = 7, line = small * big, cell_h = 2 * pad + line + 4 + small;
  const std::array<float, 3> black{0, 0, 0}, white{1, 1, 1}, grey{0.4f, 0.4f, 0.4f};
  auto value = [&](size_t r, size_t c) { return fmt::format("{:.1f}", ll[r][c]); };
  auto error = [&](size_t r, size_t c) { return fmt::format("+- {:.1f}", se[r][c]); };
  int64_t label_w = 0, cell_w = 0;
  for (const auto& r : rows) label_w = std::max(label_w, text_width(r, big));
  for (size_t c = 0; c < cols.size(); ++c) {
    cell_w = std::max(cell_w, text_width(cols[c], big));
    for (size_t r = 0; r < rows.size(); ++r)
      cell_w = std::max({cell_w, text_width(value(r, c), big), text_width(error(r, c), 1)});
  }
  label_w += 2 * pad, cell_w += 2 * pad;
  const int64_t top = pad + small + pad + line + pad;  // title, then the column labels
  const int64_t width =
      std::max(label_w + static_cast<int64_t>(cols.size()) * cell_w, 2 * pad + text_width(title)) + pad;
  const int64_t height = top + static_cast<int64_t>(rows.size()) * cell_h + pad;
  auto img = torch::ones({3, height, width});
  runtime::draw_text(img, pad, pad, title, grey);
  for (size_t c = 0; c < cols.size(); ++c) {
    const auto x = label_w + static_cast<int64_t>(c) * cell_w;
    runtime::draw_text(img, x + (cell_w - text_width(cols[c], big)) / 2, pad + small + pad, cols[c], black, big);
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto y = top + static_cast<int64_t>(r) * cell_h;
    runtime::draw_text(img, pad, y + (cell_h - line) / 2, rows[r], black, big);
    for (size_t c = 0; c < cols.size(); ++c) {
      const auto x = label_w + static_cast<int64_t>(c) * cell_w;
      const auto rgb = heat(t[r][c]);
      img.narrow(1, y, cell_h).narrow(2, x, cell_w).fill_(0.8);  // a light grey rule round every cell
      for (int k = 0; k < 3; ++k) img[k].narrow(0, y + 1, cell_h - 2).narrow(1, x + 1, cell_w - 2).fill_(rgb[k]);
      const auto& ink = t[r][c] > 0.6 ? white : black;
      const auto v = value(r, c), e = error(r, c);
      runtime::draw_text(img, x + (cell_w - text_width(v, big)) / 2, y + pad, v, ink, big);
      runtime::draw_text(img, x + (cell_w - text_width(e)) / 2, y + pad + line + 4, e, ink);
    }
  }
  return img;
}

void write_table(const LlArgs& a, const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                 const std::vector<std::vector<double>>& ll, const std::vector<std::vector<double>>& se,
                 const Paired& paired) {
  namespace fs = std::filesystem;
  const fs::path dir = a.out;
  fs::create_directories(dir);
  const nlohmann::json table = {{"runs", rows},
                                {"data", cols},
                                {"split", a.split},
                                {"particles", a.particles},
                                {"n", a.n},
                                {"log_likelihood", ll},
                                {"standard_error", se},
                                {"difference_from_first", paired.difference},
                                {"difference_standard_error", paired.standard_error},
                                {"likelihood_scale", a.likelihood_scale}};
  write_atomic(dir / "ll_table.json", table.dump(2));

  const auto t = column_ranks(ll);
  std::string html = fmt::format(
      "<!doctype html><meta charset=utf-8><title>log-likelihood</title><style>body{{font-family:sans-serif;margin:2em}}"
      "td,th{{padding:6px 12px;text-align:right;border:1px solid #ccc}}th{{background:#f4f4f4}}</style>"
      "<h1>Importance-sampling log-likelihood</h1><p>{} split, K = {} particles, up to {} images per data set, "
      "likelihood scale: {}; mean &plusmn; standard error in nats per image. Colour: rank within each column "
      "(darker is higher).</p><table><tr><th>run</th>",
      a.split, a.particles, a.n, a.likelihood_scale);
  for (const auto& c : cols) html += fmt::format("<th>{}</th>", c);
  html += "</tr>";
  for (size_t r = 0; r < rows.size(); ++r) {
    html += fmt::format("<tr><th>{}</th>", rows[r]);
    for (size_t c = 0; c < cols.size(); ++c) {
      const auto rgb = heat(t[r][c]);
      html += fmt::format("<td style=\"background:rgb({},{},{});color:{}\">{:.1f} &plusmn; {:.1f}</td>",
                          std::lround(255 * rgb[0]), std::lround(255 * rgb[1]), std::lround(255 * rgb[2]),
                          t[r][c] > 0.6 ? "#fff" : "#000", ll[r][c], se[r][c]);
    }
    html += "</tr>";
  }
  html += fmt::format("</table><h2>Difference from {}</h2><p>Mean over the same images of each run's estimate "
                      "minus that of {}, &plusmn; the standard error of that mean (paired).</p><table><tr><th>run</th>",
                      rows.front(), rows.front());
  for (const auto& c : cols) html += fmt::format("<th>{}</th>", c);
  html += "</tr>";
  for (size_t r = 1; r < rows.size(); ++r) {
    html += fmt::format("<tr><th>{}</th>", rows[r]);
    for (size_t c = 0; c < cols.size(); ++c)
      html += fmt::format("<td>{}</td>", paired_cell(paired, r, c, "&plusmn;"));
    html += "</tr>";
  }
  html += "</table>";
  write_atomic(dir / "ll_table.html", html);

  save_png(dir / "ll_table.png",
           heat_map(rows, cols, ll, se, t,
                    fmt::format("log-likelihood, nats per image: {} split, K = {}, scale {}", a.split, a.particles,
                                a.likelihood_scale)));
}

void run_ll(const LlArgs& a) {
  if (a.particles < 1 || a.chunk < 1 || a.batch < 1)
    throw UsageError(fmt::format("ll: --particles, --chunk and --batch must be positive (got {}, {}, {})", a.particles,
                                 a.chunk, a.batch));
  if (a.n < 0) throw UsageError(fmt::format("ll: --n is {}, but must be at least 0 (0: every image)", a.n));
  check_scale_mode(a.likelihood_scale);
  std::vector<std::vector<double>> ll, se;
  std::vector<std::string> cols;
  std::vector<nlohmann::json> cells;
  for (const auto& name : a.runs) {
    auto run = open_run(name, a.device);
    const std::vector<std::string> sets = a.data.empty() ? std::vector<std::string>{run.train.data} : a.data;
    if (cols.empty()) cols = sets;
    if (sets != cols)
      throw UsageError(fmt::format("ll: without --data each run is measured on its own training set, but {} was "
                                   "trained on {} and {} on {}; pass --data to compare them",
                                   a.runs.front(), cols.front(), name, sets.front()));
    ll.emplace_back();
    se.emplace_back();
    for (const auto& set : sets) {
      auto cell = log_likelihood(run, name, set, a);
      ll.back().push_back(cell.at("log_likelihood"));
      se.back().push_back(cell.at("standard_error"));
      cells.push_back(std::move(cell));
    }
  }
  if (cells.size() == 1) {
    std::printf("%s\n", cells.front().dump(2).c_str());
    return;
  }
  std::printf("%s\n", nlohmann::json(cells).dump(2).c_str());
  std::printf("\n%-24s", "run");
  for (const auto& c : cols) std::printf(" %22s", c.c_str());
  std::printf("\n");
  for (size_t r = 0; r < a.runs.size(); ++r) {
    std::printf("%-24s", a.runs[r].c_str());
    for (size_t c = 0; c < cols.size(); ++c)
      std::printf(" %22s", fmt::format("{:.1f} +- {:.1f}", ll[r][c], se[r][c]).c_str());
    std::printf("\n");
  }
  const auto paired = paired_with_first(cells, cols.size());
  std::printf("\ndifference from %s, paired over the same images:\n", a.runs.front().c_str());
  for (size_t r = 1; r < a.runs.size(); ++r) {
    std::printf("%-24s", a.runs[r].c_str());
    for (size_t c = 0; c < cols.size(); ++c)
      std::printf(" %22s", paired_cell(paired, r, c, "+-").c_str());
    std::printf("\n");
  }
  write_table(a, a.runs, cols, ll, se, paired);
  std::printf("\ntable in %s (ll_table.json, ll_table.html, ll_table.png)\n", a.out.c_str());
}

RegisterCommand register_ll{"ll", [](CLI::App& app) {
  auto a = std::make_shared<LlArgs>();
  auto* cmd = app.add_subcommand(
      "ll", "Importance-sampling log-likelihood of trained runs on test splits (a table for several)");
  cmd->add_option("runs", a->runs, "run directories")->required();
  cmd->add_option("--data", a->data, "data sets, repeatable or comma-separated (default: each run's)")->delimiter(',');
  cmd->add_option("--split", a->split, "train or test")->capture_default_str();
  cmd->add_option("--particles", a->particles, "importance samples K per image")->capture_default_str();
  cmd->add_option("--chunk", a->chunk, "particles held in memory at once")->capture_default_str();
  cmd->add_option("--n", a->n, "number of images (0: all)")->capture_default_str();
  cmd->add_option("--batch", a->batch, "images per batch")->capture_default_str();
  cmd->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  cmd->add_option("--data-dir", a->data_dir, "data root");
  cmd->add_option("--seed", a->seed, "random seed")->capture_default_str();
  cmd->add_option("--likelihood-scale", a->likelihood_scale,
                  "learnt (the run's own per-pixel scale), dataset (the DooD authors' evaluation: from the per-pixel "
                  "standard deviation of each data set) or a fixed positive scale; for programs with a learnt scale")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "folder of the table, for several runs or data sets")->capture_default_str();
  cmd->callback([a] { run_ll(*a); });
}};

}  // namespace
}  // namespace ppl::cli
